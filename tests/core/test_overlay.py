"""Heat-map colouring, blending and the plain-language evidence summary."""

from __future__ import annotations

import numpy as np
import pytest

from rcdnet_desktop.core.overlay import (
    APPROXIMATE,
    COLORMAPS,
    NO_EVIDENCE,
    blend,
    colorize,
    describe_evidence,
    evidence_sentences,
    summarize_evidence,
)
from rcdnet_desktop.core.types import Box, HeatMaps, Prediction


def gaussian(h: int, w: int, cx: float, cy: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return (g / g.max()).astype(np.float32)


@pytest.mark.parametrize("name", list(COLORMAPS))
def test_colorize_every_map_gives_uint8_rgb_and_varies(name):
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (8, 1))
    rgb = colorize(ramp, name)
    assert rgb.shape == (8, 64, 3)
    assert rgb.dtype == np.uint8
    assert not np.array_equal(rgb[:, 0], rgb[:, -1])


def test_colorize_jet_low_is_blue_high_is_red():
    rgb = colorize(np.array([[0.0, 1.0]], dtype=np.float32), "jet")
    low, high = rgb[0, 0].astype(int), rgb[0, 1].astype(int)
    assert low[2] > low[0]  # blue dominates at 0
    assert high[0] > high[2]  # red dominates at 1


def test_colorize_clips_and_treats_nan_as_zero():
    h = np.array([[-1.0, np.nan, 0.0, 2.0, 1.0]], dtype=np.float32)
    rgb = colorize(h)
    assert np.array_equal(rgb[0, 0], rgb[0, 2])
    assert np.array_equal(rgb[0, 1], rgb[0, 2])
    assert np.array_equal(rgb[0, 3], rgb[0, 4])


def test_colorize_rejects_unknown_map_and_bad_shape():
    with pytest.raises(ValueError, match="unknown colour map"):
        colorize(np.zeros((4, 4), np.float32), "rainbow-unicorn")
    with pytest.raises(ValueError, match="2-D"):
        colorize(np.zeros((4, 4, 3), np.float32))


def test_blend_alpha_extremes_and_grey_input():
    grey = np.random.default_rng(0).integers(0, 256, (30, 40), dtype=np.uint8)
    heat = gaussian(30, 40, 20, 15, 5)
    plain = blend(grey, heat, alpha=0.0)
    assert plain.shape == (30, 40, 3) and plain.dtype == np.uint8
    assert np.array_equal(plain[..., 0], grey) and np.array_equal(plain[..., 2], grey)
    assert np.array_equal(blend(grey, heat, alpha=1.0), colorize(heat))
    mid = blend(grey, heat, alpha=0.45, colormap="inferno")
    expected = np.rint(
        plain.astype(np.float32) * 0.55 + colorize(heat, "inferno").astype(np.float32) * 0.45
    )
    assert np.abs(mid.astype(int) - expected.astype(int)).max() <= 1


def test_blend_rgb_input_does_not_modify_it():
    rgb = np.full((10, 12, 3), 100, np.uint8)
    before = rgb.copy()
    out = blend(rgb, np.ones((10, 12), np.float32), alpha=0.5)
    assert np.array_equal(rgb, before)
    assert out.shape == (10, 12, 3)


@pytest.mark.parametrize(
    ("pixels", "heat", "match"),
    [
        (np.zeros((10, 12), np.uint8), np.zeros((12, 10), np.float32), "does not match"),
        (np.zeros((10, 12, 4), np.uint8), np.zeros((10, 12), np.float32), "grey or"),
        (np.zeros((10, 12), np.float32), np.zeros((10, 12), np.float32), "uint8"),
        (np.zeros((10, 12), np.uint8), np.zeros((10, 12, 1), np.float32), "does not match"),
    ],
)
def test_blend_validates_shapes(pixels, heat, match):
    with pytest.raises(ValueError, match=match):
        blend(pixels, heat)


def test_blend_rejects_alpha_out_of_range():
    with pytest.raises(ValueError, match="alpha"):
        blend(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.float32), alpha=1.5)


# --- describe_evidence -------------------------------------------------------------------------


def test_empty_map_says_no_evidence():
    text = describe_evidence(np.zeros((50, 60), np.float32))
    assert "No evidence" in text
    assert summarize_evidence(np.zeros((50, 60), np.float32)).empty


@pytest.mark.parametrize(
    ("cx", "cy", "words"),
    [
        (30, 20, "upper left"),
        (270, 20, "upper right"),
        (150, 100, "centre"),
        (30, 180, "lower left"),
        (150, 180, "lower centre"),
        (270, 100, "middle right"),
    ],
)
def test_position_in_thirds(cx, cy, words):
    heat = gaussian(200, 300, cx, cy, 8)
    s = summarize_evidence(heat)
    assert s.position == words
    assert describe_evidence(heat).startswith(f"Strongest around the {words} of the image.")


def test_concentrated_versus_diffuse():
    compact = gaussian(200, 300, 150, 100, 6)
    broad = np.clip(gaussian(200, 300, 150, 100, 400) + 0.02, 0, 1)
    s_compact, s_broad = summarize_evidence(compact), summarize_evidence(broad)
    assert s_compact.concentration == "concentrated"
    assert s_broad.concentration == "diffuse"
    assert s_compact.half_energy_area < s_broad.half_energy_area


def test_two_separate_high_areas_are_counted():
    heat = np.maximum(gaussian(200, 300, 50, 50, 8), 0.9 * gaussian(200, 300, 250, 150, 8))
    s = summarize_evidence(heat)
    assert s.high_areas == 2
    assert "upper left of the image, in 2 separate areas." in describe_evidence(heat)
    assert s.position == "upper left"  # the stronger one


def test_peak_inside_margin_outside_of_lesion_box():
    box = Box(100, 60, 100, 80)  # x 100..200, y 60..140
    inside = gaussian(200, 300, 150, 100, 6)
    margin = gaussian(200, 300, 200, 100, 6)  # on the right edge
    outside = gaussian(200, 300, 30, 30, 6)
    assert summarize_evidence(inside, box).roi_relation == "inside"
    assert summarize_evidence(margin, box).roi_relation == "margin"
    assert summarize_evidence(outside, box).roi_relation == "outside"
    s = summarize_evidence(inside, box)
    assert s.roi_share is not None and s.roi_share > 0.9
    assert summarize_evidence(outside, box).roi_share < 0.05


def test_sentences_name_a_rough_place_in_the_box_and_claim_nothing_about_the_lesion():
    """The measured maps do not localise lesions better than a centred Gaussian, so the words
    say where the map is strongest, in thirds of the box, that it is approximate, and nothing
    about peaks inside the lesion or shares of evidence in it."""
    box = Box(100, 60, 90, 90)  # x 100..190, y 60..150
    cases = [((145, 105), "centre"), ((110, 70), "upper left"), ((185, 145), "lower right"),
             ((30, 105), "middle left"),  # beyond the left edge: the nearest third
             ((145, 190), "lower centre")]
    for (cx, cy), words in cases:
        text = describe_evidence(gaussian(200, 300, cx, cy, 6), box)
        assert text == f"Strongest around the {words} of the lesion box. {APPROXIMATE}"
        assert "%" not in text and "peak" not in text.lower() and "inside" not in text
    assert describe_evidence(np.zeros((200, 300), np.float32), box) == NO_EVIDENCE


def test_evidence_sentences_use_the_box_as_given_not_the_padded_region():
    box, roi = Box(100, 60, 100, 80), Box(80, 44, 140, 112)  # roi: box padded by 20%
    near = gaussian(200, 300, 130, 100, 3)  # left third of the box, centre of the region
    pred = Prediction(p_benign=0.5, p_malignant=0.5, device="cpu", model_version="t", roi=roi,
                      box=box, box_source="auto")
    benign, malignant = evidence_sentences(HeatMaps(near, near[::-1].copy(), "fast", pred))
    assert benign == describe_evidence(near, box) != describe_evidence(near, roi)
    assert malignant == describe_evidence(near[::-1], box)
    whole = Prediction(p_benign=0.5, p_malignant=0.5, device="cpu", model_version="t")
    assert evidence_sentences(HeatMaps(near, near, "fast", whole)) == (
        describe_evidence(near), describe_evidence(near))


def test_a_prediction_given_only_its_region_describes_that_region():
    """Callers without a box (tests, fakes) give only ``roi``: it is then the box, so every view
    still shows and describes one box."""
    roi = Box(100, 60, 100, 80)
    pred = Prediction(p_benign=0.5, p_malignant=0.5, device="cpu", model_version="t", roi=roi)
    assert pred.box == roi and pred.box_source == "user"
    heat = gaussian(200, 300, 150, 100, 6)
    assert evidence_sentences(HeatMaps(heat, heat, "fast", pred))[0] == \
        describe_evidence(heat, roi)


def test_box_partly_outside_image_is_clipped():
    heat = gaussian(100, 100, 95, 95, 4)
    s = summarize_evidence(heat, Box(80, 80, 50, 50))
    assert s.roi_relation == "inside"
    assert 0.0 < s.roi_share <= 1.0


def test_description_follows_the_map_not_a_template():
    a = describe_evidence(gaussian(200, 300, 30, 20, 6))
    b = describe_evidence(gaussian(200, 300, 270, 180, 60))
    assert a != b


def test_a_large_map_is_summarised_like_its_small_copy():
    """Maps above SUMMARY_MAX_SIDE are measured on an area-averaged copy: same words, the peak
    and centroid given back in the large map's pixels."""
    from rcdnet_desktop.core.overlay import SUMMARY_MAX_SIDE, describe_evidence, summarize_evidence
    from rcdnet_desktop.core.types import Box

    def blob(side: int) -> np.ndarray:
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
        return np.exp(-((xx - 0.7) ** 2 + (yy - 0.3) ** 2) / 0.005).astype(np.float32)

    big_side = 2 * SUMMARY_MAX_SIDE + 100
    small, big = blob(500), blob(big_side)
    k = big_side / 500
    roi_small = Box(300, 50, 150, 150)
    roi_big = Box(round(300 * k), round(50 * k), round(150 * k), round(150 * k))
    s_small, s_big = summarize_evidence(small, roi_small), summarize_evidence(big, roi_big)
    assert describe_evidence(big, roi_big) == describe_evidence(small, roi_small)
    assert abs(s_big.peak[0] / k - s_small.peak[0]) <= 2
    assert abs(s_big.peak[1] / k - s_small.peak[1]) <= 2
    assert abs(s_big.centroid[0] / k - s_small.centroid[0]) <= 2
    assert s_big.roi_relation == s_small.roi_relation == "inside"
