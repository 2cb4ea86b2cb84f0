"""The caliper on the image view: the measurements kept, and the line being dragged.

:class:`CaliperLayer` draws on the view's scene in image coordinates: each measurement as a
line with round ends and its label ("1: 12.3 mm"), the same size on screen at every zoom, and
the line being drawn with its length as it grows. The lengths come from
:mod:`rcdnet_desktop.core.measure`, so the screen says what the exports say.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsScene,
)

from rcdnet_desktop.core.measure import COLOUR, Calibration, Measured, Measurement
from rcdnet_desktop.gui.image.marks import BoxTag, cosmetic_pen

CALIPER_COLOUR = QColor(*COLOUR)
SELECTED_COLOUR = QColor(255, 255, 255)
MIN_LENGTH = 3.0  # image pixels: shorter drags are clicks, not measurements
END_RADIUS = 3.5  # screen pixels


class _Line:
    """One caliper line on the scene: the line, its two ends and its label."""

    def __init__(self, scene: QGraphicsScene, style: Qt.PenStyle) -> None:
        self.line = QGraphicsLineItem()
        self.line.setPen(cosmetic_pen(CALIPER_COLOUR, 2, style))
        self.ends = [QGraphicsEllipseItem(QRectF(-END_RADIUS, -END_RADIUS,
                                                 2 * END_RADIUS, 2 * END_RADIUS))
                     for _ in range(2)]
        self.tag = BoxTag("", colour=CALIPER_COLOUR)
        self.tag.set_below(True)
        for end in self.ends:
            end.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
            end.setPen(cosmetic_pen(QColor(0, 0, 0), 1))
            end.setBrush(CALIPER_COLOUR)
        for z, item in enumerate((self.line, *self.ends, self.tag)):
            item.setZValue(6 + min(z, 2))
            scene.addItem(item)

    def place(self, m: Measurement, text: str, selected: bool = False) -> None:
        colour = SELECTED_COLOUR if selected else CALIPER_COLOUR
        pen = self.line.pen()
        pen.setColor(colour)
        pen.setWidthF(3 if selected else 2)
        self.line.setPen(pen)
        self.line.setLine(QLineF(m.x0, m.y0, m.x1, m.y1))
        for end, (x, y) in zip(self.ends, m.points(), strict=True):
            end.setPos(x, y)
            end.setBrush(colour)
        self.tag.set_text(text)
        self.tag.setPos(m.x1, m.y1)

    def set_visible(self, on: bool) -> None:
        for item in (self.line, *self.ends, self.tag):
            item.setVisible(on)

    def remove(self, scene: QGraphicsScene) -> None:
        for item in (self.line, *self.ends, self.tag):
            scene.removeItem(item)


class CaliperLayer:
    """The measurements on the image view's scene, and the caliper being dragged."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self._scene = scene
        self._lines: list[_Line] = []
        self._labels: list[str] = []
        self._live = _Line(scene, Qt.PenStyle.DashLine)
        self._live.set_visible(False)
        self._start: QPointF | None = None
        self._calibration = Calibration()

    def set_calibration(self, calibration: Calibration | None) -> None:
        """The image's scale, for the length shown while dragging."""
        self._calibration = calibration or Calibration()

    def show(self, measured: Sequence[Measured], selected: int | None = None) -> None:
        """Draw ``measured``; ``selected`` (0-based) stands out."""
        while len(self._lines) > len(measured):
            self._lines.pop().remove(self._scene)
        while len(self._lines) < len(measured):
            self._lines.append(_Line(self._scene, Qt.PenStyle.SolidLine))
        for i, (line, item) in enumerate(zip(self._lines, measured, strict=True)):
            line.place(item.measurement, item.label, selected == i)
        self._labels = [m.label for m in measured]

    def labels(self) -> list[str]:
        """The labels on screen, e.g. ``["1: 12.3 mm"]``."""
        return list(self._labels)

    # --- dragging ----------------------------------------------------------------------------

    def dragging(self) -> bool:
        return self._start is not None

    def start(self, pos: QPointF) -> None:
        self._start = pos
        self.drag(pos)

    def drag(self, pos: QPointF) -> None:
        if self._start is None:
            return
        m = _measurement(self._start, pos)
        self._live.place(m, self._calibration.length(m).text)
        self._live.set_visible(True)

    def finish(self, pos: QPointF) -> Measurement | None:
        """End the drag at ``pos``: the measurement, or None for a click."""
        start, self._start = self._start, None
        self._live.set_visible(False)
        if start is None:
            return None
        m = _measurement(start, pos)
        return m if m.pixels() >= MIN_LENGTH else None

    def cancel(self) -> None:
        self._start = None
        self._live.set_visible(False)


def _measurement(a: QPointF, b: QPointF) -> Measurement:
    return Measurement(round(a.x(), 1), round(a.y(), 1), round(b.x(), 1), round(b.y(), 1))
