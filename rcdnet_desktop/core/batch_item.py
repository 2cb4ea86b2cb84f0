"""One file's outcome in a batch review (:class:`BatchItem`): what the batch, the clip sweep,
the CSV and the validation pass between them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rcdnet_desktop.core.clip import ClipSummary
from rcdnet_desktop.core.types import HeatMaps, ImageRecord, Prediction


@dataclass(frozen=True)
class BatchItem:
    """One file's outcome in a batch review: a prediction or the reason it failed.

    With heat maps, ``record`` keeps the decoded image they belong to, so a caller can render
    them without reading the file again. ``skipped`` marks a path that was not even opened
    (not a regular file: a named pipe, a device, a socket); ``error`` says why.

    A cine clip swept frame by frame is one item too: its most suspicious frame's prediction,
    with the clip's summary in ``clip`` (see :func:`~rcdnet_desktop.core.cine.clip_item`).
    """

    path: Path
    prediction: Prediction | None = None
    heatmaps: HeatMaps | None = None
    error: str = ""
    record: ImageRecord | None = None
    skipped: bool = False
    clip: ClipSummary | None = None

    @property
    def status(self) -> str:
        """``ok``, ``failed`` (with the reason in ``error``) or ``skipped`` (not opened)."""
        if self.prediction is not None:
            return "ok"
        return "skipped" if self.skipped else "failed"
