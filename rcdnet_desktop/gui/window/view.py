"""What the viewer controller's calls do to the main window's widgets.

:class:`WindowView` implements
:class:`~rcdnet_desktop.gui.window.viewer_protocols.ViewerView` on the widgets the window builds;
it decides nothing (that is the controller's part) and only shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtWidgets import QLabel, QMainWindow

from rcdnet_desktop.core.context import ImageContext
from rcdnet_desktop.core.io.sr_document import SrDocument
from rcdnet_desktop.core.measure import Measured
from rcdnet_desktop.core.types import Box, HeatMaps, Prediction
from rcdnet_desktop.gui.dialogs.stored_result import StoredResultDialog
from rcdnet_desktop.gui.image.image_view import CineBar, ImageView
from rcdnet_desktop.gui.panels.heatmap_panel import HeatmapPanel
from rcdnet_desktop.gui.panels.notice_bar import NoticeBar
from rcdnet_desktop.gui.panels.prediction_panel import PredictionPanel
from rcdnet_desktop.gui.panels.thumbnails import ThumbnailList
from rcdnet_desktop.gui.session.document import AnalysisKey
from rcdnet_desktop.gui.session.engine import Engine, engine_operating_point
from rcdnet_desktop.gui.session.grouping import Section
from rcdnet_desktop.gui.settings import DEVICE_LABELS
from rcdnet_desktop.gui.window.actions import WindowActions, apply_action_state
from rcdnet_desktop.gui.window.context import ContextView
from rcdnet_desktop.gui.window.viewer_protocols import ActionState, EngineInfo

if TYPE_CHECKING:
    from rcdnet_desktop.gui.batch.batch_dialog import BatchDialog

APP_TITLE = "RcdNet Desktop"


@dataclass
class StatusLabels:
    """The permanent labels of the status bar."""

    busy: QLabel
    image: QLabel
    model: QLabel
    device: QLabel


@dataclass
class WindowView:
    """The main window's widgets, shown as the controller asks (a ViewerView)."""

    window: QMainWindow
    image: ImageView
    cine: CineBar
    thumbs: ThumbnailList
    prediction: PredictionPanel
    heatmaps: HeatmapPanel
    notice: NoticeBar
    labels: StatusLabels
    act: WindowActions
    batch_dialogs: list[BatchDialog]
    prediction_shown: Callable[[AnalysisKey], None]
    heatmaps_shown: Callable[[AnalysisKey], None]
    context: ContextView | None = None
    stored: StoredResultDialog | None = None  # made when a stored result is first shown

    # --- the image list --------------------------------------------------------------------------

    def add_document(self, doc_id: int, name: str, path: str) -> None:
        self.thumbs.add_document(doc_id, name, path)

    def remove_document(self, doc_id: int) -> None:
        self.thumbs.remove_document(doc_id)

    def set_thumbnail(self, doc_id: int, thumbnail: np.ndarray) -> None:
        self.thumbs.set_thumbnail(doc_id, thumbnail)

    def set_document_failed(self, doc_id: int, reason: str) -> None:
        self.thumbs.set_failed(doc_id, reason)

    def set_list_prediction(self, doc_id: int, prediction: Prediction | None) -> None:
        self.thumbs.set_prediction(doc_id, prediction)

    def select_document(self, doc_id: int, name: str) -> None:
        self.thumbs.select_document(doc_id)
        self.window.setWindowTitle(f"{name} - {APP_TITLE}")

    def arrange_documents(self, sections: Sequence[Section]) -> None:
        self.thumbs.arrange(list(sections))

    # --- the image on display --------------------------------------------------------------------

    def show_empty(self) -> None:
        self.image.set_image(None)
        self.image.set_box(None)
        self.cine.set_frame_count(1)
        self.prediction.set_waiting("No image open")
        self.heatmaps.set_image(None)
        self.heatmaps.set_status("No image")
        self.labels.image.setText("")
        self.window.setWindowTitle(APP_TITLE)
        if self.context is not None:
            self.context.clear()

    def show_placeholder(self, message: str, waiting: str, status: str) -> None:
        self.cine.set_frame_count(1)
        self.image.set_box(None)
        self.heatmaps.set_image(None)
        self.labels.image.setText("")
        self.image.show_message(message)
        self.prediction.set_waiting(waiting)
        self.heatmaps.set_status(status)
        if self.context is not None:
            self.context.show_measurements(())

    def set_frame_count(self, count: int, fps: float | None, frame: int) -> None:
        self.cine.set_frame_count(count, fps)
        self.cine.set_frame(frame, emit=False)

    def show_frame(self, pixels: np.ndarray, keep_view: bool, box: Box | None) -> None:
        self.image.set_image(pixels, keep_view=keep_view)
        self.image.set_auto_finding(None)  # until this frame's result says otherwise
        self.image.set_box(box)
        self.heatmaps.set_image(pixels)

    def show_frame_error(self, message: str) -> None:
        self.image.show_message(message)
        if self.context is not None:
            self.context.show_measurements(())

    def show_image_info(self, text: str) -> None:
        self.labels.image.setText(text)

    def show_image_context(self, context: ImageContext | None) -> None:
        if self.context is not None:
            self.context.show_image_context(context)

    def show_measurements(self, measured: Sequence[Measured]) -> None:
        if self.context is not None:
            self.context.show_measurements(measured)

    def show_box(self, box: Box | None) -> None:
        self.image.set_box(box)

    def show_auto_finding(self, box: Box | None, outline: np.ndarray | None) -> None:
        self.image.set_auto_finding(box, outline)

    def show_pending_mode(self, mode: str) -> None:
        self.prediction.set_mode(mode)

    def clear_maps(self) -> None:
        self.heatmaps.set_image(self.image.pixels())

    # --- results ---------------------------------------------------------------------------------

    def show_prediction(self, doc_id: int, key: AnalysisKey, prediction: Prediction) -> None:
        self.prediction.set_prediction(prediction)
        self.thumbs.set_prediction(doc_id, prediction)
        self.prediction_shown(key)

    def show_waiting(self, doc_id: int | None, text: str, mode: str) -> None:
        self.prediction.set_waiting(text, mode)
        if doc_id is not None:
            self.thumbs.set_waiting(doc_id, text)

    def show_maps(self, key: AnalysisKey, maps: HeatMaps) -> None:
        self.heatmaps.set_maps(maps)
        self.heatmaps_shown(key)

    def show_not_classified(self, doc_id: int, name: str, note: str,
                            document: SrDocument | None, has_image: bool) -> None:
        sentence = note[:1].upper() + note[1:]
        self.prediction.set_waiting(sentence)
        self.thumbs.set_waiting(doc_id, "Not classified")
        self.heatmaps.set_status(sentence)
        if document is None:
            self.clear_not_classified()
            return
        if self.stored is None:
            self.stored = StoredResultDialog(self.window)
        self.stored.show_document(name, note, document, has_image)

    def clear_not_classified(self) -> None:
        if self.stored is not None:
            self.stored.hide()

    def show_maps_status(self, text: str) -> None:
        self.heatmaps.set_status(text)

    def show_notice(self, text: str) -> None:
        """A non-modal notice: in the banner above the image and in the status bar."""
        self.notice.add(text)
        self.window.statusBar().showMessage(text, 10000)

    # --- the model -------------------------------------------------------------------------------

    def show_engine_loading(self, device: str) -> None:
        self.labels.device.setText(f"Loading model ({DEVICE_LABELS.get(device, device)})...")
        self.labels.model.setText("")
        for dlg in self.batch_dialogs:
            dlg.set_engine(None)

    def show_engine_ready(self, info: EngineInfo, engine: Engine) -> None:
        self.labels.device.setText(f"Device: {info.device_name}")
        if info.device_note:
            self.window.statusBar().showMessage(info.device_note, 10000)
        self.labels.model.setText(f"Model {info.model_version}"
                                  + (" (UNTRAINED)" if info.untrained else ""))
        self.prediction.set_model_version(info.model_version)
        self.prediction.set_untrained(info.untrained)
        self.prediction.set_operating_point(engine_operating_point(engine))
        for dlg in self.batch_dialogs:
            dlg.set_engine(engine)

    def show_engine_failed(self, message: str) -> None:
        self.labels.device.setText("No model")
        self.show_notice(f"The model could not be loaded: {message}")

    def set_methods(self, labels: list[str], current: str) -> None:
        self.heatmaps.set_methods(labels, current)

    def set_busy(self, busy: bool) -> None:
        self.labels.busy.setText("working..." if busy else "")

    def update_actions(self, state: ActionState) -> None:
        apply_action_state(self.act, state)
