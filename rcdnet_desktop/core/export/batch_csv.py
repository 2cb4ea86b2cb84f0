"""The batch-review table as rows and CSV: one format for ``rcdnet classify`` and the viewer.

No Qt here. :func:`batch_row` turns a :class:`~rcdnet_desktop.core.types.BatchItem` into one
row of :data:`CSV_FIELDS` (strings; the CLI's JSON output is the same rows), :func:`csv_text`
formats rows as CSV, and :func:`write_batch_csv` writes them atomically
(:func:`~rcdnet_desktop.core.export.atomic.atomic_write`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rcdnet_desktop.core.export.atomic import atomic_write
from rcdnet_desktop.core.types import BatchItem

CSV_FIELDS = ("file", "label", "p_malignant", "p_benign", "device", "status", "error", "warnings",
              "box_source", "box_x", "box_y", "box_w", "box_h", "band", "suspicious", "frame")
"""Columns of a batch review. ``label`` is the predicted class (marked UNTRAINED when the
weights are); ``status`` is ok or failed, with the reason in ``error``; ``warnings`` are joined
by "; ". ``box_source`` is user (drawn or given in an ROI file), auto (found by the lesion
localiser) or none (whole image); ``box_*`` is that box as given or found, unpadded, in image
pixels (empty when none); ``band`` is the likelihood band's name (see
:mod:`rcdnet_desktop.core.bands`); ``suspicious`` is yes when p_malignant reaches the model card's
suspicious threshold (chosen for sensitivity, so it can be yes for a "benign" label); ``frame`` is
the frame classified (0 for single-frame images)."""


def batch_row(item: BatchItem) -> dict[str, str]:
    """One row (every field of :data:`CSV_FIELDS`, as text) for a batch item."""
    p = item.prediction
    box = p.box if p else None
    x, y, w, h = (str(v) for v in box.as_tuple()) if box else ("",) * 4
    return {
        "file": str(item.path),
        "label": p.display_label if p else "",
        "p_malignant": f"{p.p_malignant:.4f}" if p else "",
        "p_benign": f"{p.p_benign:.4f}" if p else "",
        "device": p.device if p else "",
        "status": item.status,
        "error": item.error,
        "warnings": "; ".join(p.warnings) if p else "",
        "box_source": p.box_source if p else "",
        "box_x": x,
        "box_y": y,
        "box_w": w,
        "box_h": h,
        "band": p.band.name if p and p.band else "",
        "suspicious": ("yes" if p.suspicious else "no") if p else "",
        "frame": str(p.frame) if p else "",
    }


def csv_text(rows: Iterable[Mapping[str, str]]) -> str:
    """The rows as CSV text, header first (lines end with "\\n")."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_batch_csv(path: str | Path, rows: Iterable[Mapping[str, str]], *,
                    overwrite: bool = False) -> Path:
    """Write the rows as a UTF-8 CSV file, atomically; returns the path.

    Raises
    ------
    rcdnet_desktop.core.errors.ExportExistsError
        The file exists and ``overwrite`` is False (also a FileExistsError).
    rcdnet_desktop.core.errors.ExportError
        It could not be written; the message says why.
    """
    data = csv_text(rows).encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data), overwrite=overwrite)


__all__: Sequence[str] = ("CSV_FIELDS", "batch_row", "csv_text", "write_batch_csv")
