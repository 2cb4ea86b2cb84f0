"""Both evidence maps on one scale, weighted by each class's probability."""

from __future__ import annotations

import numpy as np
import pytest

from rcdnet_desktop.core.evidence_scale import apply_factor, shared_scale, shared_scale_factors
from rcdnet_desktop.core.types import HeatMaps, Prediction


def maps(p_malignant: float, benign_peak: float = 1.0, malignant_peak: float = 1.0) -> HeatMaps:
    b = np.zeros((20, 30), np.float32)
    m = np.zeros((20, 30), np.float32)
    b[5, 5] = benign_peak
    m[10, 20] = malignant_peak
    b[6, 6] = benign_peak / 2
    pred = Prediction(p_benign=1 - p_malignant, p_malignant=p_malignant, device="cpu",
                      model_version="t")
    return HeatMaps(b, m, "fast", pred)


def test_unlikely_class_looks_weak():
    """At P(benign) = 0.13 the benign map peaks at 0.13 / 0.87 of the scale, not full red."""
    benign, malignant = shared_scale(maps(0.87))
    assert malignant.max() == pytest.approx(1.0)
    assert benign.max() == pytest.approx(0.13 / 0.87, rel=1e-5)
    # The shape of each map is kept: only its height changes.
    assert benign[6, 6] == pytest.approx(benign.max() / 2, rel=1e-5)


def test_the_stronger_weighted_map_sets_the_top_and_both_share_it():
    hm = maps(0.4, benign_peak=1.0, malignant_peak=1.0)
    fb, fm = shared_scale_factors(hm)
    assert fb == pytest.approx(1.0)  # benign: 0.6 is the strongest weighted evidence
    assert fm == pytest.approx(0.4 / 0.6)
    benign, malignant = shared_scale(hm)
    assert benign.dtype == np.float32 and benign.shape == hm.benign.shape
    assert float(max(benign.max(), malignant.max())) == pytest.approx(1.0)


def test_empty_maps_stay_empty():
    hm = maps(0.5, benign_peak=0.0, malignant_peak=0.0)
    assert shared_scale_factors(hm) == (0.0, 0.0)
    benign, malignant = shared_scale(hm)
    assert not benign.any() and not malignant.any()


def test_apply_factor_clips_and_copies():
    a = np.array([[0.5, 1.0]], np.float32)
    out = apply_factor(a, 1.5)
    assert out.tolist() == [[0.75, 1.0]]
    assert a.tolist() == [[0.5, 1.0]]
