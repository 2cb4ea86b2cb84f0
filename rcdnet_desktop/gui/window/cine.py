"""The cine timeline in the main window: the sweep that fills it, and the jump to the most
suspicious frame.

:func:`build_cine_timeline` puts a :class:`~rcdnet_desktop.gui.cine.timeline.CineTimeline`
under the frame slider, with the action "Go to most suspicious frame" (``J``, in the menu that
holds "Play/pause cine", and the timeline's button). :class:`CineTimelineController` follows
the image on display: a clip is swept in the background by a
:class:`~rcdnet_desktop.gui.cine.sweep.CineSweeper` (stopped when another image is put on
display), and each clip's frame results are kept for the session, so a clip the user comes
back to is only swept for the frames it still lacks. Another engine (device) starts afresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from rcdnet_desktop.core.bands import suspicious_threshold
from rcdnet_desktop.core.cine import FrameResult
from rcdnet_desktop.core.clip import ClipSummary, clip_summary
from rcdnet_desktop.gui.cine.sweep import CineSweeper
from rcdnet_desktop.gui.cine.timeline import CineTimeline, summary_words

if TYPE_CHECKING:
    from rcdnet_desktop.gui.image.image_view import CineBar, ImagePane
    from rcdnet_desktop.gui.session.analysis import AnalysisRunner
    from rcdnet_desktop.gui.session.engine import Engine
    from rcdnet_desktop.gui.window.viewer_controller import ViewerController

GO_WORST_SHORTCUT = "J"
"""Key of "Go to the most suspicious frame" (J: jump)."""


class CineTimelineController:
    """Keeps each clip's frame results and shows the current clip's on the timeline.

    Parameters
    ----------
    controller : ViewerController
        Says which document is on display.
    cine : CineBar
        The frame slider: which frame is on display, and where to go.
    analysis : AnalysisRunner
        Says when the engine is ready.
    timeline : CineTimeline
    go_worst : QAction
        "Go to the most suspicious frame".
    """

    def __init__(self, controller: ViewerController, cine: CineBar, analysis: AnalysisRunner,
                 timeline: CineTimeline, go_worst: QAction) -> None:
        self.controller = controller
        self.cine = cine
        self.timeline = timeline
        self.go_worst = go_worst
        self.sweeper = CineSweeper(timeline)
        self.results: dict[int, dict[int, FrameResult]] = {}
        self._doc_id: int | None = None
        self._engine: Engine | None = None
        self.sweeper.frames_ready.connect(self._on_frames)
        self.sweeper.finished.connect(self._on_finished)
        self.timeline.plot.frame_picked.connect(self._show_frame)
        cine.frame_changed.connect(self.timeline.plot.set_current)
        cine.frame_count_changed.connect(self._on_clip_changed)
        analysis.engine_ready.connect(self._on_engine_ready)
        analysis.engine_loading.connect(self._on_engine_loading)
        go_worst.triggered.connect(lambda _checked=False: self.show_worst())
        go_worst.setEnabled(False)

    # --- what is on display ------------------------------------------------------------------

    def _current(self):
        doc = self.controller.current
        if doc is None or doc.record is None or doc.record.frame_count <= 1:
            return None
        return doc

    def summary(self, doc_id: int | None = None) -> ClipSummary | None:
        """The summary of a clip's frames classified so far (the one on display by default)."""
        doc_id = self._doc_id if doc_id is None else doc_id
        results = self.results.get(doc_id, {}).values()
        preds = [r.prediction for r in results if r.prediction is not None]
        threshold = self._threshold()
        if not preds or threshold is None:
            return None
        return clip_summary(preds, threshold,
                            failed=[r.frame for r in results if r.prediction is None])

    def show_worst(self) -> None:
        """Show the clip's most suspicious frame (among those classified so far)."""
        summary = self.summary()
        if summary is not None and self._current() is not None:
            self._show_frame(summary.max_frame)

    def _show_frame(self, frame: int) -> None:
        cine = self.cine
        cine.set_playing(False)
        cine.set_frame(frame)  # emits frame_changed: the viewer shows and classifies it

    # --- events ------------------------------------------------------------------------------

    def _on_clip_changed(self, _count: int = 0) -> None:
        doc = self._current()
        doc_id = doc.doc_id if doc is not None else None
        if doc_id != self._doc_id and self.sweeper.running not in (None, doc_id):
            self.sweeper.cancel()  # another image is on display
        self._doc_id = doc_id
        self.timeline.setVisible(doc is not None)
        if doc is None:
            self.go_worst.setEnabled(False)
            return
        self.timeline.plot.set_clip(doc.record.frame_count, self._threshold())
        self.timeline.plot.set_current(doc.frame)
        self._refresh()
        self._start_if_needed()

    def _on_engine_ready(self, engine: Engine) -> None:
        self._engine = engine
        self.sweeper.forget()
        self.results.clear()  # another model or device: its own results
        self._on_clip_changed()

    def _on_engine_loading(self, _device: str) -> None:
        self._engine = None
        self.sweeper.forget()
        self._refresh()

    def _on_frames(self, doc_id: int, results: list[FrameResult]) -> None:
        store = self.results.setdefault(doc_id, {})
        for r in results:
            store[r.frame] = r
        if doc_id == self._doc_id:
            self._refresh()

    def _on_finished(self, doc_id: int, _complete: bool) -> None:
        if doc_id == self._doc_id:
            self._refresh()
            self._start_if_needed()

    # --- helpers -----------------------------------------------------------------------------

    def _threshold(self) -> float | None:
        if self._engine is None:
            return None

        return suspicious_threshold(self._engine.card)

    def _missing(self, doc) -> list[int]:
        have = self.results.get(doc.doc_id, {})
        return [f for f in range(doc.record.frame_count) if f not in have]

    def _start_if_needed(self) -> None:
        doc = self._current()
        if doc is None or self._engine is None or self.sweeper.running == doc.doc_id:
            return
        missing = self._missing(doc)
        if missing:
            self.sweeper.start(doc.doc_id, doc.record, self._engine, missing)
            self._refresh()

    def _refresh(self) -> None:
        doc = self._current()
        if doc is None:
            return
        results = self.results.get(doc.doc_id, {})
        values = {f: r.prediction.p_malignant for f, r in results.items()
                  if r.prediction is not None}
        summary = self.summary(doc.doc_id)
        plot = self.timeline.plot
        if plot.threshold() is None and self._engine is not None:
            plot.set_clip(doc.record.frame_count, self._threshold())
            plot.set_current(doc.frame)
        if summary is None:
            plot.set_values(values, None)
        else:
            plot.set_values(values, summary.max_frame, summary.flagged_frames,
                            summary.no_lesion_frames)
        self.timeline.summary.setText(summary_words(
            summary, len(results), doc.record.frame_count, self.sweeper.running == doc.doc_id))
        self.go_worst.setEnabled(summary is not None)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        return self.sweeper.shutdown(timeout_ms)


def build_cine_timeline(window: QMainWindow, pane: ImagePane, controller: ViewerController,
                        analysis: AnalysisRunner, play: QAction) -> CineTimelineController:
    """Add the cine timeline under the image pane's frame slider, its sweep, and the action
    with its shortcut (in the window's menu that holds ``play``); returns its controller."""
    timeline = CineTimeline(pane)
    timeline.plot.align_to(pane.cine.slider)
    pane.layout().addWidget(timeline)
    act = QAction("&Go to most suspicious frame", window)
    act.setShortcut(QKeySequence(GO_WORST_SHORTCUT))
    tip = ("Show the frame of the clip with the highest probability of malignancy, among "
           "the frames within intended use with a lesion found (every frame is classified "
           "in the background)")
    act.setStatusTip(tip)
    act.setToolTip(tip)
    act.setIconText("Most suspicious frame")
    window.addAction(act)  # the shortcut works with the menus hidden
    for menu in window.menuBar().findChildren(QMenu):
        if play in menu.actions():
            menu.addAction(act)
            break
    timeline.worst_button.setDefaultAction(act)
    timeline.worst_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return CineTimelineController(controller, pane.cine, analysis, timeline, act)
