"""Intended-use checks on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from rcdnet_desktop.core import checks
from rcdnet_desktop.core.checks import check_image as check_flags
from rcdnet_desktop.core.checks import colour_fraction


def check_image(pixels) -> tuple[str, ...]:
    """The words of the pixel checks' flags (what the warnings column shows)."""
    return tuple(f.text for f in check_flags(pixels))


def ultrasound_like(h: int = 400, w: int = 500, seed: int = 0) -> np.ndarray:
    """Speckle (Rayleigh) inside a fan-ish sector with a black border, plus a dark 'lesion'."""
    rng = np.random.default_rng(seed)
    img = rng.rayleigh(45.0, size=(h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    img *= 1.0 - 0.6 * yy / h  # depth attenuation
    img[(yy - h * 0.5) ** 2 / 60**2 + (xx - w * 0.5) ** 2 / 90**2 < 1] *= 0.25
    img[:, : w // 10] = 0
    img[:, -w // 10 :] = 0
    img[: h // 12] = 0
    return np.clip(img, 0, 255).astype(np.uint8)


def as_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def test_clean_grey_gives_no_warning():
    assert check_image(ultrasound_like()) == ()


def test_clean_grey_stored_as_rgb_gives_no_warning():
    assert check_image(as_rgb(ultrasound_like())) == ()


def test_jpeg_like_faint_tint_gives_no_warning():
    rgb = as_rgb(ultrasound_like()).astype(np.int16)
    rng = np.random.default_rng(1)
    rgb += rng.integers(-6, 7, size=rgb.shape)  # chroma noise as left by JPEG subsampling
    assert check_image(np.clip(rgb, 0, 255).astype(np.uint8)) == ()


def test_thin_coloured_annotations_give_no_warning():
    rgb = as_rgb(ultrasound_like())
    # yellow calipers / measurement lines (2 px) and a cyan text-like grid of 1 px strokes
    rgb[100:102, 60:440] = (255, 255, 0)
    rgb[60:360, 250:252] = (255, 255, 0)
    for x in range(60, 200, 6):
        rgb[20:34, x] = (0, 255, 255)
    for y in range(20, 34, 4):
        rgb[y, 60:200] = (0, 255, 255)
    assert colour_fraction(rgb) < checks.COLOUR_MIN_FRACTION
    assert check_image(rgb) == ()


def test_colour_doppler_blob_warns():
    rgb = as_rgb(ultrasound_like())
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:400, 0:500]
    blob = (yy - 200) ** 2 + (xx - 260) ** 2 < 50**2  # ~4 % of the frame
    red = rng.integers(150, 256, size=blob.sum())
    rgb[blob] = np.stack([red, np.zeros_like(red), red // 8], axis=1)
    assert colour_fraction(rgb) > checks.COLOUR_MIN_FRACTION
    w = check_image(rgb)
    assert w == (checks.WARN_COLOUR,)
    assert "colour" in w[0] and "Doppler" in w[0]


def test_elastography_box_warns():
    rgb = as_rgb(ultrasound_like())
    # elastography: a blue-green-red map over a rectangular box
    box = rgb[120:280, 150:350].astype(np.float64)
    t = box[..., 0] / 255.0
    rgb[120:280, 150:350] = np.stack(
        [255 * t, 255 * (1 - abs(2 * t - 1)), 255 * (1 - t)], axis=2
    ).astype(np.uint8)
    assert checks.WARN_COLOUR in check_image(rgb)


@pytest.mark.parametrize("shape", [(40, 300), (300, 40), (10, 10), (63, 63)])
def test_tiny_image_warns(shape):
    rng = np.random.default_rng(3)
    w = check_image(rng.integers(0, 256, size=shape, dtype=np.uint8))
    assert len(w) == 1 and "too small" in w[0]
    assert f"{shape[1]}x{shape[0]}" in w[0]


def test_64_pixels_is_enough():
    rng = np.random.default_rng(3)
    assert check_image(rng.integers(0, 256, size=(64, 64), dtype=np.uint8)) == ()


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_warns(value):
    w = check_image(np.full((300, 300), value, np.uint8))
    assert w == (checks.WARN_BLANK,)
    assert check_image(np.full((300, 300, 3), value, np.uint8)) == (checks.WARN_BLANK,)


def test_nearly_blank_with_faint_noise_warns():
    rng = np.random.default_rng(4)
    img = np.clip(20 + rng.normal(0, 1.0, size=(300, 300)), 0, 255).astype(np.uint8)
    assert check_image(img) == (checks.WARN_BLANK,)


def test_nearly_all_black_with_a_few_marks_warns():
    img = np.zeros((300, 300), np.uint8)
    img[10:20, 10:200] = 255  # some text, but the frame is empty
    assert checks.WARN_BLANK in check_image(img)


def test_several_warnings_together():
    w = check_image(np.zeros((20, 20, 3), np.uint8))
    assert len(w) == 2


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((0, 0), np.uint8),
        np.zeros((5,), np.uint8),
        np.zeros((4, 4, 4, 4), np.uint8),
        np.zeros((100, 100, 2), np.uint8),
    ],
)
def test_odd_arrays_do_not_raise(arr):
    assert len(check_image(arr)) >= 1


def test_other_dtypes_are_accepted():
    us = ultrasound_like()
    assert check_image(us.astype(np.float32) / 255.0) == ()
    assert check_image(us.astype(np.uint16) * 257) == ()
    rgba = np.concatenate([as_rgb(us), np.full(us.shape + (1,), 255, np.uint8)], axis=2)
    assert check_image(rgba) == ()


def _jpeg_roundtrip(rgb: np.ndarray, quality: int = 60) -> np.ndarray:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _with_title_bar(rgb: np.ndarray) -> np.ndarray:
    """A scanner UI's flat blue title bar along the top edge, with white text in it."""
    out = rgb.copy()
    out[:50] = (37, 62, 94)
    for x in range(20, 300, 9):
        out[15:35, x : x + 2] = 255
    out[24:26, 20:300] = 255
    return out


@pytest.mark.parametrize("jpeg", [False, True])
def test_flat_ui_title_bar_gives_no_warning(jpeg):
    rgb = _with_title_bar(as_rgb(ultrasound_like()))
    if jpeg:
        rgb = _jpeg_roundtrip(rgb)
    assert check_image(rgb) == ()


def test_title_bar_plus_doppler_still_warns():
    rgb = _with_title_bar(as_rgb(ultrasound_like()))
    yy, xx = np.mgrid[0:400, 0:500]
    blob = (yy - 220) ** 2 + (xx - 260) ** 2 < 45**2
    ramp = (255 * (xx[blob] - 215) / 90).clip(0, 255).astype(np.uint8)  # a velocity ramp
    rgb[blob] = np.stack([np.full_like(ramp, 255), ramp, np.zeros_like(ramp)], axis=1)
    assert check_image(_jpeg_roundtrip(rgb)) == (checks.WARN_COLOUR,)


def test_flat_colour_patch_away_from_edges_still_warns():
    rgb = as_rgb(ultrasound_like())
    rgb[150:250, 200:300] = (200, 30, 30)  # 5 % of the frame, not UI chrome at an edge
    assert check_image(rgb) == (checks.WARN_COLOUR,)


@pytest.mark.parametrize(
    ("name", "warns"),
    [
        ("examples_rgb_color.dcm", True),  # colour Doppler
        ("examples_jpeg2k.dcm", True),  # power Doppler
        ("examples_palette.dcm", False),  # B-mode under a flat blue Philips title bar
        ("examples_ybr_color.dcm", False),  # B-mode echo cine
        ("gdcm-US-ALOKA-16.dcm", False),  # dual B-mode with coloured markers
    ],
)
def test_real_ultrasound_files(name, warns):
    pydicom_data = pytest.importorskip("pydicom.data")
    from rcdnet_desktop.core.io import read_image

    try:
        path = pydicom_data.get_testdata_file(name)
    except Exception:  # pragma: no cover - pydicom-data not installed
        path = None
    if path is None:
        pytest.skip(f"{name} not installed")
    pixels = read_image(path).pixels
    assert (checks.WARN_COLOUR in check_image(pixels)) is warns
