"""The operating point read from the card: cut-off, bands and the sensitivity measured there."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from rcdnet_desktop.core.operating_point import OperatingPoint

CARD = Path(__file__).resolve().parents[2] / "resources" / "model" / "model_card.json"


def card(**op) -> SimpleNamespace:
    return SimpleNamespace(operating_point=op)


def measured(recall: float) -> dict:
    return {"recall": {"value": recall, "ci95": [recall - 0.05, recall + 0.05]},
            "specificity": {"value": 0.8}}


def test_without_a_card_the_cut_off_is_one_half_and_nothing_is_claimed():
    op = OperatingPoint.from_card(None)
    assert op.threshold == 0.5
    assert op.sensitivity_words() == ""  # nothing measured, nothing claimed


def test_words_name_internal_and_external_sensitivity():
    op = OperatingPoint.from_card(card(suspicious_threshold=0.16,
                                       at_threshold_internal=measured(0.9),
                                       at_threshold_external=measured(0.7556)))
    assert op.threshold == 0.16
    assert op.sensitivity_words() == ("90% of cancers in internal validation and 76% at "
                                      "another hospital")


def test_only_what_was_measured_is_said():
    op = OperatingPoint.from_card(card(at_threshold_internal=measured(0.7),
                                       at_threshold_external={"recall": "n/a"}))
    assert op.sensitivity_internal == 0.7 and op.sensitivity_external is None
    assert "another hospital" not in op.sensitivity_words()


def test_the_shipped_card_gives_both_figures():
    data = json.loads(CARD.read_text())
    op = OperatingPoint.from_card(SimpleNamespace(operating_point=data["operating_point"]))
    assert op.sensitivity_internal is not None and op.sensitivity_external is not None
    words = op.sensitivity_words()
    assert "internal validation" in words and "another hospital" in words
