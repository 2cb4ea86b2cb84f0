"""Fuzzed input: damaged PNG, JPEG and DICOM bytes never crash the reader or the batch.

Hypothesis truncates and flips bits of small valid files that each test builds itself (PNG,
baseline JPEG, and DICOM stored native, as encapsulated baseline JPEG, JPEG 2000 and RLE), then
checks the contract a viewer needs from bad input:

- :func:`rcdnet_desktop.core.io.read_image` either returns a well-formed record (uint8, 2-D or
  H x W x 3, every frame decodable or refused with the typed error) or raises
  :class:`UnreadableImageError` naming the file; no other exception type escapes;
- :func:`rcdnet_desktop.core.batch.review` with the real bundled engine yields exactly one item
  per file, ``ok`` with a proper prediction or ``failed`` with a reason naming the file that
  came from a typed error (not the batch's catch-all for unexpected exceptions);
- neither hangs: every example has a Hypothesis deadline (slow decoding fails the test) and
  every test a pytest-timeout (a true hang fails instead of blocking CI).

Examples are derandomized and the example database is off, so every run checks the same
inputs. Huge image headers are in tests/test_hardening.py.
"""

from __future__ import annotations

import io
import tempfile
from datetime import timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from rcdnet_desktop.core.batch import review
from rcdnet_desktop.core.errors import UnreadableImageError
from rcdnet_desktop.core.io import read_image

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on damaged values

from pydicom.uid import (  # noqa: E402
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

# Generous deadlines: this machine's CPUs are often shared with a training run. A decoder that
# spins on damaged input takes seconds to minutes, far beyond these.
READ_SETTINGS = settings(
    max_examples=50,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
BATCH_SETTINGS = settings(
    max_examples=12,
    deadline=timedelta(seconds=30),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ----------------------------------------------------------------------------------------------
# small valid files (built once per session, in memory)
# ----------------------------------------------------------------------------------------------


def _picture(h: int = 40, w: int = 48, rgb: bool = False, seed: int = 3) -> np.ndarray:
    """A smooth image with some noise: compresses like a real one, yet stays tiny."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (96 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float64)
    grey = np.clip(base + rng.normal(0, 12, (h, w)), 0, 255).astype(np.uint8)
    if not rgb:
        return grey
    return np.dstack([grey, np.roll(grey, 3, axis=1), (grey // 2 + 60).astype(np.uint8)])


def _pil_bytes(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def _dataset(arr: np.ndarray, photometric: str, multiframe: bool = False) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop = UltrasoundMultiFrameImageStorage if multiframe else UltrasoundImageStorage
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.SOPClassUID = sop
    ds.Modality = "US"
    ds.PatientName = "Fuzz^Test"
    ds.PatientID = "FUZZ-1"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.set_pixel_data(arr, photometric, 8)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _dicom_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@cache
def seeds() -> dict[str, bytes]:
    """name (with the suffix the file gets) -> bytes of a small valid file."""
    grey, rgb = _picture(), _picture(rgb=True)
    out = {
        "grey.png": _pil_bytes(grey, "PNG"),
        "rgb.png": _pil_bytes(rgb, "PNG"),
        "grey.jpg": _pil_bytes(grey, "JPEG", quality=85),
        "rgb.jpg": _pil_bytes(rgb, "JPEG", quality=85),
        "native.dcm": _dicom_bytes(_dataset(grey, "MONOCHROME2")),
    }
    # Baseline JPEG cine (3 frames, YBR_FULL_422 as scanners write it), one JPEG per frame.
    frames = np.stack([_picture(rgb=True, seed=s) for s in (1, 2, 3)])
    ds = _dataset(frames, "RGB", multiframe=True)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = encapsulate([_pil_bytes(f, "JPEG", quality=85) for f in frames])
    ds["PixelData"].VR = "OB"
    out["jpeg_cine.dcm"] = _dicom_bytes(ds)
    ds = _dataset(grey, "MONOCHROME2")
    ds.compress(RLELossless, encoding_plugin="pydicom")
    out["rle.dcm"] = _dicom_bytes(ds)
    try:
        import openjpeg  # noqa: F401 - the JPEG 2000 encoder pydicom uses
    except ImportError:
        pass
    else:
        ds = _dataset(grey, "MONOCHROME2")
        ds.compress(JPEG2000Lossless)
        out["j2k.dcm"] = _dicom_bytes(ds)
    return out


def test_seeds_are_valid(tmp_path):
    """The fuzzers start from files that read correctly (else they would prove nothing)."""
    for name, data in seeds().items():
        p = tmp_path / name
        p.write_bytes(data)
        rec = read_image(p)
        assert rec.pixels.dtype == np.uint8 and rec.pixels.shape[:2] == (40, 48), name
    assert {"grey.png", "rgb.jpg", "native.dcm", "jpeg_cine.dcm", "rle.dcm"} <= set(seeds())


# ----------------------------------------------------------------------------------------------
# damage
# ----------------------------------------------------------------------------------------------


@st.composite
def damaged(draw, names: tuple[str, ...] | None = None) -> tuple[str, bytes, str]:
    """(file name, damaged bytes, what was done) from one of the seeds."""
    pool = seeds()
    name = draw(st.sampled_from(sorted(n for n in (names or pool) if n in pool)))
    data = bytearray(pool[name])
    n = len(data)
    # Headers hold the sizes, lengths and offsets that go wrong: aim half the damage there.
    where = st.one_of(st.integers(0, min(n, 400) - 1), st.integers(0, n - 1))
    how = draw(st.sampled_from(("truncate", "flip", "truncate+flip")))
    done = []
    if "flip" in how:
        flips = draw(st.lists(st.tuples(where, st.integers(0, 7)), min_size=1, max_size=8))
        for pos, bit in flips:
            data[pos] ^= 1 << bit
        done.append(f"flipped {sorted(flips)}")
    if "truncate" in how:
        cut = draw(st.one_of(where, st.integers(0, n - 1)))
        del data[cut:]
        done.append(f"cut at {cut} of {n}")
    return name, bytes(data), "; ".join(done)


def _check_damaged(name: str, data: bytes) -> None:
    """Write ``data`` as ``name`` in a fresh folder and :func:`_check_read` it."""
    with tempfile.TemporaryDirectory(prefix="rcdnet-fuzz-") as d:
        p = Path(d) / name
        p.write_bytes(data)
        _check_read(p)


def _check_read(path: Path) -> None:
    """read_image succeeds with a well-formed record or raises the typed error; nothing else."""
    try:
        rec = read_image(path)
    except UnreadableImageError as exc:
        assert exc.path == path and str(path) in str(exc) and exc.reason
        event(f"{path.suffix or 'no suffix'}: refused")
        return
    event(f"{path.suffix or 'no suffix'}: read")
    for i in range(rec.frame_count if rec.frame_count <= 4 else 1):
        try:
            px = rec.frame(i)
        except UnreadableImageError as exc:
            assert str(path) in str(exc)
            continue
        assert px.dtype == np.uint8
        assert px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3), px.shape
        assert px.size > 0 and px.flags["C_CONTIGUOUS"]


# ----------------------------------------------------------------------------------------------
# the reader
# ----------------------------------------------------------------------------------------------

RASTER = ("grey.png", "rgb.png", "grey.jpg", "rgb.jpg")
DICOM = ("native.dcm", "jpeg_cine.dcm", "rle.dcm", "j2k.dcm")


@pytest.mark.timeout(180)
@READ_SETTINGS
@given(case=damaged(RASTER))
def test_damaged_png_and_jpeg_raise_only_the_typed_error(case):
    name, data, _how = case
    _check_damaged(name, data)


@pytest.mark.timeout(180)
@READ_SETTINGS
@given(case=damaged(DICOM))
def test_damaged_dicom_raises_only_the_typed_error(case):
    name, data, _how = case
    _check_damaged(name, data)


@pytest.mark.timeout(180)
@READ_SETTINGS
@given(case=damaged(DICOM), suffix=st.sampled_from(["", ".png", ".bin"]))
def test_damaged_dicom_under_other_names(case, suffix):
    """Files are recognised by content: a damaged DICOM without its suffix still fails cleanly."""
    name, data, _how = case
    _check_damaged(Path(name).stem + suffix, data)


# ----------------------------------------------------------------------------------------------
# the batch path, with the real bundled engine
# ----------------------------------------------------------------------------------------------


@pytest.mark.timeout(300)
@BATCH_SETTINGS
@given(cases=st.lists(damaged(), min_size=2, max_size=5))
def test_batch_review_of_damaged_files_yields_one_item_each(engine, cases):
    with tempfile.TemporaryDirectory(prefix="rcdnet-fuzz-batch-") as d:
        folder = Path(d)
        paths = []
        for i, (name, data, _how) in enumerate(cases):
            p = folder / f"{i:02d}_{name}"
            p.write_bytes(data)
            paths.append(p)
        # One intact file too: damage elsewhere must not spoil it.
        good = folder / "99_intact.png"
        good.write_bytes(seeds()["grey.png"])
        paths.append(good)

        items = list(review([folder], engine, explain=True))

    assert [it.path.name for it in items] == [p.name for p in paths]
    for it in items:
        if it.status == "ok":
            pred = it.prediction
            assert abs(pred.p_benign + pred.p_malignant - 1.0) < 1e-4
            assert it.heatmaps is not None
            for m in (it.heatmaps.benign, it.heatmaps.malignant):
                assert np.isfinite(m).all() and m.min() >= 0.0 and m.max() <= 1.0
        else:
            assert it.status == "failed" and it.prediction is None
            assert it.path.name in it.error
            # review() turns any exception into a failed item; "unexpected" marks one that did
            # not come from the reader's or the engine's typed errors.
            assert "unexpected" not in it.error, it.error
    assert items[-1].status == "ok"


# ----------------------------------------------------------------------------------------------
# release check: many more examples (pytest -m slow tests/test_fuzz.py)
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(3600)
@settings(READ_SETTINGS, max_examples=3000)
@given(case=damaged())
def test_many_damaged_files_raise_only_the_typed_error(case):
    name, data, _how = case
    _check_damaged(name, data)
