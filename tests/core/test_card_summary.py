"""The model card's page for clinicians: figures read from the card, predictive values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rcdnet_desktop.core.card_summary import clinician_page, npv, page_text, ppv

CARD = Path(__file__).resolve().parents[2] / "resources" / "model" / "model_card.json"


def test_predictive_values_follow_from_sensitivity_specificity_and_prevalence():
    # 100 lesions, 30 cancers: 24 found, 56 of 70 benign below the cut-off.
    assert ppv(0.8, 0.8, 0.3) == pytest.approx(24 / (24 + 14))
    assert npv(0.8, 0.8, 0.3) == pytest.approx(56 / (56 + 6))
    assert ppv(0.9, 0.8, 0.05) < ppv(0.9, 0.8, 0.3)  # rarer cancer, fewer true alarms


def test_the_shipped_card_gives_a_page_in_plain_words():
    card = json.loads(CARD.read_text())
    sections = {s.title: s for s in clinician_page(card)}
    assert list(sections) == ["What it is for", "How good it is at another hospital",
                              "What a result means where you work",
                              "What the band, the decision and the colours mean",
                              "When not to use it"]
    external = " ".join(sections["How good it is at another hospital"].paragraphs)
    recall = card["operating_point"]["at_threshold_external"]["recall"]["value"]
    assert f"{100 * recall:.0f}%" in external and "AUC" in external
    table = sections["What a result means where you work"].table
    assert [row[0] for row in table[1:]] == ["5%", "15%", "30%"]
    text = page_text(clinician_page(card))
    assert "Decision support, not a diagnosis" in text and "Not for images with Doppler" in text
    assert "not a BI-RADS assessment" in text


def test_a_card_without_external_figures_says_so_and_claims_nothing():
    sections = {s.title: s for s in clinician_page({"intended_use": "testing"})}
    assert "untested" in sections["How good it is at another hospital"].paragraphs[0]
    assert "What a result means where you work" not in sections
