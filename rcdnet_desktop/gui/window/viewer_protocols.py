"""The boundaries of :class:`~rcdnet_desktop.gui.window.viewer_controller.ViewerController`.

Plain Python: the controller talks to a :class:`ViewerView` (the main window implements it), to
an :class:`AnalysisService` (the background inference runner) and to an :class:`ImageSource`
(the background file reader); the engine itself is
:class:`~rcdnet_desktop.gui.session.engine.Engine`. Tests put recording fakes behind all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rcdnet_desktop.core.context import ImageContext
from rcdnet_desktop.core.io.sr_document import SrDocument
from rcdnet_desktop.core.measure import Measured
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, Prediction
from rcdnet_desktop.gui.session.document import AnalysisKey
from rcdnet_desktop.gui.session.engine import Engine
from rcdnet_desktop.gui.session.grouping import Section


@dataclass(frozen=True)
class ActionState:
    """What the window's actions can do now (the view enables them from this)."""

    has_document: bool = False
    has_image: bool = False
    has_maps: bool = False
    is_dicom: bool = False
    has_box: bool = False
    document_count: int = 0
    has_localiser: bool = False
    has_measurements: bool = False


@dataclass(frozen=True)
class EngineInfo:
    """The loaded model, for the status bar and the prediction panel."""

    device_name: str
    device_note: str
    model_version: str
    untrained: bool


class ViewerView(Protocol):
    """What the controller asks of the window. Each call states what to show; none returns."""

    # --- the image list ----------------------------------------------------------------------

    def add_document(self, doc_id: int, name: str, path: str) -> None: ...

    def remove_document(self, doc_id: int) -> None: ...

    def set_thumbnail(self, doc_id: int, thumbnail: np.ndarray) -> None: ...

    def set_document_failed(self, doc_id: int, reason: str) -> None: ...

    def set_list_prediction(self, doc_id: int, prediction: Prediction | None) -> None:
        """The list entry of an image not on display: its result, or "not yet classified"."""

    def select_document(self, doc_id: int, name: str) -> None:
        """Mark the image on display in the list and in the window title."""

    def arrange_documents(self, sections: Sequence[Section]) -> None:
        """Order the list by patient and study, under their headings."""

    # --- the image on display ----------------------------------------------------------------

    def show_empty(self) -> None:
        """No image open."""

    def show_placeholder(self, message: str, waiting: str, status: str) -> None:
        """An image that is loading or unreadable: ``message`` in place of the image,
        ``waiting`` in the prediction panel, ``status`` in the evidence panel."""

    def set_frame_count(self, count: int, fps: float | None, frame: int) -> None:
        """A new image: its number of frames (cine), playback stopped, at ``frame``."""

    def show_frame(self, pixels: np.ndarray, keep_view: bool, box: Box | None) -> None:
        """The frame's pixels in the image view and under the maps, with the user's box."""

    def show_frame_error(self, message: str) -> None: ...

    def show_image_info(self, text: str) -> None:
        """Size, spacing and frame of the image, for the status bar."""

    def show_image_context(self, context: ImageContext | None) -> None:
        """The patient and study banner, the DICOM header's file and the image's scale (None:
        the image is not read yet, or could not be)."""

    def show_measurements(self, measured: Sequence[Measured]) -> None:
        """The caliper measurements of the frame on display, on the image and in their list."""

    def show_box(self, box: Box | None) -> None:
        """The user's lesion box (None: none drawn)."""

    def show_auto_finding(self, box: Box | None, outline: np.ndarray | None) -> None:
        """The lesion box found automatically and its outline (None: none to show)."""

    def show_pending_mode(self, mode: str) -> None:
        """The "Input:" words while a result is awaited."""

    def clear_maps(self) -> None:
        """The evidence panel shows the frame without maps (they belong to another key)."""

    # --- results -----------------------------------------------------------------------------

    def show_prediction(self, doc_id: int, key: AnalysisKey, prediction: Prediction) -> None:
        """The result for what is on display: in the prediction panel and its list entry."""

    def show_waiting(self, doc_id: int | None, text: str, mode: str) -> None:
        """No result yet for what is on display: ``text`` in the panel and its list entry."""

    def show_maps(self, key: AnalysisKey, maps: HeatMaps) -> None: ...

    def show_not_classified(self, doc_id: int, name: str, note: str,
                            document: SrDocument | None, has_image: bool) -> None:
        """A file shown but not classified (this program's own export, a structured report):
        ``note`` says why in the prediction panel, its list entry and the evidence panel; a
        report's ``document`` is shown in words (``has_image``: its source image is on
        display)."""

    def clear_not_classified(self) -> None:
        """What is on display is an image to classify: no stored result to show."""

    def show_maps_status(self, text: str) -> None:
        """What the evidence panel says while it has no maps."""

    def show_notice(self, text: str) -> None:
        """A non-modal notice (a file that cannot be read, a failed analysis...)."""

    # --- the model ---------------------------------------------------------------------------

    def show_engine_loading(self, device: str) -> None: ...

    def show_engine_ready(self, info: EngineInfo, engine: Engine) -> None: ...

    def show_engine_failed(self, message: str) -> None: ...

    def set_methods(self, labels: list[str], current: str) -> None:
        """The heat-map methods to choose from, and the one in use."""

    def set_busy(self, busy: bool) -> None: ...

    def update_actions(self, state: ActionState) -> None: ...


class AnalysisService(Protocol):
    """The background inference (:class:`~rcdnet_desktop.gui.session.analysis.AnalysisRunner`)."""

    @property
    def engine(self) -> Engine | None: ...

    @property
    def engine_error(self) -> str: ...

    device_name: str

    def load_engine(self, device: str = "auto") -> None: ...

    def request(self, key: AnalysisKey, record: ImageRecord, explain: bool = True) -> int: ...

    def cancel(self) -> None: ...

    def queue_background(self, items: Sequence[tuple[AnalysisKey, ImageRecord]]) -> None: ...

    def is_busy(self) -> bool: ...


class ImageSource(Protocol):
    """The background file reader (:class:`~rcdnet_desktop.gui.session.loader.ImageLoader`)."""

    def load(self, paths: Sequence[Path]) -> None: ...
