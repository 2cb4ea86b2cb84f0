"""What the viewer knows about each open image: the record, its lesion boxes and results.

Plain Python, no widgets: the viewer controller keeps one :class:`Document` per open file.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rcdnet_desktop.core.measure import Calibration, Measurement
from rcdnet_desktop.core.types import Box, ImageRecord, Prediction

_ids = itertools.count(1)
FRAME_CACHE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class AnalysisKey:
    """What a prediction or a pair of heat maps was computed for."""

    doc_id: int
    frame: int
    roi: Box | None
    method: str = ""

    def prediction_key(self) -> AnalysisKey:
        """The same key without the CAM method (the prediction does not depend on it)."""
        return AnalysisKey(self.doc_id, self.frame, self.roi, "")


@dataclass(eq=False)
class Document:
    """One open image.

    Attributes
    ----------
    path : Path
        The file.
    record : ImageRecord or None
        The decoded image, None while loading or when it failed.
    error : str
        Why the file could not be read ("" when it could).
    boxes : dict of int to Box
        Lesion box per frame.
    frame : int
        The frame on display.
    predictions : dict
        Predictions by :class:`AnalysisKey` (method ""), kept for the session: they are small.
    measurements : dict of int to list of Measurement
        Caliper measurements per frame, in the order they were drawn.
    """

    path: Path
    record: ImageRecord | None = None
    error: str = ""
    loading: bool = True
    boxes: dict[int, Box] = field(default_factory=dict)
    frame: int = 0
    predictions: dict[AnalysisKey, Prediction] = field(default_factory=dict)
    doc_id: int = field(default_factory=lambda: next(_ids))
    measurements: dict[int, list[Measurement]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ok(self) -> bool:
        return self.record is not None

    @property
    def frame_count(self) -> int:
        return self.record.frame_count if self.record is not None else 0

    def box(self, frame: int | None = None) -> Box | None:
        return self.boxes.get(self.frame if frame is None else frame)

    def calibration(self) -> Calibration:
        """What the file says about the image's scale (nothing while it loads)."""
        return Calibration.of(self.record) if self.record is not None else Calibration()

    def key(self, method: str = "", frame: int | None = None) -> AnalysisKey:
        f = self.frame if frame is None else frame
        return AnalysisKey(self.doc_id, f, self.boxes.get(f), method)

    def status_text(self, hover: str = "") -> str:
        """Size, spacing and frame on display (and ``hover``), for the status bar."""
        rec = self.record
        if rec is None:
            return ""
        parts = [f"{rec.width} x {rec.height} px"]
        mm = rec.mm_per_pixel or rec.pixel_spacing
        if mm is not None:
            if abs(mm[0] - mm[1]) < 1e-6:
                parts.append(f"{mm[0]:.3f} mm/pixel")
            else:
                parts.append(f"{mm[0]:.3f} x {mm[1]:.3f} mm/pixel")
        if rec.frame_count > 1:
            parts.append(f"frame {self.frame + 1}/{rec.frame_count}")
        if hover:
            parts.append(hover)
        return "  |  ".join(parts)

    def latest_prediction(self) -> Prediction | None:
        """The prediction for the frame and box on display, else any known one."""
        p = self.predictions.get(self.key())
        if p is not None:
            return p
        p = self.predictions.get(self.key(frame=0))
        if p is not None:
            return p
        return next(iter(self.predictions.values()), None)


class LruCache:
    """A small least-recently-used cache (heat maps are megabytes each: keep a few)."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        if key not in self._data:
            return None
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def drop(self, predicate) -> None:
        for k in [k for k in self._data if predicate(k)]:
            del self._data[k]

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class FrameCache:
    """Decoded cine frames of the open images, least recently used out, bounded in bytes."""

    def __init__(self, max_bytes: int = FRAME_CACHE_BYTES) -> None:
        self._max = max_bytes
        self._data: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, doc: Document, frame: int) -> np.ndarray:
        assert doc.record is not None
        if frame == doc.record.pixels_frame or doc.record.frame_count <= 1:
            return doc.record.pixels
        key = (doc.doc_id, frame)
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        pixels = doc.record.frame(frame)
        self._data[key] = pixels
        self._bytes += pixels.nbytes
        while self._bytes > self._max and len(self._data) > 1:
            _, old = self._data.popitem(last=False)
            self._bytes -= old.nbytes
        return pixels

    def drop(self, doc_id: int) -> None:
        for k in [k for k in self._data if k[0] == doc_id]:
            self._bytes -= self._data.pop(k).nbytes
