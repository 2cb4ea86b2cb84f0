"""Likelihood bands: boundaries, labels, the card's own bands and threshold."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rcdnet_desktop.core.bands import (
    DEFAULT_BANDS,
    band_for,
    card_bands,
    default_band_specs,
    default_mode,
    parse_bands,
    suspicious_threshold,
)
from rcdnet_desktop.core.types import Prediction


@pytest.mark.parametrize(("p", "name"), [
    (0.0, "very low"), (0.02, "very low"), (0.0201, "low"), (0.1, "low"), (0.10001, "moderate"),
    (0.5, "moderate"), (0.5001, "high"), (0.95, "high"), (0.951, "very high"),
    (1.0, "very high"), (1.0 + 1e-9, "very high"), (-1e-9, "very low"),
])
def test_default_band_boundaries(p, name):
    assert band_for(p).name == name


def test_default_bands_labels_and_birads_ranges():
    assert [b.label for b in DEFAULT_BANDS] == [
        "very low (0-2%)", "low (2-10%)", "moderate (10-50%)", "high (50-95%)",
        "very high (95-100%)"]
    assert [b.birads_range for b in DEFAULT_BANDS] == ["3", "4A", "4B", "4C", "5"]
    assert parse_bands(default_band_specs()) == DEFAULT_BANDS


def test_non_finite_probability_is_refused():
    with pytest.raises(ValueError, match="finite"):
        band_for(float("nan"))


def test_card_bands_threshold_and_mode():
    plain = SimpleNamespace(operating_point={})
    assert card_bands(plain) == DEFAULT_BANDS and suspicious_threshold(plain) == 0.5
    assert default_mode(plain) == "auto" and default_mode(None) == "auto"
    card = SimpleNamespace(operating_point={
        "default_mode": "fusion", "suspicious_threshold": 0.2,
        "bands": [{"name": "unlikely", "upper": 0.2, "birads_range": ""},
                  {"name": "likely", "upper": 1.0, "birads_range": ""}]})
    assert band_for(0.2, card).name == "unlikely" and band_for(0.21, card).name == "likely"
    assert band_for(0.21, card).label == "likely (20-100%)"
    assert suspicious_threshold(card) == 0.2 and default_mode(card) == "fusion"


def test_prediction_without_a_card_uses_the_defaults():
    p = Prediction(p_benign=0.97, p_malignant=0.03, device="cpu", model_version="t")
    assert p.band.name == "low" and p.suspicious is False
    assert p.box_source == "none" and p.mode == "whole image"
    q = Prediction(p_benign=0.5, p_malignant=0.5, device="cpu", model_version="t")
    assert q.suspicious is True and q.band.name == "moderate"
    with pytest.raises(ValueError, match="box_source"):
        Prediction(p_benign=0.5, p_malignant=0.5, device="cpu", model_version="t",
                   box_source="guess")
