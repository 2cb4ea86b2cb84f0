"""The probability of malignancy over a cine clip, drawn under the frame slider.

:class:`TimelinePlot` draws one point per frame classified (P(malignant) from 0 at the bottom to
1 at the top, frames left to right in step with the slider above it), the model card's
suspicious threshold as a dashed line, the frame on display and the most suspicious frame; a
frame an intended-use check flagged gets an amber mark above it, and a frame on which no lesion
was found is drawn hollow (neither counts in the clip's figures); clicking or dragging on it
shows that frame. :class:`CineTimeline` puts it above a line with
the clip's summary (:func:`~rcdnet_desktop.core.cine.clip_summary`, the same rule as the batch
review) and the "Most suspicious frame" button. What fills them is
:mod:`rcdnet_desktop.gui.window.cine`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.clip import ClipSummary, frames_text
from rcdnet_desktop.gui.theme import colour

_CURVE = QColor(230, 120, 40)
_THRESHOLD = QColor(200, 60, 40)
_CURRENT = QColor(60, 140, 230)
_GRID = QColor(128, 128, 128, 90)
_NO_LESION = QColor(150, 150, 150)
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
        self._outside: tuple[int, ...] = ()
        self._no_lesion: tuple[int, ...] = ()
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
        self._outside = self._no_lesion = ()
        self.update()

    def set_values(self, values: dict[int, float], worst: int | None,
                   outside: Sequence[int] = (), no_lesion: Sequence[int] = ()) -> None:
        """The probability of each frame classified so far (by frame), the worst frame, the
        frames outside intended use and those with no lesion found."""
        self._values = dict(values)
        self._worst = worst
        self._outside = tuple(outside)
        self._no_lesion = tuple(no_lesion)
        self.update()

    def set_current(self, frame: int) -> None:
        self._current = int(frame)
        self.update()

    def values(self) -> dict[int, float]:
        return dict(self._values)

    def threshold(self) -> float | None:
        return self._threshold

    def outside_marks(self) -> tuple[int, ...]:
        """The frames marked outside intended use."""
        return self._outside

    def no_lesion_marks(self) -> tuple[int, ...]:
        """The frames drawn as "no lesion found"."""
        return self._no_lesion

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
        self._draw_bands(painter, a)
        self._draw_curve(painter)
        self._draw_marks(painter, a)
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

    def _draw_bands(self, painter: QPainter, a: QRectF) -> None:
        """Frames outside intended use: an amber band over the plot's height (under the
        curve), seen among many frames."""
        band = QColor(colour("outside"))
        band.setAlpha(70)
        step = a.width() / (self._count - 1) if self._count > 1 else a.width()
        half = max(step / 2, 2.5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(band)
        for f in self._outside:
            painter.drawRect(QRectF(self.x_of(f) - half, a.top(), 2 * half, a.height()))

    def _draw_marks(self, painter: QPainter, a: QRectF) -> None:
        """Frames no lesion was found on: a hollow grey point. Frames outside intended use: an
        amber ring and an amber triangle on the plot's top edge."""
        amber = QColor(colour("outside"))
        painter.setBrush(self.palette().color(self.backgroundRole()))
        painter.setPen(QPen(_NO_LESION, 1.4))
        for f in self._no_lesion:
            if f in self._values:
                painter.drawEllipse(QPointF(self.x_of(f), self._y_of(self._values[f])), 3, 3)
        painter.setPen(QPen(amber, 1.6))
        for f in self._outside:
            x = self.x_of(f)
            if f in self._values:
                painter.drawEllipse(QPointF(x, self._y_of(self._values[f])), 3.5, 3.5)
        painter.setBrush(amber)
        for f in self._outside:
            x = self.x_of(f)
            painter.drawPolygon(QPolygonF([QPointF(x - 5, a.top() - 4), QPointF(x + 5, a.top() - 4),
                                           QPointF(x, a.top() + 5)]))

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
                             "line the frame on display, the red dot the most suspicious "
                             "classifiable frame. An amber triangle marks a frame outside "
                             "intended use; a hollow grey point, a frame on which no lesion "
                             "was found. Click or drag to show a frame.")
        self.summary = QLabel(self)
        self.summary.setToolTip("The clip's result over its classifiable frames (within "
                                "intended use, with a lesion found): how many the model "
                                "called suspicious, the most suspicious one (maximum "
                                "probability of malignancy) and the median; then how many "
                                "frames had no lesion found or were outside intended use")
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


def summary_words(summary: ClipSummary | None, done: int, asked: int,
                  sweeping: bool) -> str:
    """The line under the plot: the clip's summary (:meth:`ClipSummary.text`, frames that
    could not be classified included), and how far the sweep has come."""
    if summary is None:
        if sweeping:
            return f"Classifying every frame: {done} of {asked}..."
        return "Every frame is classified once the model is ready." if not done else ""
    text = summary.text()
    if sweeping:
        return f"Classifying every frame: {done} of {asked}... so far {text}"
    if done < asked:
        text += f"; {frames_text(asked - done)} not classified yet"
    return text
