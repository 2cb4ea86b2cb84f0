"""One colour scale for both evidence maps: each map weighted by its class's probability.

No Qt here. This is the one rule every picture of the heat maps follows: the two panels on
screen, the heat map laid over the main image, and the PNG, PDF and DICOM reports.

The engine's maps are each normalised to their own maximum (Grad-CAM's min-max, see
:func:`~rcdnet_desktop.core.explain.gradcam_like_normalise`), so on its own the map of a class
at probability 0.13 glows as red as that of a class at 0.87. For display both go on one scale:

    shown_k = map_k * p_k / max over j of (max(map_j) * p_j)        k, j in {benign, malignant}

Each map is weighted by its class's calibrated probability, and the two are divided by the same
number, so the top of the colour bar is the strongest weighted evidence of either class, and
the other class's map is dimmed in proportion: at P(benign) = 0.13 and P(malignant) = 0.87 the
benign map peaks at 0.13 / 0.87 = 0.15 of the scale. Where each map is strongest, and the
sentences that describe it, do not change (they are measured on the maps themselves).
"""

from __future__ import annotations

import numpy as np

from rcdnet_desktop.core.types import HeatMaps

SCALE_CAPTION = "Evidence on one scale for both maps, weighted by each class's probability"
"""What the colour bar means, in words: printed with it on screen and in every report."""
SCALE_ENDS = ("none", "strongest")
"""The words at the two ends of the colour bar."""


def _peak(a: np.ndarray) -> float:
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    m = float(np.nanmax(a))
    return m if np.isfinite(m) and m > 0 else 0.0


def shared_scale_factors(maps: HeatMaps) -> tuple[float, float]:
    """The factors ``f_k`` with ``shown_k = map_k * f_k`` for the benign and malignant maps.

    ``f_k = p_k / max_j(max(map_j) * p_j)``; both are 0 when neither map holds any evidence.
    """
    p = (float(maps.prediction.p_benign), float(maps.prediction.p_malignant))
    weighted = [_peak(m) * max(pk, 0.0) for m, pk in zip((maps.benign, maps.malignant), p,
                                                          strict=True)]
    top = max(weighted)
    if top <= 0.0:
        return 0.0, 0.0
    return max(p[0], 0.0) / top, max(p[1], 0.0) / top


def apply_factor(heatmap: np.ndarray, factor: float) -> np.ndarray:
    """``heatmap * factor`` as float32, clipped to [0, 1] (a new array)."""
    out = np.asarray(heatmap, dtype=np.float32) * np.float32(factor)
    return np.clip(out, 0.0, 1.0, out=out)


def shared_scale(maps: HeatMaps) -> tuple[np.ndarray, np.ndarray]:
    """Both maps on the shared scale (see the module's docstring), float32 in [0, 1]."""
    fb, fm = shared_scale_factors(maps)
    return apply_factor(maps.benign, fb), apply_factor(maps.malignant, fm)


__all__ = ["SCALE_CAPTION", "SCALE_ENDS", "apply_factor", "shared_scale",
           "shared_scale_factors"]
