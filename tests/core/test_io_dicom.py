"""core.io on DICOM files written by the tests with pydicom."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import (  # noqa: E402
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from rcdnet_desktop.core import io as rio_mod  # noqa: E402
from rcdnet_desktop.core.errors import UnreadableImageError  # noqa: E402
from rcdnet_desktop.core.io import (  # noqa: E402
    find_images,
    pixels,  # noqa: E402
    read_image,
)
from rcdnet_desktop.core.types import Box  # noqa: E402

RNG = np.random.default_rng(7)


def make_ds(arr: np.ndarray, photometric: str = "MONOCHROME2", bits: int | None = None, **attrs):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    multi = arr.ndim == 4 or (arr.ndim == 3 and photometric not in ("RGB", "YBR_FULL"))
    sop = UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.SOPClassUID = sop
    ds.Modality = "US"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-42"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.AccessionNumber = "ACC-7"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = "20240102"
    ds.StudyDescription = "Breast US"
    ds.Manufacturer = "TestCo"
    ds.set_pixel_data(arr, photometric, bits or arr.dtype.itemsize * 8)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for k, v in attrs.items():
        setattr(ds, k, v)
    return ds


def write(ds, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def region(x0, y0, x1, y1, dx=0.01, dy=0.01, ux=3, uy=3):
    r = Dataset()
    r.RegionSpatialFormat = 1
    r.RegionDataType = 1
    r.RegionFlags = 0
    r.RegionLocationMinX0, r.RegionLocationMinY0 = x0, y0
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = x1, y1
    r.PhysicalUnitsXDirection, r.PhysicalUnitsYDirection = ux, uy
    r.PhysicalDeltaX, r.PhysicalDeltaY = dx, dy
    return r


GREY8 = RNG.integers(0, 256, size=(40, 50), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# monochrome: modality LUT, VOI LUT / window, MONOCHROME1
# ----------------------------------------------------------------------------------------------


def test_monochrome2_8bit_kept_as_stored(tmp_path):
    rec = read_image(write(make_ds(GREY8), tmp_path / "m2.dcm"))
    np.testing.assert_array_equal(rec.pixels, GREY8)
    assert rec.is_dicom and rec.source_format == "DICOM"
    assert rec.photometric == "MONOCHROME2" and rec.bits_stored == 8 and rec.frame_count == 1


def test_monochrome1_is_inverted(tmp_path):
    rec = read_image(write(make_ds(GREY8, "MONOCHROME1"), tmp_path / "m1.dcm"))
    np.testing.assert_array_equal(rec.pixels, 255 - GREY8)


def _linear_window(values, center, width):
    """DICOM PS3.3 C.11.2.1.2.1 'LINEAR' onto 0..255."""
    c, w = center - 0.5, width - 1
    out = ((values - c) / w + 0.5) * 255
    out[values <= c - w / 2] = 0
    out[values > c + w / 2] = 255
    return out


def test_rescale_and_window_applied(tmp_path):
    raw = np.linspace(0, 4095, 40 * 50).reshape(40, 50).astype(np.uint16)
    ds = make_ds(
        raw,
        bits=12,
        RescaleSlope=2,
        RescaleIntercept=-1024,
        WindowCenter=1000,
        WindowWidth=2000,
    )
    rec = read_image(write(ds, tmp_path / "ct.dcm"))
    hu = raw.astype(float) * 2 - 1024
    expected = _linear_window(hu, 1000, 2000)
    assert np.abs(rec.pixels - expected).max() <= 1.0
    assert rec.pixels.min() == 0 and rec.pixels.max() == 255  # window clips both ends


def test_negative_slope_window_not_flipped(tmp_path):
    raw = np.linspace(0, 1000, 40 * 50).reshape(40, 50).astype(np.uint16)
    ds = make_ds(
        raw, bits=10, RescaleSlope=-1, RescaleIntercept=0, WindowCenter=-500, WindowWidth=1000
    )
    rec = read_image(write(ds, tmp_path / "neg.dcm"))
    values = -raw.astype(float)  # low stored values are high after rescale -> bright
    expected = _linear_window(values, -500, 1000)
    assert np.abs(rec.pixels - expected).max() <= 1.0


def test_signed_16bit_with_window_and_multiple_windows(tmp_path):
    raw = np.linspace(-2000, 2000, 40 * 50).reshape(40, 50).astype(np.int16)
    ds = make_ds(raw, bits=16)
    ds.WindowCenter = [0, 500]  # first window is used
    ds.WindowWidth = [1000, 100]
    rec = read_image(write(ds, tmp_path / "s16.dcm"))
    expected = _linear_window(raw.astype(float), 0, 1000)
    assert np.abs(rec.pixels - expected).max() <= 1.0


def test_monochrome1_with_window_inverted_after_window(tmp_path):
    raw = np.linspace(0, 4095, 40 * 50).reshape(40, 50).astype(np.uint16)
    ds = make_ds(raw, "MONOCHROME1", bits=12, WindowCenter=2048, WindowWidth=4096)
    rec = read_image(write(ds, tmp_path / "m1w.dcm"))
    expected = 255 - _linear_window(raw.astype(float), 2048, 4096)
    assert np.abs(rec.pixels - expected).max() <= 1.0
    assert rec.pixels[0, 0] == 255 and rec.pixels[-1, -1] == 0


def test_16bit_without_window_uses_own_range(tmp_path):
    raw = np.linspace(300, 900, 40 * 50).reshape(40, 50).astype(np.uint16)
    rec = read_image(write(make_ds(raw, bits=12), tmp_path / "nowin.dcm"))
    expected = np.rint((raw.astype(float) - 300) * 255 / 600)
    assert np.abs(rec.pixels - expected).max() <= 1
    assert rec.bits_stored == 12


def test_broken_window_falls_back_to_range(tmp_path):
    raw = np.linspace(300, 900, 40 * 50).reshape(40, 50).astype(np.uint16)
    ds = make_ds(raw, bits=12, WindowCenter=500, WindowWidth=0)  # width 0 is invalid
    rec = read_image(write(ds, tmp_path / "badwin.dcm"))
    assert rec.pixels.min() == 0 and rec.pixels.max() == 255


def test_voi_lut_sequence_preferred(tmp_path):
    raw = np.tile(np.arange(50, dtype=np.uint16) * 20, (40, 1))  # 0..980
    ds = make_ds(raw, bits=10, WindowCenter=100, WindowWidth=10)  # ignored: LUT wins
    item = Dataset()
    item.add_new(0x00283002, "US", [1024, 0, 16])  # LUTDescriptor
    item.add_new(0x00283006, "US", [int(v) for v in (1023 - np.arange(1024)) * 16])  # LUTData
    ds.VOILUTSequence = Sequence([item])
    rec = read_image(write(ds, tmp_path / "voilut.dcm"))
    expected = np.rint((1023 - raw.astype(float)) * 255 / 1023)
    assert np.abs(rec.pixels - expected).max() <= 1


def test_modality_lut_sequence(tmp_path):
    raw = np.tile(np.arange(50, dtype=np.uint16), (40, 1))
    ds = make_ds(raw, bits=8 if raw.max() < 256 else 16)
    ds.BitsStored = 8
    ds.HighBit = 7
    item = Dataset()
    item.add_new(0x00283002, "US", [256, 0, 16])  # LUTDescriptor
    item.ModalityLUTType = "US"
    item.add_new(0x00283006, "US", [int(v) for v in (np.arange(256) ** 2)])  # LUTData
    ds.ModalityLUTSequence = Sequence([item])
    rec = read_image(write(ds, tmp_path / "mlut.dcm"))
    expected = np.rint(raw.astype(float) ** 2 * 255 / 49**2)  # own range of the LUT output
    assert np.abs(rec.pixels - expected).max() <= 1


# ----------------------------------------------------------------------------------------------
# colour
# ----------------------------------------------------------------------------------------------


def test_rgb(tmp_path):
    rec = read_image(write(make_ds(RGB8, "RGB"), tmp_path / "rgb.dcm"))
    np.testing.assert_array_equal(rec.pixels, RGB8)


def test_rgb_with_equal_channels_becomes_grey(tmp_path):
    rec = read_image(write(make_ds(np.dstack([GREY8] * 3), "RGB"), tmp_path / "greyrgb.dcm"))
    np.testing.assert_array_equal(rec.pixels, GREY8)


def test_rgb_16bit_mapped_by_range(tmp_path):
    rgb16 = (RGB8.astype(np.uint16) * 16).astype(np.uint16)  # 12-bit values
    rec = read_image(write(make_ds(rgb16, "RGB", bits=12), tmp_path / "rgb16.dcm"))
    lo, hi = rgb16.min(), rgb16.max()
    expected = np.rint((rgb16.astype(float) - lo) * 255 / (hi - lo))
    assert np.abs(rec.pixels - expected).max() <= 1


def test_ybr_full_uncompressed_converted_once(tmp_path):
    from pydicom.pixels import convert_color_space

    smooth = np.dstack(
        [
            np.tile(np.linspace(0, 255, 50), (40, 1)),
            np.tile(np.linspace(255, 0, 40)[:, None], (1, 50)),
            np.full((40, 50), 128.0),
        ]
    ).astype(np.uint8)
    ybr = convert_color_space(smooth, "RGB", "YBR_FULL")
    rec = read_image(write(make_ds(ybr, "YBR_FULL"), tmp_path / "ybr.dcm"))
    assert np.abs(rec.pixels.astype(int) - smooth).max() <= 3


def _jpeg_frames(frames: np.ndarray) -> list[bytes]:
    out = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, "JPEG", quality=95, subsampling="4:2:2")
        out.append(buf.getvalue())
    return out


def smooth_rgb_frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(n):
        frames.append(
            np.dstack([(xx * 4 + i * 8) % 256, (yy * 5) % 256, np.full((h, w), 40 + i * 10)])
        )
    return np.asarray(frames, dtype=np.uint8)


def test_jpeg_baseline_ybr_422_cine_frame_by_frame(tmp_path, monkeypatch):
    frames = smooth_rgb_frames(6)
    ds = make_ds(frames, "RGB")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = encapsulate(_jpeg_frames(frames))
    ds["PixelData"].VR = "OB"
    ds.NumberOfFrames = len(frames)
    p = write(ds, tmp_path / "cine.dcm")

    calls: list = []
    real = pydicom.pixels.pixel_array

    def spy(src, *a, **k):
        calls.append(k.get("index"))
        return real(src, *a, **k)

    monkeypatch.setattr(pydicom.pixels, "pixel_array", spy)
    rec = read_image(p)
    assert rec.frame_count == 6 and rec.photometric == "YBR_FULL_422"
    assert calls == [0]  # only the first frame was decoded
    for i in (5, 2):
        f = rec.frame(i)
        assert f.shape == (48, 64, 3) and f.dtype == np.uint8
        # converted to RGB exactly once: close to the frames that went into the JPEG
        assert np.abs(f.astype(int) - frames[i]).mean() < 4
    assert calls == [0, 5, 2]
    assert None not in calls
    rec3 = read_image(p, frame=3)
    assert rec3.pixels_frame == 3
    assert np.abs(rec3.pixels.astype(int) - frames[3]).mean() < 4
    assert np.abs(rec3.frame(0).astype(int) - frames[0]).mean() < 4


def test_deferred_cine_checks_one_frame_without_loading_the_rest(tmp_path, monkeypatch):
    """Large pixel data stays on disk: each frame's size check reads that frame's bytes only."""
    import struct

    from pydicom import encaps

    from rcdnet_desktop.core.io import dicom as dicom_read

    frames = smooth_rgb_frames(6)
    jpegs = _jpeg_frames(frames)
    sof = jpegs[4].index(b"\xff\xc0")
    jpegs[4] = jpegs[4][:sof + 5] + struct.pack(">HH", 20000, 20000) + jpegs[4][sof + 9:]
    ds = make_ds(frames, "RGB")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = encapsulate(jpegs)
    ds["PixelData"].VR = "OB"
    ds.NumberOfFrames = len(frames)
    p = write(ds, tmp_path / "cine.dcm")

    monkeypatch.setattr(dicom_read, "_DICOM_DEFER_SIZE", "1 KB")
    sources: list = []
    real = encaps.get_frame

    def spy(buffer, *a, **k):
        sources.append(type(buffer))
        return real(buffer, *a, **k)

    monkeypatch.setattr(encaps, "get_frame", spy)
    rec = read_image(p)
    assert np.abs(rec.frame(5).astype(int) - frames[5]).mean() < 4
    with pytest.raises(UnreadableImageError, match="compressed frame is 20000 x 20000"):
        rec.frame(4)
    assert sources and bytes not in sources  # read from the file, not from loaded pixel data


def test_rle_multiframe(tmp_path):
    frames = RNG.integers(0, 256, size=(5, 30, 40), dtype=np.uint8)
    ds = make_ds(frames)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    p = write(ds, tmp_path / "rle.dcm")
    rec = read_image(p)
    assert rec.frame_count == 5
    for i in range(5):
        np.testing.assert_array_equal(rec.frame(i), frames[i])
    with pytest.raises(UnreadableImageError,
                       match=r"frame 6 requested but the clip has 5 frames \(1-5\)"):
        read_image(p, frame=5)


@pytest.mark.parametrize("attrs, fps", [
    ({}, None),
    ({"FrameTime": 40.0}, 25.0),
    ({"FrameTime": 40.0, "CineRate": 30}, 30.0),
    ({"RecommendedDisplayFrameRate": 12, "FrameTime": 40.0}, 12.0),
    ({"FrameTime": 0.0}, None),
])
def test_cine_frame_rate_from_header(tmp_path, attrs, fps):
    frames = RNG.integers(0, 256, size=(3, 20, 30), dtype=np.uint8)
    rec = read_image(write(make_ds(frames, **attrs), tmp_path / "cine.dcm"))
    assert rec.frame_rate == fps
    single = read_image(write(make_ds(frames[0], FrameTime=40.0), tmp_path / "one.dcm"))
    assert single.frame_rate is None


def test_rle_rgb(tmp_path):
    ds = make_ds(RGB8, "RGB")
    ds.compress(RLELossless, encoding_plugin="pydicom")
    rec = read_image(write(ds, tmp_path / "rlergb.dcm"))
    np.testing.assert_array_equal(rec.pixels, RGB8)


def test_jpeg2000_lossless(tmp_path):
    pytest.importorskip("openjpeg")
    raw = np.linspace(0, 4095, 40 * 50).reshape(40, 50).astype(np.uint16)
    ds = make_ds(raw, bits=12, WindowCenter=2048, WindowWidth=4096)
    ds.compress(JPEG2000Lossless)
    rec = read_image(write(ds, tmp_path / "j2k.dcm"))
    expected = _linear_window(raw.astype(float), 2048, 4096)
    assert np.abs(rec.pixels - expected).max() <= 1


def test_palette_colour(tmp_path):
    idx = RNG.integers(0, 256, size=(40, 50), dtype=np.uint8)
    ds = make_ds(idx, "PALETTE COLOR")
    lut_r = (np.arange(256) * 257).astype(np.uint16)  # 16-bit entries
    lut_g = ((255 - np.arange(256)) * 257).astype(np.uint16)
    lut_b = np.full(256, 128 * 257, np.uint16)
    for c, lut in zip(["Red", "Green", "Blue"], (lut_r, lut_g, lut_b), strict=True):
        setattr(ds, f"{c}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{c}PaletteColorLookupTableData", lut.tobytes())
    rec = read_image(write(ds, tmp_path / "pal.dcm"))
    assert rec.pixels.shape == (40, 50, 3)
    np.testing.assert_array_equal(rec.pixels[..., 0], idx)
    np.testing.assert_array_equal(rec.pixels[..., 1], 255 - idx)
    assert (rec.pixels[..., 2] == 128).all()


# ----------------------------------------------------------------------------------------------
# metadata: patient kept apart from study; ultrasound regions
# ----------------------------------------------------------------------------------------------


def test_patient_and_study_are_separate(tmp_path):
    ds = make_ds(GREY8)
    rec = read_image(write(ds, tmp_path / "meta.dcm"))
    assert rec.patient.name == "Doe^Jane" and rec.patient.patient_id == "PID-42"
    assert rec.patient.birth_date == "19700101" and rec.patient.sex == "F"
    assert rec.patient.accession_number == "ACC-7"
    assert rec.study.study_instance_uid == ds.StudyInstanceUID
    assert rec.study.sop_instance_uid == ds.SOPInstanceUID
    assert rec.study.modality == "US" and rec.study.manufacturer == "TestCo"
    study_text = " ".join(str(v) for v in vars(rec.study).values())
    assert "Doe" not in study_text and "PID-42" not in study_text


def test_ultrasound_regions(tmp_path):
    img = np.zeros((200, 300), np.uint8)
    img[50:150, 50:250] = RNG.integers(0, 256, size=(100, 200), dtype=np.uint8)
    ds = make_ds(img)
    ds.SequenceOfUltrasoundRegions = Sequence(
        [
            region(10, 20, 149, 179, dx=0.0075, dy=0.0080),  # valid: 0.075 x 0.080 mm/px
            region(150, 20, 299, 179, dx=-0.01, dy=0.01),  # valid, negative delta = direction
            region(250, 100, 400, 260),  # partly outside: clipped to 250..299 x 100..199
            region(500, 500, 600, 600),  # wholly outside: skipped
            region(0, 0, 10, 10, ux=4, uy=0),  # time axis (seconds): not a spatial calibration
            region(0, 0, 10, 10, dx=0.0, dy=0.01),  # zero spacing: invalid
            region(50, 50, 20, 80),  # max < min: invalid
        ]
    )
    rec = read_image(write(ds, tmp_path / "regions.dcm"))
    assert len(rec.regions) == 3
    r0, r1, r2 = rec.regions
    assert r0.box == Box(10, 20, 140, 160)
    assert r0.mm_per_pixel_x == pytest.approx(0.075) and r0.mm_per_pixel_y == pytest.approx(0.08)
    assert r1.box == Box(150, 20, 150, 160) and r1.mm_per_pixel_x == pytest.approx(0.1)
    assert r2.box == Box(250, 100, 50, 100)
    assert rec.mm_per_pixel == (pytest.approx(0.075), pytest.approx(0.08))


def test_broken_region_sequence_is_ignored(tmp_path):
    ds = make_ds(GREY8)
    bad = Dataset()
    bad.PhysicalUnitsXDirection = 3  # nothing else
    ds.SequenceOfUltrasoundRegions = Sequence([bad])
    rec = read_image(write(ds, tmp_path / "badreg.dcm"))
    assert rec.regions == ()


# ----------------------------------------------------------------------------------------------
# how files are recognised
# ----------------------------------------------------------------------------------------------


def test_extensionless_dicom_found_and_read(tmp_path):
    p = write(make_ds(GREY8), tmp_path / "IM000123")
    assert find_images(tmp_path) == [p]
    np.testing.assert_array_equal(read_image(p).pixels, GREY8)


def test_dicom_with_wrong_suffix_is_read_as_dicom(tmp_path):
    p = write(make_ds(GREY8), tmp_path / "looks_like.png")
    assert read_image(p).is_dicom


@pytest.mark.parametrize("name", ["raw.dcm", "raw"])
def test_dataset_without_preamble_or_meta(tmp_path, name):
    ds = make_ds(GREY8)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    p = tmp_path / name
    ds.save_as(p, implicit_vr=True, little_endian=True)  # no preamble, no file meta
    assert p.read_bytes()[128:132] != b"DICM"
    rec = read_image(p)
    np.testing.assert_array_equal(rec.pixels, GREY8)


# ----------------------------------------------------------------------------------------------
# bad DICOM
# ----------------------------------------------------------------------------------------------


def expect_error(path: Path, *words: str) -> UnreadableImageError:
    with pytest.raises(UnreadableImageError) as info:
        read_image(path)
    assert path.name in str(info.value)
    for w in words:
        assert w in info.value.reason, info.value.reason
    return info.value


def test_no_pixel_data(tmp_path):
    ds = make_ds(GREY8)
    del ds.PixelData
    expect_error(write(ds, tmp_path / "nopix.dcm"), "no pixel data")


def test_truncated_native_pixel_data(tmp_path):
    data = write(make_ds(GREY8), tmp_path / "full.dcm").read_bytes()
    p = tmp_path / "cut.dcm"
    p.write_bytes(data[:-500])
    expect_error(p, "truncated")


def test_truncated_rle(tmp_path):
    frames = RNG.integers(0, 256, size=(3, 30, 40), dtype=np.uint8)
    ds = make_ds(frames)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    data = write(ds, tmp_path / "full.dcm").read_bytes()
    p = tmp_path / "cut.dcm"
    p.write_bytes(data[: len(data) - 2000])
    with pytest.raises(UnreadableImageError) as info:
        rec = read_image(p)
        for i in range(rec.frame_count):
            rec.frame(i)
    assert "cut.dcm" in str(info.value)


@pytest.mark.parametrize("keep", [132, 200, 400])
def test_truncated_header(tmp_path, keep):
    data = write(make_ds(GREY8), tmp_path / "full.dcm").read_bytes()
    p = tmp_path / "head.dcm"
    p.write_bytes(data[:keep])
    expect_error(p)


def test_huge_header_refused_without_allocating(tmp_path):
    ds = make_ds(GREY8)
    ds.Rows = 20000
    ds.Columns = 20000
    ds.NumberOfFrames = 30
    p = write(ds, tmp_path / "huge.dcm")
    tracemalloc.start()
    try:
        err = expect_error(p, "too large", "20000 x 20000")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    assert "megapixels" in err.reason


def test_unknown_transfer_syntax(tmp_path):
    ds = make_ds(GREY8)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    expect_error(write(ds, tmp_path / "mpeg.dcm"), "compressed with MPEG2", "cannot decode")


def test_missing_decoder_named(tmp_path, monkeypatch):
    ds = make_ds(GREY8)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    p = write(ds, tmp_path / "rle.dcm")

    class NoPlugins:
        is_available = False

    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda _uid: NoPlugins())
    expect_error(p, "compressed with RLE Lossless", "no decoder is installed")


def test_decoder_failure_is_wrapped(tmp_path, monkeypatch):
    p = write(make_ds(GREY8), tmp_path / "ok.dcm")

    def broken(*_a, **_k):
        raise RuntimeError("Unable to decode as exceptions were raised by all available plugins")

    monkeypatch.setattr(pydicom.pixels, "pixel_array", broken)
    expect_error(p, "could not be decoded")


def test_frame_loader_errors_are_unreadable(tmp_path):
    frames = RNG.integers(0, 256, size=(3, 30, 40), dtype=np.uint8)
    p = write(make_ds(frames), tmp_path / "mf.dcm")
    rec = read_image(p)
    p.write_bytes(b"gone")  # the file changes under the viewer
    with pytest.raises(UnreadableImageError, match="mf.dcm"):
        rec.frame(2)


def test_invalid_number_of_frames_value(tmp_path):
    ds = make_ds(GREY8)
    ds.NumberOfFrames = 1
    p = write(ds, tmp_path / "badnf.dcm")
    good = b"\x28\x00\x08\x00IS\x02\x001 "
    data = p.read_bytes()
    assert data.count(good) == 1
    p.write_bytes(data.replace(good, good[:-2] + b"1A"))  # like pydicom's badVR.dcm
    rec = read_image(p)
    assert rec.frame_count == 1
    np.testing.assert_array_equal(rec.pixels, GREY8)


def test_budget_constant_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(pixels, "MAX_PIXELS_PER_FRAME", 100)
    expect_error(write(make_ds(GREY8), tmp_path / "small.dcm"), "too large")


# ----------------------------------------------------------------------------------------------
# the readers' suffixes and the file dialog's filter
# ----------------------------------------------------------------------------------------------


def test_file_filter_offers_exactly_the_readable_suffixes(tmp_path):
    """Every suffix in the file dialog's filter is read, and every suffix a reader takes (and
    every one Pillow registers for the formats we accept) is in the filter."""
    import re

    from rcdnet_desktop.core.io import DICOM_SUFFIXES, IMAGE_SUFFIXES, image_file_filter
    from rcdnet_desktop.core.io.pillow import PIL_FORMATS

    entries = image_file_filter().split(";;")
    assert entries[0].startswith("Images (") and entries[-1] == "All files (*)"
    assert "DICOM (*.dcm *.dicom *.dic)" in entries
    assert entries[0].endswith(" DICOMDIR)") and "CD or USB study (DICOMDIR)" in entries
    offered = re.findall(r"\*(\.\w+)", entries[0])
    assert len(offered) == len(set(offered))
    assert set(re.findall(r"\*(\.\w+)", image_file_filter())) == set(offered) == IMAGE_SUFFIXES
    Image.init()
    pillow = {e: f for e, f in Image.registered_extensions().items() if f in PIL_FORMATS}
    assert set(pillow) | set(DICOM_SUFFIXES) <= set(offered)

    grey = GREY8[:12, :16]
    for suffix in offered:
        path = tmp_path / f"image{suffix}"
        if suffix in DICOM_SUFFIXES:
            write(make_ds(grey), path)
        else:
            Image.fromarray(grey).save(path, format=pillow[suffix])
        rec = read_image(path)
        assert rec.pixels.shape[:2] == grey.shape, suffix  # lossy WebP comes back as RGB
        assert rec.is_dicom == (suffix in DICOM_SUFFIXES), suffix


# ----------------------------------------------------------------------------------------------
# found by content in folders
# ----------------------------------------------------------------------------------------------


def _raw_dataset(path: Path, implicit: bool) -> Path:
    """GREY8 written as a bare data set: no preamble, no file meta."""
    ds = make_ds(GREY8)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.save_as(path, implicit_vr=implicit, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    return path


@pytest.mark.parametrize("implicit", [True, False])
def test_dataset_without_preamble_is_found_in_folders_whatever_its_name(tmp_path, implicit):
    sub = tmp_path / "sub"
    sub.mkdir()
    found = [_raw_dataset(tmp_path / "export.bin", implicit),
             _raw_dataset(tmp_path / "IM0001", implicit),
             _raw_dataset(sub / "1.2.840.113619.2.55.3.7", implicit)]
    (tmp_path / "notes").write_text("not an image\n")
    (tmp_path / "junk.bin").write_bytes(b"\x08\x00\x05\x00" + bytes(range(256)) * 4)
    (tmp_path / "short").write_bytes(b"\x08\x00")
    assert find_images(tmp_path) == found[:2]
    assert find_images(tmp_path, recursive=True) == found
    for p in found:
        np.testing.assert_array_equal(read_image(p).pixels, GREY8)


def test_sniffing_reads_only_the_first_bytes(tmp_path, monkeypatch):
    from rcdnet_desktop.core.io import files

    big = tmp_path / "big_unknown"
    big.write_bytes(b"\x00" * 2**20)
    asked: list[int] = []
    real = files.read_head

    def spy(p, n):
        asked.append(n)
        return real(p, n)

    monkeypatch.setattr(rio_mod, "read_head", spy)
    assert find_images(tmp_path) == []
    assert asked == [rio_mod.HEAD_BYTES] and rio_mod.HEAD_BYTES <= 512


# ----------------------------------------------------------------------------------------------
# deflated data sets, missing photometric interpretation, frames the header over-declares
# ----------------------------------------------------------------------------------------------


def test_deflated_cine_read_frame_by_frame(tmp_path):
    frames = RNG.integers(0, 256, size=(4, 30, 40), dtype=np.uint8)
    ds = make_ds(frames)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    p = tmp_path / "deflated.dcm"
    ds.save_as(p, enforce_file_format=True)
    rec = read_image(p, frame=2)
    assert rec.frame_count == 4
    np.testing.assert_array_equal(rec.pixels, frames[2])
    for i in range(4):
        np.testing.assert_array_equal(rec.frame(i), frames[i])
    assert rec.patient.patient_id == "PID-42"


def test_deflated_data_set_over_the_limit_is_refused(tmp_path, monkeypatch):
    ds = make_ds(RNG.integers(0, 256, size=(4, 30, 40), dtype=np.uint8))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    p = tmp_path / "deflated.dcm"
    ds.save_as(p, enforce_file_format=True)
    monkeypatch.setattr(pixels, "MAX_DATASET_BYTES", 3000)  # the pixel data alone is 4800
    expect_error(p, "deflated", "limit")


def test_missing_photometric_interpretation_is_read_as_monochrome2(tmp_path, engine):
    ds = make_ds(GREY8)
    del ds.PhotometricInterpretation
    rec = read_image(write(ds, tmp_path / "no_pi.dcm"))
    np.testing.assert_array_equal(rec.pixels, GREY8)
    assert rec.photometric == "MONOCHROME2"
    assert any("no Photometric Interpretation" in n for n in rec.notes)
    assert any("no Photometric Interpretation" in w for w in engine.predict(rec).warnings)


def test_colour_without_photometric_interpretation_is_refused(tmp_path):
    ds = make_ds(RGB8, "RGB")
    del ds.PhotometricInterpretation
    expect_error(write(ds, tmp_path / "no_pi_rgb.dcm"), "3 samples per pixel",
                 "no Photometric Interpretation")


def test_frames_declared_beyond_the_data_are_not_offered(tmp_path):
    frames = RNG.integers(0, 256, size=(3, 30, 40), dtype=np.uint8)
    ds = make_ds(frames)
    ds.NumberOfFrames = 50
    rec = read_image(write(ds, tmp_path / "short_cine.dcm"))
    assert rec.frame_count == 3
    assert any("declares 50 frames but the file holds 3" in n for n in rec.notes)
    np.testing.assert_array_equal(rec.frame(2), frames[2])


# ----------------------------------------------------------------------------------------------
# JPEG whose scan header has non-standard spectral selection (12-bit lossy files)
# ----------------------------------------------------------------------------------------------


def test_sequential_jpeg_with_nonstandard_scan_header_is_decoded(tmp_path):
    """Older encoders wrote spectral selection end 0 in sequential scans (the standard fixes it
    at 63); libjpeg refuses such a frame. The reader sets it and decodes the rest unchanged."""
    libjpeg = pytest.importorskip("libjpeg")
    buf = io.BytesIO()
    Image.fromarray(GREY8).save(buf, "JPEG", quality=95)
    good = buf.getvalue()
    sos = good.index(b"\xff\xda")
    ns = good[sos + 4]
    se = sos + 5 + 2 * ns + 1
    assert good[se] == 63
    odd = good[:se] + b"\x00" + good[se + 1:]
    with pytest.raises(Exception, match="scan stop must be 63"):
        libjpeg.decode(odd)

    def dicom(frame: bytes, name: str) -> Path:
        ds = make_ds(GREY8)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGExtended12Bit
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        return write(ds, tmp_path / name)

    expected = read_image(dicom(good, "standard.dcm")).pixels
    np.testing.assert_array_equal(read_image(dicom(odd, "nonstandard.dcm")).pixels, expected)


def test_12bit_lossy_jpeg_from_disk_is_decoded():
    """pydicom's JPEG-lossy.dcm: JPEG Extended, 12 bits, spectral selection 0..0. GDCM (IJG
    libjpeg) reads 244 at (420, 140) and 95 at (230, 120); libjpeg agrees within one level."""
    from pydicom.data import get_testdata_files

    from rcdnet_desktop.core.io.dicom_decode import decode_one_frame, fixed_sequential_scan

    found = get_testdata_files("JPEG-lossy.dcm")  # local files only, never a download
    if not found:
        pytest.skip("pydicom's JPEG-lossy.dcm is not installed")
    path = Path(found[0])
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGExtended12Bit
    assert ds.BitsStored == 12
    rec = read_image(path)
    assert rec.pixels.shape == (1024, 256) and rec.pixels.dtype == np.uint8
    assert rec.bits_stored == 12 and rec.pixels.std() > 10
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    raw = decode_one_frame(ds, ds.file_meta.TransferSyntaxUID,
                           fixed_sequential_scan(ds.file_meta.TransferSyntaxUID, frame), {})
    assert abs(int(raw[420, 140]) - 244) <= 1 and abs(int(raw[230, 120]) - 95) <= 1
    assert raw.max() == 264 and abs(float(raw.mean()) - 14.37) < 0.05


@pytest.mark.parametrize("uid, name", [
    ("1.2.840.10008.1.2.4.110", "JPEG XL Lossless"),
    ("1.2.840.10008.1.2.4.112", "JPEG XL"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000"),
    ("1.2.840.10008.1.2.4.100", "MPEG2"),
    ("1.2.3.4.5", "unrecognised transfer syntax (UID 1.2.3.4.5)"),
])
def test_transfer_syntaxes_are_named(uid, name):
    from rcdnet_desktop.core.io.dicom_decode import ts_name

    assert name in ts_name(pydicom.uid.UID(uid))
