"""The annotated report image as PNG, with its non-identifying summary in text chunks.

No Qt here. Written atomically (:func:`~rcdnet_desktop.core.atomic.atomic_write`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rcdnet_desktop.core.atomic import atomic_write
from rcdnet_desktop.core.export.report import DECISION_SUPPORT_NOTE, SOFTWARE_NAME, Report
from rcdnet_desktop.core.overlay import as_rgb


def export_png(
    path: str | Path,
    report: Report | np.ndarray,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a report image as PNG.

    Parameters
    ----------
    path : str or Path
        Target file.
    report : Report or numpy.ndarray
        A :class:`Report` (its non-identifying summary goes into PNG text chunks) or a bare
        uint8 RGB image.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.
    """
    from PIL import Image, PngImagePlugin

    rgb = report.image if isinstance(report, Report) else as_rgb(report)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE_NAME)
    info.add_text("Disclaimer", DECISION_SUPPORT_NOTE)
    if isinstance(report, Report):
        # Never patient identifiers: text chunks are invisible and survive cropping.
        for key, value in report.summary.items():
            if key not in ("Software", "Disclaimer") and value:
                info.add_itxt(key, value)
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")

    def write(fh: BinaryIO) -> None:
        image.save(fh, format="PNG", pnginfo=info, compress_level=6)

    return atomic_write(path, write, overwrite=overwrite)


__all__: Sequence[str] = ("export_png",)
