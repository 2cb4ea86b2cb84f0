"""Both evidence maps on one scale, set by the evidence for the result."""

from __future__ import annotations

import numpy as np
import pytest

from rcdnet_desktop.core.evidence_scale import apply_factor, shared_scale, shared_scale_factors
from rcdnet_desktop.core.types import HeatMaps, Prediction


def maps(p_malignant: float, benign_peak: float = 1.0, malignant_peak: float = 1.0,
         suspicious: bool | None = None) -> HeatMaps:
    b = np.zeros((20, 30), np.float32)
    m = np.zeros((20, 30), np.float32)
    b[5, 5] = benign_peak
    m[10, 20] = malignant_peak
    b[6, 6] = benign_peak / 2
    pred = Prediction(p_benign=1 - p_malignant, p_malignant=p_malignant, device="cpu",
                      model_version="t", suspicious=suspicious)
    return HeatMaps(b, m, "fast", pred)


def test_a_suspicious_result_just_above_the_cut_off_shows_its_malignant_evidence_in_full():
    """At P(malignant) = 0.21 over a cut-off of 0.158 the result is suspicious: its malignant
    map reaches the top of the scale, even where the benign evidence is stronger (which is
    then shown at the top colour too)."""
    benign, malignant = shared_scale(maps(0.21, benign_peak=1.0, malignant_peak=0.25,
                                          suspicious=True))
    assert malignant.max() == pytest.approx(1.0)
    assert benign.max() == pytest.approx(1.0)
    assert benign[6, 6] == pytest.approx(1.0)  # 0.5 / 0.25, capped


def test_the_other_map_keeps_its_height_relative_to_the_results():
    hm = maps(0.87, benign_peak=0.15, malignant_peak=0.6, suspicious=True)
    fb, fm = shared_scale_factors(hm)
    assert fb == fm == pytest.approx(1 / 0.6)
    benign, malignant = shared_scale(hm)
    assert malignant.max() == pytest.approx(1.0)
    assert benign.max() == pytest.approx(0.25, rel=1e-5)
    # The shape of each map is kept: only its height changes.
    assert benign[6, 6] == pytest.approx(benign.max() / 2, rel=1e-5)
    assert benign.dtype == np.float32 and benign.shape == hm.benign.shape


def test_below_the_cut_off_the_benign_map_sets_the_top():
    benign, malignant = shared_scale(maps(0.05, benign_peak=0.5, malignant_peak=0.1,
                                          suspicious=False))
    assert benign.max() == pytest.approx(1.0)
    assert malignant.max() == pytest.approx(0.2, rel=1e-5)


def test_an_empty_result_map_lets_the_other_set_the_scale():
    benign, malignant = shared_scale(maps(0.3, benign_peak=0.4, malignant_peak=0.0,
                                          suspicious=True))
    assert benign.max() == pytest.approx(1.0) and not malignant.any()


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
