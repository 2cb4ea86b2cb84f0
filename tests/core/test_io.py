"""core.io on raster files (PNG / JPEG / BMP / TIFF / GIF), bad input, and find_images.

Every file is written to tmp_path by the test itself.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop.core import io as rio
from rcdnet_desktop.core.errors import UnreadableImageError
from rcdnet_desktop.core.io import IMAGE_SUFFIXES, find_images, pixels, read_image

RNG = np.random.default_rng(1234)
GREY = RNG.integers(0, 256, size=(48, 64), dtype=np.uint8)
RGB = RNG.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


def save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


def assert_valid(rec, shape) -> None:
    assert rec.pixels.dtype == np.uint8
    assert rec.pixels.shape == shape
    assert rec.pixels.flags["C_CONTIGUOUS"]
    assert rec.frame_count >= 1


# ----------------------------------------------------------------------------------------------
# 8-bit modes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_grey_is_exact(tmp_path, suffix):
    p = save(Image.fromarray(GREY, "L"), tmp_path / f"g{suffix}")
    rec = read_image(p)
    assert_valid(rec, GREY.shape)
    np.testing.assert_array_equal(rec.pixels, GREY)
    assert rec.path == p and not rec.is_dicom and rec.bits_stored == 8
    assert rec.frame_loader is None


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_rgb_is_exact(tmp_path, suffix):
    p = save(Image.fromarray(RGB, "RGB"), tmp_path / f"c{suffix}")
    rec = read_image(p)
    assert_valid(rec, RGB.shape)
    np.testing.assert_array_equal(rec.pixels, RGB)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".jpg", ".tif"])
def test_rgb_with_equal_channels_becomes_grey(tmp_path, suffix):
    smooth = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))  # survives JPEG's chroma
    p = save(Image.fromarray(np.repeat(smooth[..., None], 3, 2), "RGB"), tmp_path / f"x{suffix}")
    rec = read_image(p)
    assert rec.pixels.shape == smooth.shape
    if suffix != ".jpg":
        np.testing.assert_array_equal(rec.pixels, smooth)


def test_jpeg_grey_and_rgb(tmp_path):
    smooth = (np.add.outer(np.arange(48), np.arange(64)) * 2).astype(np.uint8)
    g = read_image(save(Image.fromarray(smooth, "L"), tmp_path / "g.jpg", quality=95))
    assert_valid(g, smooth.shape)
    assert np.abs(g.pixels.astype(int) - smooth).mean() < 3
    assert g.source_format == "JPEG"
    col = np.stack([smooth, 255 - smooth, np.full_like(smooth, 90)], axis=2)
    c = read_image(save(Image.fromarray(col, "RGB"), tmp_path / "c.jpeg", quality=95))
    assert_valid(c, col.shape)
    assert np.abs(c.pixels.astype(int) - col).mean() < 4


def test_rgba_alpha_is_ignored(tmp_path):
    alpha = np.zeros((48, 64), np.uint8)  # fully transparent: colour must still come through
    p = save(Image.fromarray(np.dstack([RGB, alpha]), "RGBA"), tmp_path / "a.png")
    rec = read_image(p)
    assert_valid(rec, RGB.shape)
    np.testing.assert_array_equal(rec.pixels, RGB)
    assert rec.photometric == "RGBA"


def test_la_alpha_is_ignored(tmp_path):
    p = save(Image.fromarray(np.dstack([GREY, 255 - GREY]), "LA"), tmp_path / "la.png")
    rec = read_image(p)
    np.testing.assert_array_equal(rec.pixels, GREY)


def test_palette_png_colour_and_grey(tmp_path):
    im = Image.fromarray(RGB, "RGB").quantize(colors=64)
    rec = read_image(save(im, tmp_path / "p.png"))
    assert_valid(rec, RGB.shape)
    np.testing.assert_array_equal(rec.pixels, np.asarray(im.convert("RGB")))
    grey_palette = Image.fromarray(GREY, "L").convert("P")  # palette of greys -> (H, W)
    rec = read_image(save(grey_palette, tmp_path / "pg.png"))
    np.testing.assert_array_equal(rec.pixels, GREY)


def test_palette_with_transparency(tmp_path):
    im = Image.fromarray(RGB, "RGB").quantize(colors=16)
    im.info["transparency"] = 0
    rec = read_image(save(im, tmp_path / "pt.png", transparency=0))
    np.testing.assert_array_equal(rec.pixels, np.asarray(im.convert("RGB")))


def test_palette_bmp_and_gif(tmp_path):
    im = Image.fromarray(RGB, "RGB").quantize(colors=32)
    ref = np.asarray(im.convert("RGB"))
    for name in ("p.bmp", "p.gif"):
        rec = read_image(save(im, tmp_path / name))
        np.testing.assert_array_equal(rec.pixels, ref)


def test_bilevel(tmp_path):
    bits = GREY > 128
    rec = read_image(save(Image.fromarray(bits), tmp_path / "b.png"))
    np.testing.assert_array_equal(rec.pixels, bits.astype(np.uint8) * 255)
    assert rec.bits_stored == 1


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(np.zeros((20, 80), np.uint8), "L")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    rec = read_image(save(im, tmp_path / "o.jpg", exif=exif))
    assert rec.pixels.shape == (80, 20)


# ----------------------------------------------------------------------------------------------
# more than 8 bits: mapped by the image's own range
# ----------------------------------------------------------------------------------------------


def _ramp16(lo=1000, hi=5000):
    return np.linspace(lo, hi, 48 * 64).reshape(48, 64).astype(np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grey_mapped_by_own_range(tmp_path, suffix):
    a = _ramp16()
    rec = read_image(save(Image.fromarray(a), tmp_path / f"g16{suffix}"))
    assert_valid(rec, a.shape)
    assert rec.bits_stored == 16
    assert rec.pixels.min() == 0 and rec.pixels.max() == 255
    expected = np.rint((a.astype(float) - 1000) * 255 / 4000)
    assert np.abs(rec.pixels - expected).max() <= 1


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_keeps_all_bits(tmp_path, suffix, channels):
    cv2 = pytest.importorskip("cv2")
    rgb16 = np.stack([_ramp16(0, 4095), _ramp16(4095, 0), np.full((48, 64), 2048, np.uint16)], 2)
    stored = rgb16[..., ::-1]  # OpenCV writes BGR
    if channels == 4:
        stored = np.dstack([stored, np.full((48, 64), 65535, np.uint16)])
    p = tmp_path / f"c16{suffix}"
    assert cv2.imwrite(str(p), stored)
    rec = read_image(p)
    assert_valid(rec, (48, 64, 3))
    # 12-bit data in 16-bit samples: Pillow alone would keep the high byte (0..15, near black)
    expected = np.rint(rgb16.astype(float) * 255 / 4095)
    assert np.abs(rec.pixels - expected).max() <= 1


def test_32bit_float_tiff(tmp_path):
    a = np.linspace(-1.0, 3.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    a[0, 0] = np.nan
    rec = read_image(save(Image.fromarray(a, "F"), tmp_path / "f.tif"))
    assert_valid(rec, a.shape)
    assert rec.pixels[-1, -1] == 255 and rec.pixels[0, 1] == 0


def test_32bit_int_tiff(tmp_path):
    a = (np.arange(48 * 64, dtype=np.int32).reshape(48, 64) - 100) * 1000
    rec = read_image(save(Image.fromarray(a, "I"), tmp_path / "i.tif"))
    assert rec.pixels[0, 0] == 0 and rec.pixels[-1, -1] == 255


def test_constant_16bit_image_is_zeros(tmp_path):
    a = np.full((48, 64), 700, np.uint16)
    rec = read_image(save(Image.fromarray(a), tmp_path / "flat.png"))
    assert not rec.pixels.any()


# ----------------------------------------------------------------------------------------------
# multi-page files: one frame at a time
# ----------------------------------------------------------------------------------------------


def test_multipage_tiff_frames_on_demand(tmp_path):
    pages = [Image.fromarray(np.full((48, 64), 40 * i, np.uint8)) for i in range(4)]
    p = tmp_path / "pages.tif"
    pages[0].save(p, save_all=True, append_images=pages[1:])
    rec = read_image(p)
    assert rec.frame_count == 4 and rec.frame_loader is not None
    assert (rec.pixels == 0).all()
    assert (rec.frame(2) == 80).all() and (rec.frame(3) == 120).all()
    rec2 = read_image(p, frame=3)
    assert (rec2.pixels == 120).all() and rec2.pixels_frame == 3
    assert (rec2.frame(0) == 0).all() and (rec2.frame(3) == 120).all()
    with pytest.raises(UnreadableImageError,
                       match=r"frame 10 requested but the file has 4 frames \(1-4\)"):
        read_image(p, frame=9)
    with pytest.raises(UnreadableImageError):
        rec.frame_loader(7)


# ----------------------------------------------------------------------------------------------
# bad input: only UnreadableImageError, naming the file and the reason
# ----------------------------------------------------------------------------------------------


def expect_error(path: Path, *words: str, frame: int = 0) -> UnreadableImageError:
    with pytest.raises(UnreadableImageError) as info:
        read_image(path, frame=frame)
    err = info.value
    assert str(path) in str(err) and Path(path).name in str(err)
    for w in words:
        assert w in err.reason, err.reason
    return err


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.png", "not found")


def test_directory(tmp_path):
    expect_error(tmp_path, "folder")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    expect_error(p, "empty")


@pytest.mark.parametrize("name", ["notes.png", "notes.jpg", "notes.dcm", "notes", "notes.txt"])
def test_text_file(tmp_path, name):
    p = tmp_path / name
    p.write_text("this is not an image\n" * 20)
    expect_error(p, "not a supported image format")


def test_random_bytes(tmp_path):
    p = tmp_path / "noise.tif"
    p.write_bytes(RNG.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    expect_error(p)


@pytest.mark.parametrize(("suffix", "keep"), [(".png", 0.5), (".jpg", 0.5), (".png", 0.05)])
def test_truncated_raster(tmp_path, suffix, keep):
    src = save(Image.fromarray(RGB, "RGB"), tmp_path / f"full{suffix}")
    data = src.read_bytes()
    p = tmp_path / f"cut{suffix}"
    p.write_bytes(data[: max(40, int(len(data) * keep))])
    expect_error(p)


def test_truncated_png_says_truncated(tmp_path):
    big = RNG.integers(0, 256, size=(300, 300), dtype=np.uint8)
    data = save(Image.fromarray(big), tmp_path / "full.png").read_bytes()
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    expect_error(p, "truncated")


def test_damaged_png_chunk(tmp_path):
    data = bytearray(save(Image.fromarray(RGB, "RGB"), tmp_path / "ok.png").read_bytes())
    data[60:80] = b"\x00" * 20  # inside IDAT: zlib stream broken
    p = tmp_path / "bad.png"
    p.write_bytes(bytes(data))
    expect_error(p)


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root ignores permissions")
def test_permission_denied(tmp_path):
    p = save(Image.fromarray(GREY), tmp_path / "locked.png")
    p.chmod(0)
    try:
        expect_error(p, "permission denied")
    finally:
        p.chmod(0o644)


def test_permission_denied_simulated(tmp_path, monkeypatch):
    p = save(Image.fromarray(GREY), tmp_path / "locked.png")

    def denied(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(rio.files, "open", denied, raising=False)
    expect_error(p, "permission denied")


def _png_header(width: int, height: int, colour_type: int = 0) -> bytes:
    """A PNG whose IHDR claims width x height, with a tiny (wrong) IDAT: a bomb header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("w", "h"),
    [
        (20000, 20000),  # 400 MP: beyond Pillow's own bomb limit
        (12000, 9000),  # 108 MP: under Pillow's hard limit, over ours
    ],
)
def test_huge_png_header_refused_without_allocating(tmp_path, w, h):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header(w, h, colour_type=2))
    tracemalloc.start()
    try:
        err = expect_error(p, "too large")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.0f} MiB while refusing"
    assert "megapixels" in err.reason


def test_huge_bmp_header_refused(tmp_path):
    header = struct.pack("<2sIHHI", b"BM", 54, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, 15000, 15000, 1, 24, 0, 0, 2835, 2835, 0, 0
    )
    p = tmp_path / "bomb.bmp"
    p.write_bytes(header + b"\x00" * 100)
    expect_error(p, "too large")


def test_budget_is_checked_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(pixels, "MAX_PIXELS_PER_FRAME", 1000)
    p = save(Image.fromarray(GREY), tmp_path / "small.png")  # 3072 px > patched budget
    expect_error(p, "too large")


def test_frame_out_of_range_and_bad_frame(tmp_path):
    p = save(Image.fromarray(GREY), tmp_path / "one.png")
    expect_error(p, "frame 2 requested but the file has 1 frame", frame=1)
    expect_error(p, "frame -1", frame=-1)


def test_unexpected_library_errors_are_wrapped(tmp_path, monkeypatch):
    p = save(Image.fromarray(GREY), tmp_path / "ok.png")

    def boom(*_a, **_k):
        raise KeyError("internal")

    monkeypatch.setattr(rio.pillow, "read_pillow", boom)
    err = expect_error(p, "damaged or not a valid image", "internal")
    assert "KeyError" not in err.reason  # the type is in the chain, not in the words
    assert isinstance(err.__cause__, KeyError)


def test_memory_error_is_wrapped(tmp_path, monkeypatch):
    p = save(Image.fromarray(GREY), tmp_path / "ok.png")

    def oom(*_a, **_k):
        raise MemoryError

    monkeypatch.setattr(rio.pillow, "read_pillow", oom)
    expect_error(p, "memory")


def test_import_keeps_torch_and_pydicom_out(tmp_path):
    p = save(Image.fromarray(GREY), tmp_path / "ok.png")
    code = (
        "import sys; from rcdnet_desktop.core.io import read_image; "
        f"read_image({str(p)!r}); "
        "bad = [m for m in ('torch', 'pydicom', 'PySide6') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


# ----------------------------------------------------------------------------------------------
# find_images
# ----------------------------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, Path]:
    from pydicom.data import get_testdata_file

    dicom = Path(get_testdata_file("CT_small.dcm")).read_bytes()  # has the DICM preamble
    files = {
        "a.png": None,
        "B.JPG": None,
        "c.tif": None,
        "notes.txt": b"text",
        "report.pdf": b"%PDF-1.4",
        "IM0001": dicom,  # extension-less DICOM
        "1.2.840.113619.2.5": dicom,  # named by UID: ".5" is not a suffix we know
        "noext_text": b"hello",
        ".hidden.png": None,
        "DICOMDIR": dicom,
        "sub/d.bmp": None,
        "sub/deeper/e.dcm": dicom,
        "sub/skip.doc": b"doc",
        ".git/f.png": None,
    }
    out = {}
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            Image.fromarray(GREY).save(p, format={".jpg": "JPEG"}.get(p.suffix.lower()))
        else:
            p.write_bytes(content)
        out[rel] = p
    return out


def test_find_images_flat(tmp_path):
    t = _tree(tmp_path)
    got = find_images(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in got]
    assert names == ["1.2.840.113619.2.5", "a.png", "B.JPG", "c.tif", "IM0001"]
    assert all(isinstance(p, Path) for p in got)
    assert t["IM0001"] in got


def test_find_images_recursive(tmp_path):
    _tree(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in find_images([tmp_path], recursive=True)]
    assert names == [
        "1.2.840.113619.2.5",
        "a.png",
        "B.JPG",
        "c.tif",
        "IM0001",
        "sub/d.bmp",
        "sub/deeper/e.dcm",
    ]


def test_find_images_explicit_files_kept_in_order_without_duplicates(tmp_path):
    t = _tree(tmp_path)
    missing = tmp_path / "gone.png"
    got = find_images([t["c.tif"], t["notes.txt"], missing, tmp_path, t["a.png"]])
    assert got[:3] == [t["c.tif"], t["notes.txt"], missing]  # named files always listed
    assert got.count(t["a.png"]) == 1 and got.count(t["c.tif"]) == 1
    assert len(got) == 7  # 3 named + 4 new from the folder (c.tif not twice)


def test_found_files_read(tmp_path):
    _tree(tmp_path)
    for p in find_images(tmp_path, recursive=True):
        rec = read_image(p)
        assert rec.pixels.dtype == np.uint8


def test_find_images_empty_and_missing(tmp_path):
    assert find_images(tmp_path) == []
    assert find_images([]) == []


def test_suffixes_are_lower_case_with_dot():
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_SUFFIXES)
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm"} <= IMAGE_SUFFIXES


# ----------------------------------------------------------------------------------------------
# frames asked of a folder, library output, wording
# ----------------------------------------------------------------------------------------------


def test_pick_frame_single_images_use_theirs_and_clips_must_have_it(tmp_path):
    from rcdnet_desktop.core.io import pick_frame

    single = read_image(save(Image.fromarray(GREY), tmp_path / "one.png"))
    assert pick_frame(single, 0) == 0 and pick_frame(single, 40) == 0
    pages = [Image.fromarray(np.full((8, 8), 7 * i, np.uint8)) for i in range(34)]
    p = tmp_path / "clip.tif"
    pages[0].save(p, save_all=True, append_images=pages[1:])
    clip = read_image(p)
    assert pick_frame(clip, 33) == 33
    with pytest.raises(UnreadableImageError) as info:
        pick_frame(clip, 40)
    assert "clip.tif" in str(info.value)
    assert info.value.reason == "frame 41 requested but the file has 34 frames (1-34)"


def _tiff_with_broken_exif(path: Path) -> Path:
    data = bytearray(save(Image.fromarray(GREY), path, compression="tiff_lzw").read_bytes())
    data[-30:] = b"\xff" * 30  # Pillow warns "Corrupt EXIF data", then cannot size the image
    path.write_bytes(bytes(data))
    return path


def test_library_warnings_are_captured_not_shown(tmp_path):
    p = _tiff_with_broken_exif(tmp_path / "bad.tif")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        err = expect_error(p, "damaged")
    assert seen == []
    assert "Error" not in err.reason


def test_concurrent_reads_leave_the_warning_settings_as_they_were(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    bad = _tiff_with_broken_exif(tmp_path / "bad.tif")
    good = save(Image.fromarray(GREY), tmp_path / "good.png")
    filters, show = list(warnings.filters), warnings.showwarning

    def read(p: Path) -> str:
        try:
            return read_image(p).source_format
        except UnreadableImageError:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(read, [bad, good] * 40))
    assert got == ["refused", "PNG"] * 40
    assert warnings.filters == filters and warnings.showwarning is show


@pytest.mark.parametrize("library, words", [
    ("libjpeg error code '-1038' returned from Decode(): A misplaced marker segment was found",
     "A misplaced marker segment was found"),
    ("[Errno 5] Input/output error", "Input/output error"),
    ("decoder error -2", "the image data could not be decoded"),
    ("ValueError: A (0028,0100) 'Bits Allocated' value of '0' is invalid",
     "A 'Bits Allocated' value of '0' is invalid"),
])
def test_library_messages_lose_their_jargon(library, words):
    from rcdnet_desktop.core.io.pixels import plain

    assert plain(RuntimeError(library)) == words


def test_unexpected_errors_are_described_without_their_type():
    from rcdnet_desktop.core.io.pixels import describe

    assert describe(TypeError("Missing dimensions")) == (
        "the file is damaged or not a valid image (Missing dimensions)")
    assert "nested too deeply" in describe(RecursionError("maximum recursion depth exceeded"))
    assert describe(MemoryError()) == "not enough memory to decode the image"
    bomb = ("Image size (900000000 pixels) exceeds limit of 178956970 pixels, could be "
            "decompression bomb DOS attack.")
    assert describe(Image.DecompressionBombError(bomb)) == (
        "image is too large: 900 megapixels; the limit is 100 megapixels per frame")
