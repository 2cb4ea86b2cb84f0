"""core.measure: the one rule from pixels to millimetres, and measurements in the report."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.measure import (
    COLOUR,
    NO_SCALE,
    OUTSIDE_REGION,
    REGION_SOURCE,
    SPACING_SOURCE,
    Calibration,
    Measurement,
    measure_all,
    measurement_lines,
)
from rcdnet_desktop.core.types import Box, HeatMaps, Prediction, UltrasoundRegion
from tests.dicom_samples import TEST_FILES, US_MM_PER_PIXEL, US_WITH_REGIONS

LEFT = UltrasoundRegion(Box(0, 0, 100, 200), 0.1, 0.1)
RIGHT = UltrasoundRegion(Box(100, 0, 100, 200), 0.2, 0.3)


def test_the_region_holding_the_line_gives_the_scale():
    cal = Calibration((LEFT, RIGHT))
    inside_right = cal.length(Measurement(120, 10, 160, 10))
    assert inside_right.unit == "mm" and inside_right.value == pytest.approx(40 * 0.2)
    assert inside_right.source == REGION_SOURCE
    # Both directions with their own spacing: 30 px across, 40 px down in the right region.
    assert cal.length(Measurement(110, 10, 140, 50)).value == pytest.approx(
        np.hypot(30 * 0.2, 40 * 0.3))
    # Across both regions: no region's scale holds for the whole line; in px, saying why.
    across = cal.length(Measurement(50, 10, 150, 10))
    assert (across.unit, across.reason) == ("px", OUTSIDE_REGION)
    assert across.value == pytest.approx(100) and across.source == ""
    assert across.text == "100 px, outside the calibrated region"


def test_a_line_leaving_the_calibrated_region_is_in_pixels_and_says_why():
    cal = Calibration((RIGHT,))
    out = cal.length(Measurement(50, 10, 150, 10))  # starts left of the region
    assert out.unit == "px" and out.text == "100 px, outside the calibrated region"
    below = cal.length(Measurement(120, 150, 120, 250))  # ends below it
    assert below.unit == "px" and below.reason == OUTSIDE_REGION
    assert cal.box_size(Box(50, 10, 100, 20)) is None  # a box leaving it has no mm size either
    assert cal.box_size_text(Box(110, 10, 50, 20)) == "10.0 x 6.0 mm"
    lines = measurement_lines(measure_all(cal, [Measurement(120, 10, 170, 10),
                                                Measurement(50, 10, 150, 10)]))
    assert lines == [f"Measurements: 1: 10.0 mm, 2: 100 px, outside the calibrated region "
                     f"(scale: {REGION_SOURCE}; px: image pixels, outside the calibrated "
                     "region)"]
    # Pixel Spacing covers the whole image: a line outside the regions takes it.
    assert Calibration((RIGHT,), (0.5, 0.5)).length(Measurement(0, 0, 10, 0)).text == "5.0 mm"


def test_pixel_spacing_without_regions_and_pixels_without_either():
    spaced = Calibration((), (0.5, 0.25))
    length = spaced.length(Measurement(0, 0, 10, 0))
    assert (length.value, length.unit, length.source) == (pytest.approx(5.0), "mm",
                                                           SPACING_SOURCE)
    bare = Calibration()
    assert not bare.known
    assert bare.length(Measurement(0, 0, 30, 40)).text == "50 px"
    assert bare.length(Measurement(0, 0, 30, 40)).reason == NO_SCALE
    assert bare.box_size(Box(0, 0, 10, 10)) is None and bare.box_size_text(Box(0, 0, 1, 1)) == ""


def test_box_size_in_mm():
    cal = Calibration((RIGHT,))
    assert cal.box_size_text(Box(110, 20, 82, 42)) == "16.4 x 12.6 mm"


def test_the_ultrasound_file_gives_mm_and_a_ct_its_pixel_spacing():
    us = Calibration.of(read_image(US_WITH_REGIONS))
    assert us.length(Measurement(200, 100, 400, 100)).text == f"{200 * US_MM_PER_PIXEL:.1f} mm"
    ct = read_image(TEST_FILES / "CT_small.dcm")
    assert ct.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert Calibration.of(ct).length(Measurement(0, 0, 100, 0)).source == SPACING_SOURCE


def test_report_words():
    cal = Calibration((LEFT,))
    measured = measure_all(cal, [Measurement(0, 0, 10, 0), Measurement(0, 0, 0, 25)])
    assert [m.label for m in measured] == ["1: 1.0 mm", "2: 2.5 mm"]
    assert measurement_lines(measured) == [
        f"Measurements: 1: 1.0 mm, 2: 2.5 mm (scale: {REGION_SOURCE})"]
    px = measure_all(Calibration(), [Measurement(0, 0, 12, 0)])
    assert "1: 12 px" in measurement_lines(px)[0] and "no scale" in measurement_lines(px)[0]
    assert measurement_lines(()) == []


def _maps(shape) -> HeatMaps:
    p = Prediction(0.7, 0.3, "cpu", "9.9.9-test")
    zeros = np.zeros(shape, np.float32)
    return HeatMaps(zeros, zeros, "Grad-CAM", p)


def test_the_report_draws_and_lists_the_measurements():
    from rcdnet_desktop.core.export.report import ReportOptions, render_report

    pixels = np.full((200, 300), 60, np.uint8)
    whole = UltrasoundRegion(Box(0, 0, 300, 200), 0.1, 0.1)
    measured = measure_all(Calibration((whole,)), [Measurement(20, 100, 220, 100)])
    when = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    report = render_report(pixels, _maps(pixels.shape),
                           ReportOptions(when=when, measurements=measured))
    assert "Measurements: 1: 20.0 mm" in report.text
    for i in range(3):
        panel = report.layout.crop(report.image, i)
        assert (panel[100, 120] == COLOUR).all(), f"no caliper line on panel {i}"
    plain = render_report(pixels, _maps(pixels.shape), ReportOptions(when=when))
    assert "Measurements" not in plain.text
    assert (report.layout.crop(plain.image, 0) == 60).all()
