"""Typed messages from the background workers to the GUI thread.

A worker reports one of these through its job's ``progress`` signal; the receiving slot
dispatches on the type. Plain Python: the viewer controller and its tests use them without Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, Prediction
from rcdnet_desktop.gui.session.document import AnalysisKey


@dataclass(frozen=True)
class AnalysisRequest:
    """One request for the prediction (and heat maps) of one frame and box of one image.

    ``generation`` numbers the viewer's requests (-1: a background prediction for the image
    list); ``epoch`` numbers the engines loaded, so a result of a replaced engine is dropped.
    """

    key: AnalysisKey
    record: ImageRecord
    generation: int
    explain: bool = True
    epoch: int = 0

    @property
    def frame(self) -> int:
        return self.key.frame

    @property
    def roi(self) -> Box | None:
        return self.key.roi

    @property
    def method(self) -> str:
        return self.key.method


# --- analysis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineLoaded:
    """The engine was created in ``seconds`` on the device named ``device_name``."""

    seconds: float
    device_name: str


@dataclass(frozen=True)
class PredictionReady:
    request: AnalysisRequest
    prediction: Prediction


@dataclass(frozen=True)
class HeatmapsReady:
    request: AnalysisRequest
    maps: HeatMaps


@dataclass(frozen=True)
class AnalysisFailed:
    request: AnalysisRequest
    message: str


# --- reading files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileLoaded:
    path: Path
    record: ImageRecord
    thumbnail: np.ndarray


@dataclass(frozen=True)
class FileFailed:
    path: Path
    reason: str


# --- batch review ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchTotal:
    """The number of files the batch review will go through."""

    count: int


@dataclass(frozen=True)
class BatchResult:
    item: BatchItem
