"""The marks drawn over the image at the same size on screen at every zoom: pens and box tags.

Shared by the image view (lesion boxes) and the caliper (measurements), which both draw on the
view's scene.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

BOX_COLOUR = QColor(255, 210, 0)


def cosmetic_pen(colour: QColor, width: float,
                 style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen of ``width`` screen pixels, the same width on screen at every zoom."""
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    return pen


class BoxTag(QGraphicsItem):
    """A small label on a box ("found automatically"), the same size on screen at every zoom.

    Its position is the box's top-left corner in scene coordinates; the text is painted in
    screen pixels above that corner (``below`` puts it under the corner instead).
    """

    PADDING = 3.0

    def __init__(self, text: str, parent: QGraphicsItem | None = None,
                 colour: QColor = BOX_COLOUR) -> None:
        super().__init__(parent)
        self._text = text
        self._colour = colour
        self._font = QFont()
        self._font.setPointSizeF(9.0)
        self._below = False
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)

    def text(self) -> str:
        return self._text

    def set_text(self, text: str) -> None:
        if text != self._text:
            self.prepareGeometryChange()
            self._text = text
            self.update()

    def set_below(self, below: bool) -> None:
        if below != self._below:
            self.prepareGeometryChange()
            self._below = below
            self.update()

    def size(self) -> tuple[float, float]:
        """Width and height on screen, in pixels."""
        m = QFontMetricsF(self._font)
        return m.horizontalAdvance(self._text) + 2 * self.PADDING, m.height() + 2 * self.PADDING

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        w, h = self.size()
        return QRectF(0, 1 if self._below else -h - 1, w, h)

    def paint(self, painter: QPainter, _option, _widget=None) -> None:
        r = self.boundingRect()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(r, 3, 3)
        painter.setPen(self._colour)
        painter.setFont(self._font)
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, self._text)
