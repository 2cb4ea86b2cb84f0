"""The operating point: the indeterminate band around the cut-off and the measured sensitivity."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from rcdnet_desktop.core.bands import band_for
from rcdnet_desktop.core.operating_point import OperatingPoint

CARD = Path(__file__).resolve().parents[2] / "resources" / "model" / "model_card.json"


def card(**op) -> SimpleNamespace:
    return SimpleNamespace(operating_point=op)


def measured(recall: float) -> dict:
    return {"recall": {"value": recall, "ci95": [recall - 0.05, recall + 0.05]},
            "specificity": {"value": 0.8}}


def test_without_a_card_the_band_holding_one_half_is_indeterminate():
    op = OperatingPoint.from_card(None)
    assert op.threshold == 0.5
    assert [b.name for b in op.indeterminate()] == ["moderate"]
    assert op.tone(band_for(0.47)) == "indeterminate"  # never a plain green "benign" at 0.47
    assert op.tone(band_for(0.03)) == "below"
    assert op.tone(band_for(0.8)) == "above"
    assert op.sensitivity_sentence(False) == ""  # nothing measured, nothing claimed


def test_a_low_cut_off_in_its_own_band_makes_two_bands_indeterminate():
    op = OperatingPoint.from_card(card(suspicious_threshold=0.05))
    assert [b.name for b in op.indeterminate()] == ["low", "moderate"]
    assert op.tone(band_for(0.36)) == "indeterminate"
    assert op.tone(band_for(0.01)) == "below"


def test_sentence_names_internal_and_external_sensitivity():
    op = OperatingPoint.from_card(card(suspicious_threshold=0.16,
                                       at_threshold_internal=measured(0.9),
                                       at_threshold_external=measured(0.7556)))
    below = op.sensitivity_sentence(False)
    assert below.startswith("Below the suspicious cut-off (0.16).")
    assert "90% of cancers in internal validation" in below
    assert "76% at another hospital" in below
    assert "does not rule cancer out" in below
    above = op.sensitivity_sentence(True)
    assert above.startswith("At or above the suspicious cut-off (0.16).")
    assert "rule cancer out" not in above


def test_only_what_was_measured_is_said():
    op = OperatingPoint.from_card(card(at_threshold_internal=measured(0.7),
                                       at_threshold_external={"recall": "n/a"}))
    assert op.sensitivity_internal == 0.7 and op.sensitivity_external is None
    assert "another hospital" not in op.sensitivity_sentence(False)


def test_the_shipped_card_gives_both_figures():
    data = json.loads(CARD.read_text())
    op = OperatingPoint.from_card(SimpleNamespace(operating_point=data["operating_point"]))
    assert op.sensitivity_internal is not None and op.sensitivity_external is not None
    sentence = op.sensitivity_sentence(False)
    assert "internal validation" in sentence and "another hospital" in sentence
