"""One result vocabulary: decision at the cut-off, band, numbers, tone, headline, frames."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rcdnet_desktop.core import result
from rcdnet_desktop.core.bands import band_for
from rcdnet_desktop.core.model.engine import NO_LESION_WARNING
from rcdnet_desktop.core.numbers import decimals_apart, pair_text
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.types import Box, Prediction

CUT = 0.158
OP = OperatingPoint.from_card(SimpleNamespace(operating_point={
    "suspicious_threshold": CUT,
    "at_threshold_internal": {"recall": {"value": 0.9}},
    "at_threshold_external": {"recall": {"value": 0.76}}}))
BOX = Box(10, 10, 40, 30)


def pred(p: float, **kw) -> Prediction:
    kw.setdefault("box", BOX)
    kw.setdefault("roi", BOX)
    kw.setdefault("box_source", "user")
    return Prediction(p_benign=1 - p, p_malignant=p, device="cpu", model_version="t",
                      band=band_for(p), suspicious=p >= CUT, threshold=CUT, **kw)


@pytest.mark.parametrize("p", [0.158, 0.21, 0.35, 0.49])
def test_at_or_above_the_cut_off_nothing_says_benign(p):
    words = result.describe(pred(p), OP)
    text = " ".join([words.headline, words.decision, words.cutoff_sentence,
                     result.list_text(pred(p)), *words.caveats])
    assert "benign" not in text.lower()
    assert words.decision == result.SUSPICIOUS and words.decision_code == "suspicious"
    assert words.headline.endswith("suspicious") and words.tone == "alert"
    assert words.cutoff_sentence.startswith("At or above the suspicious cut-off")


def test_below_the_cut_off_is_never_called_benign_and_not_ruled_out():
    words = result.describe(pred(0.12), OP)
    assert words.decision == "below the cut-off" and words.decision_code == "below_cutoff"
    assert words.headline == "Moderate (10-50%), below the cut-off"
    assert "does not rule cancer out" in words.cutoff_sentence


@pytest.mark.parametrize(("p", "tone"), [
    (0.01, "reassuring"), (0.02, "reassuring"),  # the BI-RADS 3 range only
    (0.021, "neutral"), (0.07, "neutral"), (0.15, "neutral"),  # 4A is a biopsy category
    (0.16, "alert"), (0.9, "alert"),
])
def test_only_the_birads_3_range_is_reassuring(p, tone):
    assert result.tone(pred(p)) == tone


def test_whole_image_and_outside_intended_use_are_never_reassuring():
    whole = pred(0.01, box=None, roi=None, box_source="none")
    assert result.tone(whole) == "neutral"
    assert result.WHOLE_IMAGE_NOTE in result.caveats(whole)
    outside = pred(0.01, checks=("not_breast_ultrasound",))
    assert result.tone(outside) == "outside"
    assert result.headline(outside).startswith("Outside intended use")


def test_no_lesion_found_leads_the_headline_and_asks_for_a_box():
    p = pred(0.07, box=None, roi=None, box_source="none", warnings=(NO_LESION_WARNING,))
    assert result.no_lesion_found(p)
    first, second = result.headline(p).split("\n")
    assert first == "No lesion found: draw a box around the lesion"
    assert second == "Whole image, less reliable: low (2-10%), below the cut-off"
    assert result.tone(p) == "neutral"


def test_the_engine_warning_is_the_one_recognised():
    assert NO_LESION_WARNING.startswith(result.NO_LESION_PREFIX)


@pytest.mark.parametrize(("p", "shown", "cut"), [
    (0.35, "0.35", "0.16"),
    (0.156, "0.156", "0.158"),  # 0.16 beside "below the cut-off (0.16)" would contradict it
    (0.1579, "0.1579", "0.1580"),
    (0.158, "0.16", "0.16"),  # at the cut-off: equal is "at or above"
    (0.1004, "0.1004", "0.1580"),  # 0.10 would put it in the band below
])
def test_printed_numbers_never_contradict_the_decision_or_the_band(p, shown, cut):
    pr = pred(p)
    assert result.probability_text(pr) == shown
    assert result.cutoff_text(pr) == cut
    assert (float(shown) >= float(cut)) == pr.suspicious
    assert pr.band.lower < float(shown) <= pr.band.upper


def test_a_distance_and_its_limit_share_one_rounding():
    assert pair_text(21.4, 20.6, 0) == ("21.4", "20.6")
    assert pair_text(21.3, 20.6, 0) == ("21.3", "20.6")
    assert pair_text(25.0, 21.0, 0) == ("25", "21")
    assert decimals_apart(0.5, [0.5]) == 2


def test_frames_are_counted_from_one():
    assert result.frame_number(0) == 1 and result.frame_number(21) == 22


def test_a_prediction_without_a_card_decides_at_one_half():
    p = Prediction(p_benign=0.6, p_malignant=0.4, device="cpu", model_version="t")
    assert p.threshold == 0.5 and not p.suspicious
    assert result.cutoff_text(p) == "0.50"


def test_a_box_dependent_result_says_so_and_is_never_reassuring():
    p = pred(0.015, box_p_range=(0.012, 0.19))  # the views straddle the cut-off
    assert p.box_dependent and result.tone(p) == "neutral"
    sentence = result.box_dependence_sentence(p)
    assert sentence == ("Depends on the box: drawn slightly differently, P ranges from 0.01 to "
                        "0.19, on both sides of the cut-off.")
    assert sentence in result.describe(p, OP).caveats
    steady = pred(0.015, box_p_range=(0.012, 0.018))
    assert not steady.box_dependent and result.tone(steady) == "reassuring"
    assert result.caveats(steady) == ()


def test_views_near_the_cut_off_get_the_digits_that_keep_their_side():
    p = pred(0.2, box_p_range=(0.156, 0.25))
    assert "from 0.156 to 0.250" in result.box_dependence_sentence(p)
