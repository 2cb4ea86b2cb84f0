"""One of the two heat maps laid over the main image (View > Heat map over the image, the
toolbar's "Overlay"; which one: View > Overlay map).

:class:`ImageOverlay` follows the evidence panel: the maps it shows, on the same shared scale
(:mod:`rcdnet_desktop.core.evidence_scale`), in the same colour map and opacity. The map is
coloured at most :data:`OVERLAY_MAX_SIDE` pixels on a side and stretched over the image by the
view, so a large image costs no full-size copy.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from rcdnet_desktop.core import overlay
from rcdnet_desktop.core.evidence_scale import apply_factor
from rcdnet_desktop.gui.image.image_view import ImageView
from rcdnet_desktop.gui.panels.heatmap_panel import TITLES, HeatmapPanel
from rcdnet_desktop.gui.qimage import downscale

CHOICES = {"benign": "&Benign evidence", "malignant": "&Malignant evidence"}
"""Which heat map goes over the main image when the overlay is on -> menu text; ``"none"`` is
the overlay off."""
DEFAULT_MAP = "malignant"
OVERLAY_MAX_SIDE = 1024


def overlay_rgba(heatmap: np.ndarray, alpha: float, colormap: str) -> np.ndarray:
    """A heat map in [0, 1] as an RGBA picture: its colours at a constant opacity ``alpha``.

    Painted over the image this gives ``(1 - alpha) * image + alpha * colour``, exactly
    :func:`rcdnet_desktop.core.overlay.blend`.
    """
    rgb = overlay.colorize(heatmap, colormap)
    a = np.full(rgb.shape[:2] + (1,), int(round(255 * float(alpha))), np.uint8)
    return np.concatenate([rgb, a], axis=2)


class ImageOverlay(QObject):
    """Keeps the chosen heat map laid over the main image, as the evidence panel shows it."""

    def __init__(self, view: ImageView, panel: HeatmapPanel, choice: str = "none") -> None:
        super().__init__(view)
        self._view = view
        self._panel = panel
        self._choice = choice if choice in CHOICES else "none"
        self._map = self._choice if self._choice in CHOICES else DEFAULT_MAP
        self._small: tuple[object, int, np.ndarray] | None = None  # (maps, class, small map)
        panel.maps_changed.connect(self.refresh)
        panel.display_changed.connect(self.refresh)

    def choice(self) -> str:
        return self._choice

    def map_choice(self) -> str:
        """The map laid over the image when the overlay is on (the last one chosen)."""
        return self._map

    def set_choice(self, choice: str) -> None:
        """``"none"`` (off), ``"benign"`` or ``"malignant"``."""
        self._choice = choice if choice in CHOICES else "none"
        if self._choice in CHOICES:
            self._map = self._choice
        self.refresh()

    def refresh(self) -> None:
        maps = self._panel.maps()
        # "Show plain image" (H) hides the heat maps everywhere, this one too.
        if self._choice == "none" or maps is None or self._panel.plain.isChecked():
            self._small = None
            self._view.set_overlay(None)
            return
        index = 0 if self._choice == "benign" else 1
        if self._small is None or self._small[0] is not maps or self._small[1] != index:
            factor = self._panel.shared_scale_factors()[index]
            small = apply_factor(downscale(maps.for_class(index), OVERLAY_MAX_SIDE)[0], factor)
            self._small = (maps, index, small)
        p = maps.prediction.p_benign if index == 0 else maps.prediction.p_malignant
        self._view.set_overlay(overlay_rgba(self._small[2], self._panel.alpha(),
                                            self._panel.colormap_name()),
                               f"{TITLES[index]} (P = {p:.2f})")
