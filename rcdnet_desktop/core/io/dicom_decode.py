"""DICOM pixel data within bounds, and why it failed in words (used by :mod:`.dicom`).

- **Deflated data sets** (Deflated Explicit VR Little Endian) are inflated here, piece by piece,
  instead of by pydicom (which inflates the whole file at once: a 2.4 MB file can expand to
  gigabytes). The declared image size is checked as soon as the header has been inflated, and
  inflating stops at :data:`~.pixels.MAX_DATASET_BYTES`.
- **Compressed frames** are read with every length field capped by the file's size (a damaged
  length of 4 GB must not allocate 4 GB), and their own header (JPEG SOF, JPEG 2000 SIZ) is
  checked against the pixel budgets and against Rows/Columns before a decoder allocates what it
  claims.
- **12-bit lossy JPEG** (JPEG Extended) whose scan header has non-standard values (older
  encoders write spectral selection 0..0 where the standard asks for 0..63; libjpeg refuses
  them) is decoded after those fixed values are set, as the standard defines them.
- **Names and reasons**: transfer syntaxes by name (also those newer than pydicom, such as
  JPEG XL), and decoder failures in plain words.
"""

from __future__ import annotations

import bisect
import io
import itertools
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from ..errors import UnreadableImageError
from . import pixels
from .dicom_info import number
from .files import open_regular
from .pixels import check_budget, mb, plain

# Transfer syntaxes pydicom 3.0 does not name (it would give the bare UID).
_TS_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression",
    "1.2.840.10008.1.2.1.98": "Encapsulated Uncompressed Explicit VR Little Endian",
}
_RLE = "1.2.840.10008.1.2.5"
_SEQUENTIAL_JPEG = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")  # baseline, extended


def ts_name(ts: Any) -> str:
    """The transfer syntax in words: "JPEG 2000", "JPEG XL", or "an unrecognised ... (UID)"."""
    uid = str(ts)
    name = str(getattr(ts, "name", "") or "")
    if name and name != uid:
        return name
    if uid in _TS_NAMES:
        return _TS_NAMES[uid]
    return f"an unrecognised transfer syntax (UID {uid})"


def frame_bytes_per_pixel(spp: int, bits_allocated: int) -> float:
    """Decoded bytes per pixel of a frame: all samples, at least a byte per sample."""
    return max(1, spp) * max(1.0, bits_allocated / 8 if bits_allocated > 0 else 1.0)


# ----------------------------------------------------------------------------------------------
# reading with lengths capped by the file's size
# ----------------------------------------------------------------------------------------------


class CappedFile:
    """A binary file whose ``read(n)`` never asks for more than what is left in the file.

    Python allocates the buffer of ``read(n)`` before reading, so a length field of 4 GB in a
    200 kB file would otherwise take 4 GB of address space first. Only what pydicom uses of a
    file object is provided.
    """

    def __init__(self, p: Path) -> None:
        self._fh = open_regular(p)
        self._size = os.fstat(self._fh.fileno()).st_size
        self.name = str(p)

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self._size - self._fh.tell())
        return self._fh.read(left if n is None or n < 0 else min(n, left))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CappedFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# deflated data sets
# ----------------------------------------------------------------------------------------------

_CHUNK = 2**20  # compressed bytes read, and inflated bytes produced, per step
_HEADER_LOOK = 256 * 2**10  # inflated bytes after which the declared image size is checked


def file_meta(p: Path) -> tuple[Any, int] | None:
    """The file meta group and where the data set starts, or None when there is none."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    try:
        with CappedFile(p) as f:
            read_preamble(f, force=True)
            meta = _read_file_meta_info(f)
            return (meta, f.tell()) if len(meta) else None
    except UnreadableImageError:
        raise
    except Exception:
        return None  # the full read says what is wrong in its own words


class Inflated:
    """An inflated data set, kept in the pieces it was inflated in.

    One contiguous buffer would have to grow as inflating goes on, and growing a buffer of a
    gigabyte can copy it; the pieces are never copied. :meth:`open` gives a read-only file
    over them for pydicom (the header read and each frame's decoding get their own).
    """

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.starts = list(itertools.accumulate((len(c) for c in pieces), initial=0))

    def __len__(self) -> int:
        return self.starts[-1]

    def open(self) -> _PiecesFile:
        return _PiecesFile(self)


class _PiecesFile:
    """A read-only binary file over :class:`Inflated` pieces (read, seek and tell)."""

    def __init__(self, data: Inflated) -> None:
        self._data = data
        self._pos = 0
        self.name = "<inflated data set>"

    def read(self, n: int | None = -1) -> bytes:
        size = len(self._data)
        end = size if n is None or n < 0 else min(size, self._pos + n)
        if end <= self._pos:
            return b""
        starts, pieces = self._data.starts, self._data.pieces
        i = bisect.bisect_right(starts, self._pos) - 1
        parts = []
        pos = self._pos
        while pos < end:
            off = pos - starts[i]
            take = min(len(pieces[i]) - off, end - pos)
            parts.append(memoryview(pieces[i])[off:off + take])
            pos += take
            i += 1
        self._pos = end
        return b"".join(parts)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._data))[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def inflate(p: Path, offset: int) -> Inflated:
    """The deflated data set that starts at ``offset``, inflated within the budgets.

    Raises
    ------
    UnreadableImageError
        When the data set expands beyond :data:`~.pixels.MAX_DATASET_BYTES`, declares an image
        over the budgets, or is damaged or truncated.
    """
    limit = pixels.MAX_DATASET_BYTES
    pieces: list[bytes] = []
    size = 0
    z = zlib.decompressobj(-zlib.MAX_WBITS)
    looked = False
    try:
        with CappedFile(p) as f:
            f.seek(offset)
            while not z.eof:
                data = f.read(_CHUNK)
                if not data:
                    break
                while data and not z.eof:
                    piece = z.decompress(data, min(_CHUNK, limit + 1 - size))
                    data = z.unconsumed_tail
                    if piece:
                        pieces.append(piece)
                        size += len(piece)
                    if size > limit:
                        raise UnreadableImageError(
                            p, f"the deflated DICOM data set expands to more than {mb(limit)}; "
                            f"the limit is {mb(limit)}")
                    if not looked and size >= _HEADER_LOOK:
                        looked = True
                        check_declared_size(p, b"".join(pieces))
            pieces.append(z.flush())
            size += len(pieces[-1])
    except zlib.error:
        raise UnreadableImageError(
            p, "DICOM file is damaged: its deflated data set is not valid compressed data"
        ) from None
    if size > limit:
        raise UnreadableImageError(p, f"the deflated DICOM data set is larger than {mb(limit)}")
    if not z.eof:
        raise UnreadableImageError(p, "DICOM file is truncated: its deflated data set ends early")
    if not looked:
        check_declared_size(p, b"".join(pieces))
    return Inflated(pieces)


def check_declared_size(p: Path, header: bytes) -> None:
    """Refuse a deflated data set whose header (first inflated bytes) declares too much.

    One frame is checked against the per-frame budgets, all frames against
    :data:`~.pixels.MAX_DATASET_BYTES` (a deflated data set is held whole in memory).
    """
    from pydicom.filereader import read_dataset

    pixel_length: list[int] = []

    def at_pixels(tag: int, _vr: object, length: int) -> bool:
        if tag >= 0x7FE00000:
            pixel_length.append(length)
            return True
        return False

    try:
        ds = read_dataset(io.BytesIO(header), False, True, stop_when=at_pixels)
    except Exception:
        return  # header unreadable here: the inflating limit and the full read decide
    limit = pixels.MAX_DATASET_BYTES
    rows, cols = int(number(ds, "Rows", 0) or 0), int(number(ds, "Columns", 0) or 0)
    spp = int(number(ds, "SamplesPerPixel", 1) or 1)
    bits = int(number(ds, "BitsAllocated", 8) or 8)
    frames = max(1, int(number(ds, "NumberOfFrames", 1) or 1))
    per_pixel = frame_bytes_per_pixel(spp, bits)
    check_budget(p, cols, rows, per_pixel)
    total = rows * cols * per_pixel * frames
    if total > limit:
        raise UnreadableImageError(
            p, f"image is too large: {frames} frames of {cols} x {rows} pixels take "
            f"{mb(total)} once inflated; the limit for a deflated file is {mb(limit)}")
    if pixel_length and pixel_length[0] != 0xFFFFFFFF and pixel_length[0] > limit:
        raise UnreadableImageError(
            p, f"the deflated DICOM data set declares {mb(pixel_length[0])} of pixel data; the "
            f"limit is {mb(limit)}")


# ----------------------------------------------------------------------------------------------
# compressed frames
# ----------------------------------------------------------------------------------------------


def compressed_frame(p: Path, ds: Any, ts: Any, index: int, rows: int, cols: int,
                     spp: int) -> bytes | None:
    """The compressed bytes of frame ``index``, once its own header has been checked.

    None for native and RLE data (their decoded size is the header's, checked already) and when
    the encapsulation cannot be read (the decoder then reports it). The decoders allocate what
    the compressed frame claims, not what the DICOM header says: a small file whose frame claims
    20000 x 20000 would otherwise take gigabytes first.

    Raises
    ------
    UnreadableImageError
        The frame claims more than the budgets, or another size than Rows/Columns.
    """
    if not getattr(ts, "is_encapsulated", False) or str(ts) == _RLE:
        return None
    try:
        data = _encapsulated_frame(p, ds, ts, index)
    except Exception:
        return None
    header = _codestream_header(data)
    if header is None:
        return data
    w, h, components, precision = header
    limit = pixels.MAX_PIXELS_PER_FRAME  # read at run time: one limit for every reader
    if w * h > limit:
        raise UnreadableImageError(
            p, f"image is too large: its compressed frame is {w} x {h} pixels; the limit is "
            f"{limit // 1_000_000} megapixels per frame")
    check_budget(p, w, h, frame_bytes_per_pixel(components, 16 if precision > 8 else 8))
    if (w, h) != (cols, rows):
        raise UnreadableImageError(
            p, f"DICOM file is damaged: its compressed frame is {w} x {h} pixels but the header "
            f"says {cols} x {rows}")
    if components > 4:
        raise UnreadableImageError(
            p, f"DICOM file is damaged: its compressed frame has {components} colour components "
            f"(the header says {spp} sample{'s' * (spp != 1)} per pixel)")
    return data


def _encapsulated_frame(p: Path, ds: Any, ts: Any, index: int) -> bytes:
    """The compressed bytes of frame ``index``, read from the file when the header left them.

    The header dataset defers large pixel data; reading only this frame's fragments from the
    file keeps a long cine's compressed data from being loaded (and kept) just to check a frame.
    """
    from pydicom.encaps import get_frame

    count = max(1, int(number(ds, "NumberOfFrames", 1) or 1))
    elem = ds.get_item("PixelData", keep_deferred=True)
    tell = getattr(elem, "value_tell", None)
    if elem.value is None and tell is not None:
        with CappedFile(p) as f:
            f.seek(tell)
            return get_frame(f, index, number_of_frames=count)
    return get_frame(ds.PixelData, index, number_of_frames=count)


def _codestream_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, components, bit precision) from a JPEG SOF or JPEG 2000 SIZ marker."""
    siz = -1
    if data.startswith(b"\xff\x4f\xff\x51"):  # JPEG 2000 codestream: SOC then SIZ
        siz = 0
    elif data[4:8] == b"jP  ":  # JP2 file format: the codestream sits in the jp2c box
        box = data.find(b"jp2c\xff\x4f\xff\x51")
        siz = box + 4 if box >= 0 else -1
    if siz >= 0:
        if len(data) < siz + 43:
            return None
        x, y, x0, y0 = struct.unpack(">IIII", data[siz + 8:siz + 24])
        components = struct.unpack(">H", data[siz + 40:siz + 42])[0]
        precision = (data[siz + 42] & 0x7F) + 1
        return (x - x0, y - y0, components, precision) if x > x0 and y > y0 else None
    for marker, pos, _length in _jpeg_segments(data):
        # Start-of-frame markers (baseline, progressive, lossless, JPEG-LS); not DHT/JPG/DAC.
        if (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7:
            if pos + 10 > len(data):
                return None
            precision, h, w, components = struct.unpack(">BHHB", data[pos + 4:pos + 10])
            return (w, h, components, precision)
    return None


def _jpeg_segments(data: bytes):
    """(marker, offset, length) of a JPEG's marker segments up to its first scan's data."""
    if not data.startswith(b"\xff\xd8"):
        return
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        yield marker, pos, length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return
        pos += 2 + length


def fixed_sequential_scan(ts: Any, data: bytes | None) -> bytes | None:
    """The frame with its scan headers made standard, or None when it needs no change.

    For the sequential DCT processes (JPEG baseline and extended, SOF0/SOF1) the standard fixes
    a scan's spectral selection to 0..63 and its successive approximation to 0 (ITU T.81,
    B.2.3); decoders built on IJG libjpeg ignore these bytes, libjpeg (pylibjpeg) refuses other
    values. Setting them changes nothing else in the frame.
    """
    if data is None or str(ts) not in _SEQUENTIAL_JPEG:
        return None
    sequential = False
    scans: list[int] = []
    for marker, pos, length in _jpeg_segments(data):
        if marker in (0xC0, 0xC1):
            sequential = True
        elif (0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7:
            return None  # progressive, lossless, arithmetic or JPEG-LS: not ours to touch
        elif marker == 0xDA and sequential and pos + 5 <= len(data):
            spectral = pos + 5 + 2 * data[pos + 4]  # after Ns and the Ns component selectors
            if spectral + 3 <= min(len(data), pos + 2 + length):
                scans.append(spectral)
    # Only the first scan is found by the walk above; a baseline frame nearly always has one.
    todo = [s for s in scans if data[s:s + 3] != b"\x00\x3f\x00"]
    if not todo:
        return None
    out = bytearray(data)
    for s in todo:
        out[s:s + 3] = b"\x00\x3f\x00"
    return bytes(out)


def decode_one_frame(ds: Any, ts: Any, data: bytes, overrides: dict[str, Any]) -> Any:
    """Decode one compressed frame held in memory, with the data set's image attributes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.pixels import pixel_array

    one = Dataset()
    one.file_meta = FileMetaDataset()
    one.file_meta.TransferSyntaxUID = ts
    for kw in ("SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "Rows",
               "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"):
        if kw in ds:
            one[kw] = ds[kw]
    one.NumberOfFrames = 1
    one.PixelData = encapsulate([data])
    one["PixelData"].VR = "OB"
    return pixel_array(one, index=0, **overrides)


# ----------------------------------------------------------------------------------------------
# failures in words
# ----------------------------------------------------------------------------------------------


def decode_failure(exc: BaseException, ts: Any) -> str:
    """Why the pixel data of a DICOM file could not be decoded, in words."""
    msg = plain(exc)
    low = msg.lower()
    if isinstance(exc, EOFError) or "less than expected" in low or "truncat" in low:
        return "file is truncated: the pixel data is shorter than the header declares" + (
            f" ({_byte_counts(msg)})" if _byte_counts(msg) else "")
    if "all available plugins" in low or "unable to decode" in low:
        detail = _first_plugin_reason(str(exc))
        return (f"the {ts_name(ts)} pixel data is damaged or not what the header describes, and "
                "could not be decoded" + (f" ({detail})" if detail else ""))
    if "missing required element" in low:
        what = msg.split("element", 1)[1].strip(" :'\"") if "element" in msg else ""
        return f"DICOM file is damaged: the header lacks {what or 'a required image attribute'}"
    if "is invalid" in low or "unknown" in low or "must be" in low:
        return f"DICOM file is damaged: {msg[0].lower() + msg[1:] if msg else 'invalid header'}"
    return f"the pixel data could not be decoded ({msg})" if msg else (
        "the pixel data could not be decoded")


def _byte_counts(msg: str) -> str:
    import re

    m = re.search(r"\((\d+) vs\.? (\d+) bytes\)", msg)
    if not m:
        return ""
    have, need = (int(v) for v in m.groups())
    return f"{have:,} of {need:,} bytes"


def _first_plugin_reason(msg: str) -> str:
    """The first plugin's reason from pydicom's "exceptions were raised by all plugins" list."""
    lines = [ln.strip() for ln in msg.splitlines()[1:] if ln.strip()]
    if not lines:
        return ""
    first = lines[0].split(":", 1)[1] if ":" in lines[0] else lines[0]
    return plain(first)
