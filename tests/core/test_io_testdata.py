"""core.io over every file of pydicom's test data and of the PyPI package ``pydicom-data``.

These are real files nobody here wrote. Each one either loads (uint8, a sane shape, at least one
frame, every frame decodable) or raises UnreadableImageError whose message names the file. No
other exception type may escape. Files whose failure is expected are listed with the reason, so
a change in pydicom or its plugins that breaks a file that used to load shows up here.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path

import numpy as np
import pytest

pydicom_data = pytest.importorskip("pydicom.data")

from rcdnet_desktop.core.errors import UnreadableImageError  # noqa: E402
from rcdnet_desktop.core.io import read_image  # noqa: E402


def _pydicom_data_files() -> list[Path]:
    """Every data file the PyPI package pydicom-data installs (its ``data_store/data`` folder)."""
    try:
        dist = importlib.metadata.distribution("pydicom-data")
    except importlib.metadata.PackageNotFoundError:
        return []
    return sorted(
        Path(dist.locate_file(f))
        for f in dist.files or []
        if f.parts[:2] == ("data_store", "data") and not f.name.endswith((".py", ".pyc"))
    )


PYDICOM_DATA_FILES = _pydicom_data_files()
ALL_FILES = sorted(
    {Path(f) for f in pydicom_data.get_testdata_files()} | set(PYDICOM_DATA_FILES),
    key=str,
)
BY_NAME = {}
for _f in ALL_FILES:
    BY_NAME.setdefault(_f.name, _f)

# Image files that cannot be shown, and why. Everything else in the two collections is either
# an image that must load or a non-image (no pixel data, text, ...) that must be refused.
KNOWN_UNDECODABLE = {
    # pydicom's own test of a JPEG 2000 codestream cut by an embedded sequence delimiter: the
    # delimiter lands inside the SIZ marker, which then claims a frame billions of pixels wide.
    "JPEG2000-embedded-sequence-delimiter.dcm": "its compressed frame is 3722445056 x 1024",
    # pixel data 62 bytes shorter than Rows x Columns x BitsAllocated says.
    "MR_truncated.dcm": "truncated",
    # the data set stops inside the pixel data: pydicom reads no element at all.
    "emri_small_jpeg_2k_lossless_too_short.dcm": "truncated",
    # pixel data with no Rows / Columns.
    "meta_missing_tsyntax.dcm": "image size",
    "nested_priv_SQ.dcm": "image size",
}

# Reasons given for files that are not images (DICOMDIR, SR, RT plans, text, folders).
NOT_AN_IMAGE = ("no pixel data", "not a supported image format", "is a folder")


def _ids(paths):
    return [f"{p.parent.name}/{p.name}" for p in paths]


def test_collections_are_installed():
    assert len(ALL_FILES) > 200
    assert len(PYDICOM_DATA_FILES) >= 60, "pydicom-data (dev dependency) is not installed"


@pytest.mark.parametrize("path", ALL_FILES, ids=_ids(ALL_FILES))
def test_loads_or_raises_unreadable(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the odd values these files test
        try:
            rec = read_image(path)
        except UnreadableImageError as err:
            assert path.name in str(err)
            assert err.reason and "Traceback" not in err.reason
            if path.name in KNOWN_UNDECODABLE:
                assert KNOWN_UNDECODABLE[path.name] in err.reason
            else:  # not an image at all; an image that fails must be listed above
                assert any(r in err.reason for r in NOT_AN_IMAGE), err.reason
            return
        assert path.name not in KNOWN_UNDECODABLE, "now loads: update KNOWN_UNDECODABLE"
        frames = [rec.pixels] + [rec.frame(i) for i in range(1, rec.frame_count)]
    assert rec.frame_count >= 1
    for px in frames:
        assert px.dtype == np.uint8
        assert px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3)
        assert px.shape[:2] == rec.pixels.shape[:2]
        assert min(px.shape[:2]) >= 1


def _get(name: str) -> Path:
    if name not in BY_NAME:
        pytest.skip(f"{name} is not installed")
    return BY_NAME[name]


def test_examples_ybr_color_cine():
    rec = read_image(_get("examples_ybr_color.dcm"))
    assert rec.frame_count == 30
    assert rec.photometric == "YBR_FULL_422"
    f5 = rec.frame(5)
    assert f5.shape == (240, 320, 3) and f5.dtype == np.uint8
    # an echo cine is mostly grey: converted to RGB once, R, G and B agree closely
    assert np.abs(f5[..., 0].astype(int) - f5[..., 1]).mean() < 3
    assert rec.study.modality == "US"
    import pydicom

    ref = pydicom.dcmread(_get("examples_ybr_color.dcm")).pixel_array[5]
    np.testing.assert_array_equal(f5, ref)  # same as pydicom's own RGB result


def test_examples_palette():
    rec = read_image(_get("examples_palette.dcm"))
    assert rec.photometric == "PALETTE COLOR"
    assert rec.pixels.shape == (350, 800, 3)
    assert len(rec.regions) == 1
    assert rec.regions[0].mm_per_pixel_x == pytest.approx(0.2623, abs=1e-3)


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "US1_UNCR.dcm"])
def test_rgb_ultrasound(name):
    rec = read_image(_get(name))
    assert rec.photometric == "RGB" and rec.pixels.ndim == 3


@pytest.mark.parametrize("name", ["examples_jpeg2k.dcm", "US1_J2KR.dcm"])
def test_jpeg2000_ultrasound_matches_uncompressed(name):
    rec = read_image(_get(name))
    assert rec.pixels.shape == (480, 640, 3)
    ref = read_image(_get("US1_UNCR.dcm")).pixels
    np.testing.assert_array_equal(rec.pixels, ref)  # lossless J2K (YBR_RCT) == uncompressed RGB


def test_obxxxx1a_palette_regions():
    rec = read_image(_get("OBXXXX1A.dcm"))
    assert rec.photometric == "PALETTE COLOR" and rec.pixels.shape == (600, 800, 3)
    import pydicom

    ds = pydicom.dcmread(_get("OBXXXX1A.dcm"), stop_before_pixels=True)
    assert len(ds.SequenceOfUltrasoundRegions) == 2
    # The second region is a spectral Doppler strip: its X axis is time (units code 4 =
    # seconds), so it has no mm/pixel. Only the B-mode region is a spatial calibration.
    assert len(rec.regions) == 1
    r = rec.regions[0]
    assert r.mm_per_pixel_x == pytest.approx(0.2623, abs=1e-3)
    assert r.mm_per_pixel_y == pytest.approx(0.2623, abs=1e-3)
    # MaxX1 = 800 on an 800-pixel-wide image: clipped to the last column
    assert r.box.x == 120 and r.box.x + r.box.w == 800


@pytest.mark.parametrize("name", ["gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm"])
def test_aloka_16bit_palette_two_regions(name):
    rec = read_image(_get(name))
    assert rec.photometric == "PALETTE COLOR" and rec.pixels.shape == (480, 640, 3)
    assert rec.pixels.max() > 200  # 16-bit LUT entries mapped to the full 8-bit range
    assert len(rec.regions) == 2
    left, right = rec.regions
    assert left.box.x < right.box.x
    for r in rec.regions:
        assert 0.05 < r.mm_per_pixel_x < 1.0 and r.mm_per_pixel_x == r.mm_per_pixel_y


def test_big_and_little_endian_agree():
    a = read_image(_get("gdcm-US-ALOKA-16.dcm")).pixels
    b = read_image(_get("gdcm-US-ALOKA-16_big.dcm")).pixels
    np.testing.assert_array_equal(a, b)


def test_monochrome1_cr_is_inverted():
    rec = read_image(_get("RG1_UNCR.dcm"))
    assert rec.photometric == "MONOCHROME1"
    h, w = rec.pixels.shape
    # chest radiograph: the lungs (upper middle of each half) are darker than the mediastinum
    centre = rec.pixels[h // 3 : h // 2, w // 2 - 50 : w // 2 + 50].mean()
    lung = rec.pixels[h // 3 : h // 2, w // 4 - 50 : w // 4 + 50].mean()
    assert lung < centre


def test_patient_identifiers_kept_apart():
    rec = read_image(_get("CT_small.dcm"))
    assert rec.patient.name and rec.patient.patient_id
    assert rec.study.study_instance_uid and rec.study.modality == "CT"
    assert rec.patient.name not in " ".join(str(v) for v in vars(rec.study).values())
