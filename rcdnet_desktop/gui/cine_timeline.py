"""The probability of malignancy over a cine clip, drawn under the frame slider.

:class:`TimelinePlot` draws one point per frame classified (P(malignant) from 0 at the bottom to
1 at the top, frames left to right in step with the slider above it), the model card's
suspicious threshold as a dashed line, the frame on display and the most suspicious frame;
clicking or dragging on it shows that frame. :class:`CineTimeline` puts it above a line with
the clip's summary (:func:`~rcdnet_desktop.core.cine.clip_summary`, the same rule as the batch
review) and the "Most suspicious frame" button.

:func:`build_cine_timeline` adds both to the main window with the sweep that fills them
(:class:`~rcdnet_desktop.gui.cine_sweep.CineSweeper`) and the action that jumps to the most
suspicious frame; :class:`CineTimelineController` keeps each clip's frame results for the
session, so a clip the user comes back to is only swept for the frames it still lacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QSlider,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.cine import ClipSummary, FrameResult, clip_summary
from rcdnet_desktop.gui.cine_sweep import CineSweeper

if TYPE_CHECKING:
    from rcdnet_desktop.gui.engine import Engine
    from rcdnet_desktop.gui.main_window import MainWindow

GO_WORST_SHORTCUT = "J"
"""Key of "Go to the most suspicious frame" (J: jump)."""

_CURVE = QColor(230, 120, 40)
_THRESHOLD = QColor(200, 60, 40)
_CURRENT = QColor(60, 140, 230)
_GRID = QColor(128, 128, 128, 90)
_LABEL_WIDTH = 24  # room left of the plot for its 0, 0.5 and 1


class TimelinePlot(QWidget):
    """P(malignant) per frame, the suspicious threshold, the frame on display.

    Signals
    -------
    frame_picked(int)
        The user clicked or dragged on the plot: show this frame (from 0).
    """

    frame_picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(54)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._count = 1
        self._values: dict[int, float] = {}
        self._threshold: float | None = None
        self._current = 0
        self._worst: int | None = None
        self._slider: QSlider | None = None

    def align_to(self, slider: QSlider) -> None:
        """Put each frame's point under the slider handle's place for that frame."""
        self._slider = slider

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(400, 64)

    # --- what it shows -----------------------------------------------------------------------

    def set_clip(self, frame_count: int, threshold: float | None) -> None:
        self._count = max(int(frame_count), 1)
        self._threshold = threshold
        self._values = {}
        self._worst = None
        self.update()

    def set_values(self, values: dict[int, float], worst: int | None) -> None:
        """The probability of each frame classified so far (by frame) and the worst frame."""
        self._values = dict(values)
        self._worst = worst
        self.update()

    def set_current(self, frame: int) -> None:
        self._current = int(frame)
        self.update()

    def values(self) -> dict[int, float]:
        return dict(self._values)

    def threshold(self) -> float | None:
        return self._threshold

    def current(self) -> int:
        return self._current

    # --- geometry ----------------------------------------------------------------------------

    def _area(self) -> QRectF:
        area = QRectF(self.rect()).adjusted(_LABEL_WIDTH, 4, -6, -4)
        s = self._slider
        if s is not None and s.isVisible() and s.window() is self.window():
            half = s.style().pixelMetric(QStyle.PixelMetric.PM_SliderLength, None, s) / 2
            left = s.mapTo(self.window(), QPoint(0, 0)).x() \
                - self.mapTo(self.window(), QPoint(0, 0)).x() + half
            width = s.width() - 2 * half
            if width > 10 and left >= 0 and left + width <= self.width():
                area.setLeft(left)
                area.setWidth(width)
        return area

    def x_of(self, frame: int) -> float:
        """The plot's x for ``frame`` (the frames spread over the width, as on the slider)."""
        a = self._area()
        return a.left() + (a.width() * frame / (self._count - 1) if self._count > 1 else 0.0)

    def _y_of(self, p: float) -> float:
        a = self._area()
        return a.bottom() - a.height() * min(max(p, 0.0), 1.0)

    def frame_at(self, x: float) -> int:
        a = self._area()
        if self._count <= 1 or a.width() <= 0:
            return 0
        f = round((x - a.left()) / a.width() * (self._count - 1))
        return int(min(max(f, 0), self._count - 1))

    # --- painting and mouse ------------------------------------------------------------------

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        a = self._area()
        painter.setPen(QPen(_GRID, 1))
        painter.drawRect(a)
        painter.drawLine(QPointF(a.left(), self._y_of(0.5)), QPointF(a.right(), self._y_of(0.5)))
        font = painter.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.75, 6.0))
        painter.setFont(font)
        painter.setPen(self.palette().color(self.foregroundRole()))
        for p, text in ((1.0, "1"), (0.5, "0.5"), (0.0, "0")):
            box = QRectF(a.left() - _LABEL_WIDTH, self._y_of(p) - 7, _LABEL_WIDTH - 3, 14)
            painter.drawText(box, int(Qt.AlignmentFlag.AlignRight
                                      | Qt.AlignmentFlag.AlignVCenter), text)
        if self._threshold is not None:
            pen = QPen(_THRESHOLD, 1.2, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            y = self._y_of(self._threshold)
            painter.drawLine(QPointF(a.left(), y), QPointF(a.right(), y))
        self._draw_curve(painter)
        if self._worst is not None:
            painter.setPen(QPen(_THRESHOLD, 1))
            painter.setBrush(_THRESHOLD)
            p = self._values.get(self._worst, 0.0)
            painter.drawEllipse(QPointF(self.x_of(self._worst), self._y_of(p)), 4, 4)
        painter.setPen(QPen(_CURRENT, 2))
        x = self.x_of(self._current)
        painter.drawLine(QPointF(x, a.top()), QPointF(x, a.bottom()))
        painter.end()

    def _draw_curve(self, painter: QPainter) -> None:
        """Consecutive frames joined by a line; a frame not (yet) classified leaves a gap."""
        frames = sorted(self._values)
        if not frames:
            return
        painter.setPen(QPen(_CURVE, 1.6))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        path = QPainterPath()
        previous = None
        for f in frames:
            point = QPointF(self.x_of(f), self._y_of(self._values[f]))
            if previous is not None and f == previous + 1:
                path.lineTo(point)
            else:
                path.moveTo(point)
            previous = f
        painter.drawPath(path)
        if len(frames) <= 60:  # few frames: show each one
            painter.setBrush(_CURVE)
            for f in frames:
                painter.drawEllipse(QPointF(self.x_of(f), self._y_of(self._values[f])), 2, 2)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.frame_picked.emit(self.frame_at(event.position().x()))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.buttons() & Qt.MouseButton.LeftButton:
            frame = self.frame_at(event.position().x())
            if frame != self._current:
                self.frame_picked.emit(frame)
            event.accept()
            return
        super().mouseMoveEvent(event)


class CineTimeline(QWidget):
    """The plot above the clip's summary and the "Most suspicious frame" button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = TimelinePlot(self)
        self.plot.setToolTip("Probability of malignancy (0 to 1) of each frame of the clip; "
                             "the dashed line is the model's suspicious threshold, the blue "
                             "line the frame on display, the dot the most suspicious frame. "
                             "Click or drag to show a frame.")
        self.summary = QLabel(self)
        self.summary.setToolTip("The clip's result: the most suspicious frame (maximum "
                                "probability of malignancy), the median over the frames, and "
                                "the share of frames at or above the suspicious threshold")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.worst_button = QToolButton(self)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.summary, 1)
        row.addWidget(self.worst_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 4)
        lay.setSpacing(2)
        lay.addWidget(self.plot)
        lay.addLayout(row)
        self.setVisible(False)


def summary_words(summary: ClipSummary | None, done: int, asked: int, failed: int,
                  sweeping: bool) -> str:
    """The line under the plot: the clip's summary, or how far the sweep has come."""
    if summary is None:
        if sweeping:
            return f"Classifying every frame: {done} of {asked}..."
        return "Every frame is classified once the model is ready." if not done else ""
    text = f"{summary.text()} (at or above {summary.threshold:.2f})"
    if sweeping:
        text = f"Classifying every frame: {done} of {asked}... so far {text}"
    elif done < asked:
        text += f"; {asked - done} frames not classified yet"
    if summary.flagged_frames:
        text += f"; {len(summary.flagged_frames)} frames outside intended use"
    if failed:
        text += f"; {failed} frames could not be classified"
    return text


class CineTimelineController:
    """Keeps each clip's frame results and shows the current clip's on the timeline.

    Parameters
    ----------
    window : MainWindow
        Its ``controller`` says which document is on display, its ``cine`` bar which frame;
        its ``analysis`` runner says when the engine is ready.
    timeline : CineTimeline
    go_worst : QAction
        "Go to the most suspicious frame".
    """

    def __init__(self, window: MainWindow, timeline: CineTimeline, go_worst: QAction) -> None:
        self.window = window
        self.timeline = timeline
        self.go_worst = go_worst
        self.sweeper = CineSweeper(window)
        self.results: dict[int, dict[int, FrameResult]] = {}
        self._doc_id: int | None = None
        self._engine: Engine | None = None
        self.sweeper.frames_ready.connect(self._on_frames)
        self.sweeper.finished.connect(self._on_finished)
        self.timeline.plot.frame_picked.connect(self._show_frame)
        window.cine.frame_changed.connect(self.timeline.plot.set_current)
        window.cine.frame_count_changed.connect(self._on_clip_changed)
        window.analysis.engine_ready.connect(self._on_engine_ready)
        window.analysis.engine_loading.connect(self._on_engine_loading)
        go_worst.triggered.connect(lambda _checked=False: self.show_worst())
        go_worst.setEnabled(False)

    # --- what is on display ------------------------------------------------------------------

    def _current(self):
        doc = self.window.controller.current
        if doc is None or doc.record is None or doc.record.frame_count <= 1:
            return None
        return doc

    def summary(self, doc_id: int | None = None) -> ClipSummary | None:
        """The summary of a clip's frames classified so far (the one on display by default)."""
        doc_id = self._doc_id if doc_id is None else doc_id
        preds = [r.prediction for r in self.results.get(doc_id, {}).values()
                 if r.prediction is not None]
        engine = self._engine
        if not preds or engine is None:
            return None
        from rcdnet_desktop.core.bands import suspicious_threshold

        return clip_summary(preds, suspicious_threshold(engine.card))

    def show_worst(self) -> None:
        """Show the clip's most suspicious frame (among those classified so far)."""
        summary = self.summary()
        if summary is not None and self._current() is not None:
            self._show_frame(summary.max_frame)

    def _show_frame(self, frame: int) -> None:
        cine = self.window.cine
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
        from rcdnet_desktop.core.bands import suspicious_threshold

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
        plot.set_values(values, summary.max_frame if summary is not None else None)
        failed = sum(r.prediction is None for r in results.values())
        self.timeline.summary.setText(summary_words(
            summary, len(results), doc.record.frame_count, failed,
            self.sweeper.running == doc.doc_id))
        self.go_worst.setEnabled(summary is not None)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        return self.sweeper.shutdown(timeout_ms)


def build_cine_timeline(window: MainWindow) -> CineTimelineController:
    """Add the cine timeline under the frame slider, its sweep, and the action with its
    shortcut (in the menu that holds "Play/pause cine"); returns its controller."""
    timeline = CineTimeline(window.pane)
    timeline.plot.align_to(window.cine.slider)
    window.pane.layout().addWidget(timeline)
    act = QAction("&Go to most suspicious frame", window)
    act.setShortcut(QKeySequence(GO_WORST_SHORTCUT))
    tip = ("Show the frame of the clip with the highest probability of malignancy "
           "(every frame is classified in the background)")
    act.setStatusTip(tip)
    act.setToolTip(tip)
    act.setIconText("Most suspicious frame")
    window.addAction(act)  # the shortcut works with the menus hidden
    for menu in window.menuBar().findChildren(QMenu):
        if window.act.play in menu.actions():
            menu.addAction(act)
            break
    timeline.worst_button.setDefaultAction(act)
    timeline.worst_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return CineTimelineController(window, timeline, act)
