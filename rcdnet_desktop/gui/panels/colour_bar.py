"""The colour bar under the evidence maps: "none [gradient] strongest" and what the scale means.

The colours are :func:`rcdnet_desktop.core.overlay.colorize`'s, the words
:mod:`rcdnet_desktop.core.evidence_scale`'s, as in the exported reports.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from rcdnet_desktop.core import overlay
from rcdnet_desktop.core.evidence_scale import SCALE_CAPTION, SCALE_ENDS, SCALE_TOOLTIP
from rcdnet_desktop.gui.qimage import to_qimage


class GradientStrip(QWidget):
    """The colour map from 0 (left) to 1 (right)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colormap = overlay.DEFAULT_COLORMAP
        self.setMinimumSize(60, 10)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(200, 12)

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self.update()

    def colormap(self) -> str:
        return self._colormap

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        ramp = np.linspace(0.0, 1.0, 256, dtype=np.float32)[None, :]
        image = to_qimage(overlay.colorize(ramp, self._colormap))
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        r = self.rect().adjusted(0, 1, -1, -1)
        p.drawImage(r, image)
        p.setPen(QColor(128, 128, 128))
        p.drawRect(QRect(r.x(), r.y(), r.width(), r.height()))
        p.end()


class ColourBar(QWidget):
    """The evidence colour bar with its two ends named and its meaning in one line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.strip = GradientStrip(self)
        self.low = QLabel(SCALE_ENDS[0], self)
        self.high = QLabel(SCALE_ENDS[1], self)
        self.caption = QLabel(SCALE_CAPTION, self)
        self.caption.setWordWrap(True)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.caption.setStyleSheet("font-size: 8pt;")
        self.setToolTip(SCALE_TOOLTIP)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self.low)
        row.addWidget(self.strip, 1)
        row.addWidget(self.high)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        lay.addLayout(row)
        lay.addWidget(self.caption)

    def set_colormap(self, name: str) -> None:
        self.strip.set_colormap(name)

    def text(self) -> str:
        """The bar's words: its ends and its caption."""
        return f"{self.low.text()} ... {self.high.text()}: {self.caption.text()}"
