"""One colour scale for both evidence maps, set by the evidence for the result.

No Qt here. This is the one rule every picture of the heat maps follows: the two panels on
screen, the heat map laid over the main image, and the PNG, PDF and DICOM reports.

The result's map is the malignant map for a suspicious result and the benign map for one below
the cut-off. The top of the colour bar is that map's peak, and both maps are divided by it:

    shown_k = min(1, map_k / max(map_result))                 k in {benign, malignant}

So the evidence behind the result always reaches the top colour, whatever the probabilities
(a result just above the cut-off, at P(malignant) = 0.21, shows its malignant evidence at full
strength), and the other map keeps its height relative to it: the engine's closed-form maps
come in the same units (each cell's share of the decision score; see
:func:`~rcdnet_desktop.core.model.explain.decision_evidence`), so a weak counter-argument
looks weak, and one stronger than the result's own evidence is shown at the top colour. Maps from
pytorch-grad-cam's methods are each normalised to their own maximum, so both reach the top.
Where each map is strongest, and the sentences that describe it, do not change (they are
measured on the maps themselves).
"""

from __future__ import annotations

import numpy as np

from rcdnet_desktop.core.types import HeatMaps

SCALE_CAPTION = "Both maps on one scale; the top is the strongest evidence for the result"
"""What the colour bar means, in words: printed with it on screen and in every report."""
SCALE_TOOLTIP = ("Both maps share this scale. Its top is the strongest evidence for the result "
                 "(the malignant map when suspicious, the benign map below the cut-off), so "
                 "that evidence always shows; the other map keeps its height relative to it.")
"""The scale's rule in one sentence, for a tooltip or a help text."""
SCALE_ENDS = ("none", "strongest")
"""The words at the two ends of the colour bar."""


def _peak(a: np.ndarray) -> float:
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    m = float(np.nanmax(a))
    return m if np.isfinite(m) and m > 0 else 0.0


def shared_scale_factors(maps: HeatMaps) -> tuple[float, float]:
    """The factors ``f_k`` with ``shown_k = min(1, map_k * f_k)`` for the benign and malignant
    maps: both ``1 / max(map_result)``.

    The result's map is the malignant one when ``maps.prediction.suspicious`` is true, else
    the benign one. When it is empty the other map's peak sets the scale; both factors are 0
    when neither map holds any evidence.
    """
    peaks = (_peak(maps.benign), _peak(maps.malignant))
    result = 1 if maps.prediction.suspicious else 0
    top = peaks[result] if peaks[result] > 0 else peaks[1 - result]
    if top <= 0.0:
        return 0.0, 0.0
    return 1.0 / top, 1.0 / top


def apply_factor(heatmap: np.ndarray, factor: float) -> np.ndarray:
    """``heatmap * factor`` as float32, clipped to [0, 1] (a new array)."""
    out = np.asarray(heatmap, dtype=np.float32) * np.float32(factor)
    return np.clip(out, 0.0, 1.0, out=out)


def shared_scale(maps: HeatMaps) -> tuple[np.ndarray, np.ndarray]:
    """Both maps on the shared scale (see the module's docstring), float32 in [0, 1]."""
    fb, fm = shared_scale_factors(maps)
    return apply_factor(maps.benign, fb), apply_factor(maps.malignant, fm)


__all__ = ["SCALE_CAPTION", "SCALE_ENDS", "SCALE_TOOLTIP", "apply_factor", "shared_scale",
           "shared_scale_factors"]
