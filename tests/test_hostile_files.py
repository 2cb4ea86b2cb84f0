"""Hostile files, one per refusal class: refused in plain words, quickly, in bounded memory.

Every file is built here. Each is read in a child process whose address space is capped a few
hundred MiB above what it uses after its imports (:func:`tests.test_hardening.run_capped`), so
a decoder that allocated what a lying header claims would fail with "not enough memory"
instead of the reason asked for. The reason must name no exception, error code, bare
transfer-syntax UID or "DOS attack", the message must name the file, nothing may be printed
(library warnings, libtiff's own complaints) and nothing may hang (FIFOs, ``/dev/zero``).
"""

from __future__ import annotations

import io
import os
import re
import socket
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.filebase import DicomBytesIO  # noqa: E402
from pydicom.filewriter import write_file_meta_info  # noqa: E402
from pydicom.uid import (  # noqa: E402
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
    UltrasoundImageStorage,
    generate_uid,
)

from tests.test_hardening import png_claiming, posix_only, run_capped, us_dataset  # noqa: E402

JARGON = re.compile(
    r"Traceback|Errno|WinError|\w+Error\b|\w+Exception\b|DOS attack|error code|decoder error"
    r"|maximum recursion|1\.2\.840\.10008\.|\(\w{4},\w{4}\)"
)
RNG = np.random.default_rng(12)


# ----------------------------------------------------------------------------------------------
# builders
# ----------------------------------------------------------------------------------------------


def _ds(arr: np.ndarray | None = None) -> Dataset:
    return us_dataset(RNG.integers(0, 255, (64, 64), np.uint8) if arr is None else arr)


def _bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _edited(**attrs) -> Callable[[], bytes]:
    def build() -> bytes:
        ds = _ds()
        for k, v in attrs.items():
            if v is None:
                delattr(ds, k)
            else:
                setattr(ds, k, v)
        return _bytes(ds)

    return build


def _dataset_start(data: bytes) -> int:
    """Where the data set starts, after the preamble and the file meta group."""
    (meta_length,) = struct.unpack("<I", data[140:144])  # (0002,0000) UL, value at 140
    return 144 + meta_length


def _el(group: int, element: int, vr: str, value: bytes) -> bytes:
    """One explicit VR little endian element."""
    if vr in ("OB", "OW", "SQ", "UN", "UT"):
        return struct.pack("<HH2sHI", group, element, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr.encode(), len(value)) + value


def _image_header(rows: int, cols: int, frames: int = 1) -> bytes:
    us = lambda v: struct.pack("<H", v)  # noqa: E731
    return (_el(0x0008, 0x0016, "UI", b"1.2.840.10008.5.1.4.1.1.6.1\0")
            + _el(0x0008, 0x0060, "CS", b"US")
            + _el(0x0028, 0x0002, "US", us(1)) + _el(0x0028, 0x0004, "CS", b"MONOCHROME2 ")
            + _el(0x0028, 0x0008, "IS", str(frames).encode().ljust(2 + len(str(frames)) % 2))
            + _el(0x0028, 0x0010, "US", us(rows)) + _el(0x0028, 0x0011, "US", us(cols))
            + _el(0x0028, 0x0100, "US", us(8)) + _el(0x0028, 0x0101, "US", us(8))
            + _el(0x0028, 0x0102, "US", us(7)) + _el(0x0028, 0x0103, "US", us(0)))


def deflate_zeros(prefix: bytes, zeros: int) -> bytes:
    """Raw deflate of ``prefix`` then ``zeros`` zero bytes, built in milliseconds.

    After a full flush the compressor starts afresh, so 16 MiB of zeros compress to the same
    block every time: the block is made once and repeated (a few MB stand for gigabytes).
    """
    chunk = 2**24
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [co.compress(prefix), co.flush(zlib.Z_FULL_FLUSH)]
    block = co.compress(b"\0" * chunk) + co.flush(zlib.Z_FULL_FLUSH)
    parts += [block] * (zeros // chunk)
    parts.append(co.compress(b"\0" * (zeros % chunk)) + co.flush())
    return b"".join(parts)


def deflated_file(body: bytes) -> bytes:
    """A DICOM file in Deflated Explicit VR Little Endian whose deflated data set is ``body``."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + buf.getvalue() + body


def deflate_bomb_declared() -> bytes:
    """60 frames of 8192 x 8192 zeros: 3.8 GB inflated from a 4 MB file."""
    n = 8192 * 8192 * 60
    head = _image_header(8192, 8192, 60) + struct.pack("<HH2sHI", 0x7FE0, 0x10, b"OB", 0, n)
    return deflated_file(deflate_zeros(head, n))


def deflate_bomb_small_header() -> bytes:
    """A 64 x 64 header over 3.7 GB of pixel data."""
    n = 4_000_000_000
    head = _image_header(64, 64) + struct.pack("<HH2sHI", 0x7FE0, 0x10, b"OB", 0, n)
    return deflated_file(deflate_zeros(head, n))


def deflate_bomb_before_header() -> bytes:
    """3.7 GB of zeros in a private element before any image attribute: nothing to check
    early, so inflating must stop at the limit."""
    n = 4_000_000_000
    private = struct.pack("<HH2sHI", 0x0009, 0x1001, b"OB", 0, n)
    return deflated_file(deflate_zeros(private, n))


def deflated_garbage() -> bytes:
    return deflated_file(bytes(RNG.integers(0, 256, 4000, np.uint8)))


def deflated_truncated() -> bytes:
    good = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = good.compress(_bytes(_ds())[_dataset_start(_bytes(_ds())):]) + good.flush()
    return deflated_file(body[: len(body) // 2])


def truncated(keep: int | None = None, cut: int | None = None) -> Callable[[], bytes]:
    def build() -> bytes:
        data = _bytes(_ds())
        return data[:keep] if keep is not None else data[:-cut]

    return build


def garbage_after_header() -> bytes:
    data = _bytes(_ds())
    start = _dataset_start(data)
    return data[:start] + bytes(RNG.integers(0, 256, 5000, np.uint8))


def nested_sequences(depth: int = 5000) -> bytes:
    """Sequences within sequences, ``depth`` levels (undefined lengths), before the image."""
    data = _bytes(_ds())
    start = _dataset_start(data)
    sq = b"\x08\x00\x40\x11SQ\0\0\xff\xff\xff\xff"  # (0008,1140) undefined length
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    item_end, sq_end = b"\xfe\xff\x0d\xe0\0\0\0\0", b"\xfe\xff\xdd\xe0\0\0\0\0"
    return data[:start] + (sq + item) * depth + (item_end + sq_end) * depth + data[start:]


def bad_vr() -> bytes:
    data = bytearray(_bytes(_ds()))
    rows = data.index(b"\x28\x00\x10\x00US")
    data[rows + 4:rows + 6] = b"\x00\x01"  # not a VR
    return bytes(data)


def with_transfer_syntax(uid: bytes) -> Callable[[], bytes]:
    """An encapsulated file whose transfer syntax is ``uid`` (23 characters: MPEG2's length)."""

    def build() -> bytes:
        ds = _ds()
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2, then replaced
        ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
        ds["PixelData"].VR = "OB"
        return _bytes(ds).replace(b"1.2.840.10008.1.2.4.100", uid)

    return build


def rle_claiming(rows: int, cols: int, spp: int, bits: int) -> Callable[[], bytes]:
    def build() -> bytes:
        ds = _ds()
        ds.compress(RLELossless, encoding_plugin="pydicom")
        ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
        ds.BitsAllocated = ds.BitsStored = bits
        ds.HighBit = bits - 1
        if spp == 3:
            ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
        return _bytes(ds)

    return build


def jpeg_frame(components: int | None = None, damage: bool = False) -> bytes:
    """64 x 64 JPEG baseline DICOM; its SOF claims ``components``, or its Huffman table has an
    undefined class (libjpeg answers with an error code)."""
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, (64, 64), np.uint8)).save(buf, "JPEG", quality=90)
    frame = bytearray(buf.getvalue())
    if components is not None:
        sof = frame.index(b"\xff\xc0")
        frame[sof + 9] = components
    if damage:
        dht = frame.index(b"\xff\xc4")
        frame[dht + 4] = 0x55  # table class 5: undefined
    ds = _ds()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([bytes(frame)])
    ds["PixelData"].VR = "OB"
    return _bytes(ds)


def fragment_length_4gb() -> bytes:
    ds = _ds()
    ds.compress(RLELossless, encoding_plugin="pydicom")
    data = bytearray(_bytes(ds))
    item = data.rindex(b"\xfe\xff\x00\xe0")
    data[item + 4:item + 8] = struct.pack("<I", 0xFFFFFFF0)
    return bytes(data)


def tiff_damaged(what: str) -> bytes:
    """An LZW TIFF whose strip byte count is wrong (libtiff complains on stderr) or whose
    last bytes are overwritten (the directory is damaged)."""
    buf = io.BytesIO()
    Image.fromarray((np.arange(2500).reshape(50, 50) % 251).astype(np.uint8)).save(
        buf, "TIFF", compression="tiff_lzw")
    data = bytearray(buf.getvalue())
    if what == "tail":
        data[-30:] = b"\xff" * 30
        return bytes(data)
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd:ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry:entry + 2])[0] == 279:  # StripByteCounts
            data[entry + 8:entry + 12] = struct.pack("<I", 3)
    return bytes(data)


# name -> (builder, words the reason must contain)
CASES: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {
    "empty.dcm": (lambda: b"", ("empty",)),
    "truncated_header.dcm": (truncated(keep=300), ("truncated",)),
    "truncated_pixels.dcm": (truncated(cut=1000), ("truncated", "3,096 of 4,096 bytes")),
    "garbage_after_header.dcm": (garbage_after_header, ()),
    "wrong_rows.dcm": (_edited(Rows=128), ("shorter than the header declares",)),
    "huge_dimensions.dcm": (_edited(Rows=60000, Columns=60000), ("too large", "60000 x 60000")),
    "bits_allocated_0.dcm": (_edited(BitsAllocated=0), ("damaged", "Bits Allocated")),
    "samples_per_pixel_0.dcm": (_edited(SamplesPerPixel=0), ("damaged", "Samples per Pixel")),
    "photometric_foo.dcm": (_edited(PhotometricInterpretation="FOO"),
                            ("Photometric Interpretation",)),
    "bad_vr.dcm": (bad_vr, ()),
    "nested_sequences.dcm": (nested_sequences, ("nested too deeply",)),
    "jpeg_xl.dcm": (with_transfer_syntax(b"1.2.840.10008.1.2.4.110"), ("JPEG XL", "cannot")),
    "private_syntax.dcm": (with_transfer_syntax(b"1.2.3.4.5.6.7.8.9.10.11"),
                           ("unrecognised transfer syntax",)),
    "mpeg2.dcm": (with_transfer_syntax(b"1.2.840.10008.1.2.4.100"), ("MPEG2", "cannot")),
    "rle_claiming_20000.dcm": (rle_claiming(20000, 20000, 1, 8), ("too large", "megapixels")),
    "rle_claiming_600mb.dcm": (rle_claiming(10000, 10000, 3, 16), ("too large", "512 MB")),
    "jpeg_200_components.dcm": (lambda: jpeg_frame(components=200), ("colour components",)),
    "jpeg_bad_table.dcm": (lambda: jpeg_frame(damage=True), ("JPEG Baseline", "damaged")),
    "deflate_bomb_declared.dcm": (deflate_bomb_declared, ("too large", "once inflated")),
    "deflate_bomb_small_header.dcm": (deflate_bomb_small_header,
                                      ("deflated", "3,815 MB of pixel data")),
    "deflate_garbage.dcm": (deflated_garbage, ("not valid compressed data",)),
    "deflate_truncated.dcm": (deflated_truncated, ("truncated", "ends early")),
    "png_30000.png": (lambda: png_claiming(30000, 30000), ("too large", "30000 x 30000")),
    "tiff_bad_strip.tif": (lambda: tiff_damaged("strip"), ("damaged",)),
    "tiff_bad_tail.tif": (lambda: tiff_damaged("tail"), ("damaged",)),
}
# Damaged, but what is left is still an image: read, or refused in words.
READ_OR_REFUSED = {"garbage_after_header.dcm", "bad_vr.dcm"}
# Read all the same, with what the reader assumed in the notes.
READ = {
    "fragment_4gb.dcm": (fragment_length_4gb, ()),  # the length is capped by the file's size
    "frames_1e9.dcm": (_edited(NumberOfFrames="999999999"),
                       ("declares 999999999 frames but the file holds 1",)),
}


def _check_reason(row: dict, path: Path, seconds: float = 5) -> None:
    assert row["result"] == "refused", row
    assert str(path) in row["message"], row
    assert not JARGON.search(row["reason"]), row["reason"]
    assert row["seconds"] < seconds, row


@posix_only
def test_every_refusal_class_in_plain_words_quickly_and_in_bounded_memory(tmp_path):
    paths = []
    for name, (build, _words) in CASES.items():
        (tmp_path / name).write_bytes(build())
        paths.append(tmp_path / name)
    for name, (build, _words) in READ.items():
        (tmp_path / name).write_bytes(build())
        paths.append(tmp_path / name)

    got, stderr = run_capped(paths, timeout=180)

    assert stderr == ""  # no warning, no libtiff complaint, no traceback
    for p in paths:
        row = got[p.name]
        if p.name in READ:
            assert row["result"] == "read", row
            assert all(any(w in n for n in row["notes"]) for w in READ[p.name][1]), row
            continue
        if p.name in READ_OR_REFUSED and row["result"] == "read":
            continue
        _check_reason(row, p)
        for word in CASES[p.name][1]:
            assert word in row["reason"], (word, row["reason"])
        assert "memory" not in row["reason"], row  # refused for its own reason, not the cap


@posix_only
def test_deflate_bomb_without_a_header_to_check_stops_at_the_limit(tmp_path):
    """Nothing before the zeros says how large the data set is: it is inflated until the limit
    (1 GiB, kept in the pieces it was inflated in: never copied) and refused there, in well
    under 3 GB."""
    p = tmp_path / "bomb_before_header.dcm"
    p.write_bytes(deflate_bomb_before_header())
    assert p.stat().st_size < 5_000_000

    got, stderr = run_capped([p], timeout=120, headroom_mib=3 * 1024, absolute=True)

    row = got[p.name]
    _check_reason(row, p, seconds=60)
    assert "expands to more than 1,024 MB" in row["reason"], row
    assert row["peak_rss_mib"] < 1400, row
    assert stderr == ""


# ----------------------------------------------------------------------------------------------
# FIFOs, devices and sockets
# ----------------------------------------------------------------------------------------------


@posix_only
def test_fifo_device_and_socket_are_refused_without_opening(tmp_path):
    fifo = tmp_path / "fifo.dcm"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.dcm"
    zero.symlink_to("/dev/zero")
    null_png = tmp_path / "null.png"
    null_png.symlink_to("/dev/null")
    sock_path = tmp_path / "sock.dcm"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_path))
        got, stderr = run_capped([fifo, zero, null_png, sock_path], timeout=60)
    finally:
        sock.close()
    assert stderr == ""
    for p, kind in [(fifo, "a named pipe (FIFO)"), (zero, "a character device"),
                    (null_png, "a character device"), (sock_path, "a socket")]:
        row = got[p.name]
        _check_reason(row, p)
        assert f"it is {kind}, not a regular file" in row["reason"], row


@posix_only
def test_find_images_does_not_open_special_files(tmp_path):
    """Extension-less names are sniffed for DICOM content; a FIFO among them must not be
    opened (it would block until a writer came), in a flat or a recursive walk."""
    import subprocess

    os.mkfifo(tmp_path / "IM0001")
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "sub" / "IM0002")
    (tmp_path / "sub" / "IM0003").symlink_to("/dev/zero")
    code = ("import sys; from rcdnet_desktop.core.io import find_images; "
            "print(len(find_images(sys.argv[1])), len(find_images(sys.argv[1], recursive=True)))")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "0"]
