"""The two evidence maps side by side, with opacity, colour map, plain-image and method controls.

Colouring and blending are :mod:`rcdnet_desktop.core.overlay`'s, the same as in the exports;
both maps are shown on one scale, topped by the evidence for the result
(:mod:`rcdnet_desktop.core.evidence_scale`), with a colour bar under them. The sentences under
the maps are :func:`~rcdnet_desktop.core.overlay.evidence_sentences`, measured on each map
against the lesion box of the maps' prediction (the box drawn on them).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core import overlay
from rcdnet_desktop.core.evidence_scale import apply_factor, shared_scale_factors
from rcdnet_desktop.core.types import Box, HeatMaps
from rcdnet_desktop.gui.panels.colour_bar import ColourBar
from rcdnet_desktop.gui.qimage import downscale, to_pixmap

PANEL_MAX_SIDE = 640  # maps are blended at most this large for the panel (display only)
TITLES = ("Evidence for benign", "Evidence for malignant")


class MapView(QWidget):
    """Paints one picture scaled to fit, aspect kept, with an optional box outline."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._box: QRectF | None = None
        self._box_dashed = True
        self._placeholder = ""
        self._aspect = 0.75  # height / width of the picture, kept when there is none
        self.setMinimumSize(120, 90)
        # As tall as the picture needs at the width given: no black bands above and below.
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(300, self.heightForWidth(300))

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return max(90, min(int(round(width * self._aspect)), 900))

    def set_picture(self, pixmap: QPixmap | None, box: QRectF | None = None,
                    placeholder: str = "", dashed: bool = True) -> None:
        """``box`` in picture pixels; drawn dashed (found automatically) or solid (the user's),
        as in the image view."""
        self._pixmap = pixmap
        self._box = box
        self._box_dashed = dashed
        self._placeholder = placeholder
        if pixmap is not None and not pixmap.isNull() and pixmap.width() > 0:
            aspect = pixmap.height() / pixmap.width()
            if abs(aspect - self._aspect) > 1e-3:
                self._aspect = aspect
                self.updateGeometry()
        self.update()

    def picture(self) -> QPixmap | None:
        return self._pixmap

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(20, 20, 20))
        if self._pixmap is not None and not self._pixmap.isNull():
            pw, ph = self._pixmap.width(), self._pixmap.height()
            scale = min(self.width() / pw, self.height() / ph)
            tw, th = pw * scale, ph * scale
            target = QRectF((self.width() - tw) / 2, (self.height() - th) / 2, tw, th)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawPixmap(target, self._pixmap, QRectF(0, 0, pw, ph))
            if self._box is not None:
                pen = QPen(QColor(255, 210, 0), 1.5, Qt.PenStyle.DashLine if self._box_dashed
                           else Qt.PenStyle.SolidLine)
                p.setPen(pen)
                b = self._box
                p.drawRect(QRectF(target.x() + b.x() * scale, target.y() + b.y() * scale,
                                  b.width() * scale, b.height() * scale))
        if self._placeholder:
            p.setPen(QColor(200, 200, 200))
            p.drawText(self.rect().adjusted(8, 8, -8, -8),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self._placeholder)
        p.end()


class HeatmapPanel(QWidget):
    """Benign and malignant evidence maps over the image, side by side.

    Signals
    -------
    method_changed(str)
        The user chose another CAM method (the maps must be recomputed).
    display_changed()
        Opacity, colour map or plain-image toggle changed (display only; saved in settings).
    maps_changed()
        Other maps are shown (or none).
    """

    method_changed = Signal(str)
    display_changed = Signal()
    maps_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views = (MapView(self), MapView(self))
        self.titles = tuple(QLabel(f"<b>{t}</b>", self) for t in TITLES)
        for t in self.titles:
            t.setWordWrap(True)  # a narrow column wraps the probability under the title
        self.descriptions = tuple(QLabel(self) for _ in TITLES)
        for d in self.descriptions:
            d.setWordWrap(True)
            d.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            d.setMinimumHeight(48)
            d.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(round(overlay.DEFAULT_ALPHA * 100)))
        self.opacity.setToolTip("Opacity of the heat maps over the image")
        self.colormap = QComboBox(self)
        self.colormap.addItems(list(overlay.COLORMAPS))
        self.colormap.setCurrentText(overlay.DEFAULT_COLORMAP)
        self.colormap.setToolTip("Colour map of the heat maps")
        self.plain = QCheckBox("Show plain image", self)
        self.plain.setToolTip("Hide the heat maps and show the image alone (H)")
        self.method = QComboBox(self)
        self.method.setToolTip("How the heat maps are computed (the first one is the fast "
                               "closed-form Grad-CAM)")
        self.method.setEnabled(False)
        # Long method names are elided in a narrow column, not allowed to widen it.
        self.method.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method.setMinimumContentsLength(10)
        self.colour_bar = ColourBar(self)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for col in range(2):
            grid.addWidget(self.titles[col], 0, col)
            grid.addWidget(self.views[col], 1, col)
            grid.addWidget(self.descriptions[col], 3, col)
        grid.addWidget(self.colour_bar, 2, 0, 1, 2)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Opacity", self))
        controls.addWidget(self.opacity, 1)
        controls.addWidget(QLabel("Colours", self))
        controls.addWidget(self.colormap)
        controls2 = QHBoxLayout()
        controls2.addWidget(self.plain)
        controls2.addWidget(QLabel("Method", self))
        controls2.addWidget(self.method, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addLayout(controls)
        lay.addLayout(controls2)
        lay.addStretch(1)

        self.opacity.valueChanged.connect(self._display_changed)
        self.colormap.currentTextChanged.connect(self._display_changed)
        self.plain.toggled.connect(self._display_changed)
        self.method.currentTextChanged.connect(self._on_method)

        self._pixels: np.ndarray | None = None
        self._small: np.ndarray | None = None
        self._scale = 1.0
        self._maps: HeatMaps | None = None
        self._small_maps: tuple[np.ndarray, np.ndarray] | None = None  # on the shared scale
        self._factors = (0.0, 0.0)
        self._roi: Box | None = None
        self._status = "No image"
        self._refresh()

    # --- state from the window ---------------------------------------------------------------

    def set_methods(self, methods: list[str], current: str | None = None) -> None:
        self.method.blockSignals(True)
        self.method.clear()
        self.method.addItems(list(methods))
        if current and current in methods:
            self.method.setCurrentText(current)
        self.method.setEnabled(bool(methods))
        self.method.blockSignals(False)

    def current_method(self) -> str:
        return self.method.currentText()

    def set_image(self, pixels: np.ndarray | None) -> None:
        """The frame the maps belong to (shown plain, and under the maps)."""
        self._pixels = pixels
        if pixels is None:
            self._small, self._scale = None, 1.0
        else:
            self._small, self._scale = downscale(pixels, PANEL_MAX_SIDE)
        self._maps = None
        self._small_maps = None
        self._roi = None  # the box belongs to the maps: a new frame or box has none yet
        self._set_titles(None)
        self._refresh()
        self.maps_changed.emit()

    def set_status(self, text: str) -> None:
        """What to say while no maps are shown ("Computing heat maps...", an error...)."""
        self._status = text
        if self._maps is None:
            self._refresh()

    def set_maps(self, maps: HeatMaps | None) -> None:
        """Show ``maps``, with the lesion box of their prediction (as drawn or found)."""
        self._maps = maps
        self._roi = maps.prediction.box if maps is not None else None
        if maps is None or self._pixels is None:
            self._small_maps = None
            self._maps = None
        else:
            h, w = self._pixels.shape[:2]
            if maps.benign.shape != (h, w) or maps.malignant.shape != (h, w):
                self._maps = None
                self._small_maps = None
                self._status = (f"Heat maps {maps.benign.shape} do not match the image "
                                f"{(h, w)}")
            else:
                # The shared scale's factors come from the full maps; the panel shows them
                # applied to small copies.
                self._factors = shared_scale_factors(maps)
                self._small_maps = tuple(  # type: ignore[assignment]
                    apply_factor(downscale(m, PANEL_MAX_SIDE)[0], f)
                    for m, f in zip((maps.benign, maps.malignant), self._factors, strict=True))
        if self._maps is not None:
            for label, text in zip(self.descriptions, overlay.evidence_sentences(self._maps),
                                   strict=True):
                label.setText(text)
        self._set_titles(self._maps)
        self._refresh()
        self.maps_changed.emit()

    def _set_titles(self, maps: HeatMaps | None) -> None:
        """The titles, with each class's probability once its maps are shown."""
        probs = (None, None) if maps is None else (maps.prediction.p_benign,
                                                   maps.prediction.p_malignant)
        for label, title, p in zip(self.titles, TITLES, probs, strict=True):
            # Non-breaking spaces: a narrow column moves "(P = 0.13)" to the next line whole.
            label.setText(f"<b>{title}</b>"
                          + (f" (P\N{NO-BREAK SPACE}=\N{NO-BREAK SPACE}{p:.2f})"
                             if p is not None else ""))

    def shared_scale_factors(self) -> tuple[float, float]:
        """The factors of the shared scale applied to the maps on display (0, 0 without)."""
        return self._factors if self._maps is not None else (0.0, 0.0)

    def maps(self) -> HeatMaps | None:
        return self._maps

    def box_shown(self) -> Box | None:
        """The lesion box marked on the maps (the maps' own), or None."""
        return self._roi if self._maps is not None else None

    def alpha(self) -> float:
        return self.opacity.value() / 100.0

    def colormap_name(self) -> str:
        return self.colormap.currentText()

    def set_display(self, alpha: float | None = None, colormap: str | None = None,
                    plain: bool | None = None) -> None:
        if alpha is not None:
            self.opacity.setValue(int(round(100 * float(alpha))))
        if colormap is not None and colormap in overlay.COLORMAPS:
            self.colormap.setCurrentText(colormap)
        if plain is not None:
            self.plain.setChecked(bool(plain))

    def set_plain(self, plain: bool) -> None:
        """Show the image alone in both panels (True) or the heat maps (False)."""
        self.plain.setChecked(bool(plain))

    # --- drawing -----------------------------------------------------------------------------

    def _display_changed(self, *args) -> None:
        self.colour_bar.set_colormap(self.colormap_name())
        self._refresh()
        self.display_changed.emit()

    def _on_method(self, name: str) -> None:
        if name:
            self.method_changed.emit(name)

    def box_dashed(self) -> bool:
        """Whether the lesion box on the maps is drawn dashed (not the user's own box)."""
        return self._maps is None or self._maps.prediction.box_source != "user"

    def _refresh(self) -> None:
        box = None
        dashed = self.box_dashed()
        if self._roi is not None and self._small is not None:
            s = self._scale
            box = QRectF(self._roi.x * s, self._roi.y * s, self._roi.w * s, self._roi.h * s)
        if self._small is None:
            for v in self.views:
                v.set_picture(None, placeholder=self._status)
            for d in self.descriptions:
                d.setText("")
            return
        if self._small_maps is None or self.plain.isChecked():
            base = to_pixmap(self._small)
            placeholder = "" if self.plain.isChecked() and self._small_maps else self._status
            for v in self.views:
                v.set_picture(base, box, placeholder, dashed)
            if self._small_maps is None:
                for d in self.descriptions:
                    d.setText("")
            return
        for i, v in enumerate(self.views):
            blended = overlay.blend(self._small, self._small_maps[i], self.alpha(),
                                    self.colormap_name())
            v.set_picture(to_pixmap(blended), box, dashed=dashed)
