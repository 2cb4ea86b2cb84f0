"""Views of a lesion box: geometry, the card section, the engine's averaging, box_dependent."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rcdnet_desktop.core.box_views import (
    AS_GIVEN,
    BoxView,
    apply,
    parse_views,
    snap_min_iou,
    view_boxes,
)
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.lesion import box_iou, lesion_in_box
from rcdnet_desktop.core.model.card import ModelCard, load_card
from rcdnet_desktop.core.model.engine import InferenceEngine, pad_roi
from rcdnet_desktop.core.resources import resources_dir
from rcdnet_desktop.core.result import box_dependence_sentence
from rcdnet_desktop.core.types import Box, Prediction
from tests.core.localiser_helpers import FakeLocaliser, blob_box

VIEWS = [[1.0, 0.0, 0.0], [0.9, 0.0, 0.0], [1.1, 0.0, 0.0], [1.0, 0.1, 0.0], [1.0, 0.0, -0.1]]
BOX = Box(150, 100, 100, 80)


def _engine(engine, views=VIEWS, fake=None, **card_changes) -> InferenceEngine:
    card_changes.setdefault("operating_point", {})
    section = {"views": views} if views else {}
    return InferenceEngine(model=engine.model, card=replace(engine.card, box_views=section,
                                                            **card_changes),
                           device="cpu", localiser=fake)


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def _sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-z)))


# --- geometry and the card section ----------------------------------------------------------

def test_views_scale_about_the_centre_and_shift_by_the_box_size():
    hw = (400, 600)
    assert apply(BOX, AS_GIVEN, hw) == BOX
    assert apply(BOX, BoxView(1.1), hw) == Box(145, 96, 110, 88)
    assert apply(BOX, BoxView(0.9), hw) == Box(155, 104, 90, 72)
    assert apply(BOX, BoxView(1.0, 0.1, -0.1), hw) == Box(160, 92, 100, 80)
    assert view_boxes(BOX, [AS_GIVEN, BoxView(0.9)], hw) == [BOX, Box(155, 104, 90, 72)]


def test_views_are_clipped_to_the_image():
    hw = (120, 200)
    corner = Box(0, 0, 50, 40)
    assert apply(corner, BoxView(1.0, -0.5, -0.5), hw) == Box(0, 0, 25, 20)
    assert apply(Box(180, 100, 20, 20), BoxView(2.0), hw) == Box(170, 90, 30, 30)


def test_parse_views():
    assert parse_views({}) == (AS_GIVEN,)
    assert parse_views(None) == (AS_GIVEN,)
    views = parse_views({"views": VIEWS, "chosen_on": "anything"})
    assert views[0] == AS_GIVEN and views[3] == BoxView(1.0, 0.1, 0.0) and len(views) == 5
    assert [v.to_list() for v in views] == VIEWS


@pytest.mark.parametrize("section, words", [
    ({"views": [[0.9, 0, 0], [1, 0, 0]]}, "first view must be [1, 0, 0]"),
    ({"views": [[1, 0, 0], [0.9, 0, 0], [0.9, 0, 0]]}, "must not repeat"),
    ({"views": [[1, 0, 0], [9.0, 0, 0]]}, "scale"),
    ({"views": [[1, 0, 0], [1.0, 2.0, 0]]}, "shift"),
    ({"views": [[1, 0]]}, "[scale, dx, dy]"),
    ({"views": []}, "list of 1 to"),
    ({"chosen_on": "x"}, "list of 1 to"),
    ({"views": [[1, 0, 0]], "snap_min_iou": 0}, "snap_min_iou"),
    ({"views": [[1, 0, 0]], "snap_min_iou": 1.5}, "snap_min_iou"),
])
def test_bad_sections_are_refused_by_the_card(section, words):
    with pytest.raises(ValueError, match=None) as exc:
        parse_views(section)
        snap_min_iou(section)
    assert words in str(exc.value)
    card = load_card(resources_dir() / "model").to_dict()
    card["box_views"] = section
    with pytest.raises(WeightsError, match="box_views"):
        ModelCard.from_dict(card)
    card["box_views"] = "views"
    with pytest.raises(WeightsError, match="box_views must be an object"):
        ModelCard.from_dict(card)


def test_the_bundled_card_has_views_that_start_with_the_box_as_given():
    card = load_card(resources_dir() / "model")
    views = parse_views(card.box_views)
    assert views[0] == AS_GIVEN and len(views) > 1
    assert ModelCard.from_dict(card.to_dict()) == card  # the section survives a round trip


# --- box_dependent and its sentence ---------------------------------------------------------

def _pred(p_range, cut_off=0.158, p=0.2) -> Prediction:
    return Prediction(p_benign=1 - p, p_malignant=p, device="cpu", model_version="t",
                      roi=BOX, box_p_range=p_range, threshold=cut_off,
                      suspicious=p >= cut_off)


@pytest.mark.parametrize("p_range, dependent", [
    ((0.12, 0.31), True),
    ((0.12, 0.158), True),     # at the cut-off is suspicious: both sides
    ((0.158, 0.31), False),    # every view at or above
    ((0.02, 0.157), False),    # every view below
    (None, False),
])
def test_box_dependent(p_range, dependent):
    pred = _pred(p_range)
    assert pred.box_dependent is dependent
    sentence = box_dependence_sentence(pred)
    assert bool(sentence) is dependent


def test_sentence_words_and_digits():
    assert box_dependence_sentence(_pred((0.12, 0.31))) == (
        "Depends on the box: drawn slightly differently, P ranges from 0.12 to 0.31, on both "
        "sides of the cut-off.")
    # Two decimals would read 0.16 for a view below a cut-off of 0.158: a third is shown.
    assert "from 0.157 to 0.170" in box_dependence_sentence(_pred((0.157, 0.17)))


def test_cut_off_defaults_to_the_default_threshold():
    pred = Prediction(p_benign=0.6, p_malignant=0.4, device="cpu", model_version="t",
                      box_p_range=(0.4, 0.6))
    assert pred.threshold == 0.5 and pred.box_dependent and not pred.suspicious
    # A caller that gives the decision but not its cut-off: the default cut-off is used.
    given = replace(pred, suspicious=False, threshold=None)
    assert given.threshold is None and given.box_dependent


# --- the engine ------------------------------------------------------------------------------

def test_user_box_averages_the_logits_of_its_views(engine, sample_malignant):
    hw = sample_malignant.shape[:2]
    alone = _engine(engine, views=None)
    eng = _engine(engine)
    singles = [alone.predict(sample_malignant, roi=b).p_malignant
               for b in view_boxes(BOX, parse_views({"views": VIEWS}), hw)]
    maps = eng.explain(sample_malignant, roi=BOX)
    pred = maps.prediction
    assert pred.p_malignant == pytest.approx(_sigmoid(np.mean([_logit(p) for p in singles])),
                                             abs=1e-5)
    assert pred.box_p_range == pytest.approx((min(singles), max(singles)), abs=1e-5)
    assert pred.threshold == eng.card.operating_point.get("suspicious_threshold", 0.5)
    assert pred.suspicious == (pred.p_malignant >= pred.threshold)
    # One box identity: the box and the region shown are the box as given, not a view.
    assert pred.box == BOX and pred.box_source == "user"
    assert pred.roi == pad_roi(BOX, hw, eng.card.roi_margin)
    # The heat maps are the as-given view's.
    ref = alone.explain(sample_malignant, roi=BOX)
    np.testing.assert_allclose(maps.malignant, ref.malignant, atol=1e-5)
    np.testing.assert_allclose(maps.benign, ref.benign, atol=1e-5)


def test_automatic_box_uses_the_views_too(engine, sample_benign):
    hw = sample_benign.shape[:2]
    eng = _engine(engine, fake=FakeLocaliser())
    pred = eng.predict(sample_benign)
    assert pred.box_source == "auto" and pred.box == blob_box(hw)
    user = eng.predict(sample_benign, roi=blob_box(hw))
    assert pred.p_malignant == pytest.approx(user.p_malignant, abs=1e-6)
    assert pred.box_p_range == pytest.approx(user.box_p_range, abs=1e-6)
    alone = _engine(engine, views=None, fake=FakeLocaliser()).predict(sample_benign)
    assert alone.box_p_range is None and alone.box == pred.box
    assert abs(alone.p_malignant - pred.p_malignant) > 1e-5


def test_fusion_averages_each_view_with_the_whole_image(engine, sample_benign):
    hw = sample_benign.shape[:2]
    fused = _engine(engine, fake=FakeLocaliser(), operating_point={"default_mode": "fusion"})
    pred = fused.predict(sample_benign)
    assert pred.fused
    alone = _engine(engine, views=None)
    singles = [alone.predict(sample_benign, roi=b).p_malignant
               for b in view_boxes(blob_box(hw), parse_views({"views": VIEWS}), hw)]
    whole = _logit(alone.predict(sample_benign).p_malignant)
    per_view = [_sigmoid((_logit(p) + whole) / 2) for p in singles]
    assert pred.p_malignant == pytest.approx(
        _sigmoid((np.mean([_logit(p) for p in singles]) + whole) / 2), abs=1e-5)
    assert pred.box_p_range == pytest.approx((min(per_view), max(per_view)), abs=1e-5)


def test_whole_image_is_not_affected(engine, sample_benign):
    eng = _engine(engine, fake=FakeLocaliser())
    pred = eng.predict(sample_benign, auto_box=False)
    ref = _engine(engine, views=None).predict(sample_benign)
    assert pred.box_p_range is None and not pred.box_dependent and pred.roi is None
    assert pred.p_malignant == pytest.approx(ref.p_malignant, abs=1e-6)
    assert eng.prepare(sample_benign, auto_box=False).views is None


def test_box_views_off_classifies_the_box_alone(engine, sample_benign):
    card = replace(engine.card, box_views={"views": VIEWS}, operating_point={})
    off = InferenceEngine(model=engine.model, card=card, device="cpu", box_views=False)
    pred = off.predict(sample_benign, roi=BOX)
    assert pred.box_p_range is None
    assert off.prepare(sample_benign, roi=BOX).views is None
    assert pred.p_malignant == pytest.approx(
        _engine(engine, views=None).predict(sample_benign, roi=BOX).p_malignant, abs=1e-6)


def test_batches_agree_with_single_predictions(engine, sample_benign, sample_malignant):
    eng = _engine(engine, fake=FakeLocaliser(), operating_point={"default_mode": "fusion"})
    eng.batch_size = 3
    images = [sample_benign, sample_malignant, sample_benign, sample_malignant]
    rois = [BOX, None, None, Box(100, 90, 80, 60)]
    single = [eng.predict(im, roi=r) for im, r in zip(images, rois, strict=True)]
    many = eng.predict_many(images, rois=rois)
    for a, b in zip(single, many, strict=True):
        assert b.p_malignant == pytest.approx(a.p_malignant, abs=1e-5)
        assert b.box_p_range == pytest.approx(a.box_p_range, abs=1e-5)
        assert (b.box, b.roi, b.fused) == (a.box, a.roi, a.fused)


def test_the_bundled_engine_uses_the_cards_views(sample_malignant):
    eng = InferenceEngine(device="cpu", backend="onnx")
    prep = eng.prepare(sample_malignant, roi=BOX)
    assert prep.views is not None and len(prep.views) == len(eng.card.box_views["views"]) - 1
    pred = eng.predict_prepared([prep])[0]
    assert pred.box_p_range[0] <= pred.p_malignant <= pred.box_p_range[1]


# --- the lesion a box was drawn around --------------------------------------------------------

def test_lesion_in_box_picks_the_region_the_box_was_drawn_around():
    prob = np.zeros((100, 100), np.float32)
    prob[10:30, 10:30] = 0.9   # lesion A
    prob[60:90, 50:90] = 0.8   # lesion B
    hw = (200, 200)            # the map is the whole image squeezed: 2 pixels per cell
    a, b = Box(20, 20, 40, 40), Box(100, 120, 80, 60)
    assert lesion_in_box(prob, hw, Box(15, 18, 50, 45), 0.3) == a
    assert lesion_in_box(prob, hw, Box(95, 110, 90, 70), 0.3) == b
    assert lesion_in_box(prob, hw, Box(0, 150, 40, 40), 0.3) is None   # nothing there
    assert lesion_in_box(prob, hw, Box(15, 18, 50, 45), 0.3, min_confidence=0.95) is None
    assert box_iou(a, Box(15, 18, 50, 45)) >= 0.3
    assert lesion_in_box(np.zeros((50, 50), np.float32), hw, a, 0.1) is None


def test_user_box_is_classified_as_the_lesion_it_was_drawn_around(engine, sample_benign):
    hw = sample_benign.shape[:2]
    lesion = blob_box(hw)
    drawn = Box(lesion.x - 10, lesion.y - 8, lesion.w + 30, lesion.h + 12)
    card = replace(engine.card, operating_point={},
                   box_views={"views": [[1, 0, 0]], "snap_min_iou": 0.3})
    snap = InferenceEngine(model=engine.model, card=card, device="cpu",
                           localiser=FakeLocaliser())
    pred = snap.predict(sample_benign, roi=drawn)
    assert pred.box == drawn and pred.box_source == "user"       # the box stays the user's
    assert pred.roi == pad_roi(lesion, hw, engine.card.roi_margin)  # what was classified
    plain = _engine(engine, views=None)
    assert pred.p_malignant == pytest.approx(
        plain.predict(sample_benign, roi=lesion).p_malignant, abs=1e-6)
    # Drawn elsewhere (no region overlaps it that well): classified as drawn.
    far = Box(10, 10, 60, 50)
    pred = snap.predict(sample_benign, roi=far)
    assert pred.box == far and pred.roi == pad_roi(far, hw, engine.card.roi_margin)
    # The automatic box is the region itself; switching the views off switches snapping off.
    off = InferenceEngine(model=engine.model, card=snap.card, device="cpu",
                          localiser=FakeLocaliser(), box_views=False)
    assert off.predict(sample_benign, roi=drawn).roi == pad_roi(drawn, hw, 0.2)
