"""The DICOM reader (pydicom) -> :class:`ImageRecord`.

Called by :func:`rcdnet_desktop.core.io.read_image`; see that module for what every reader
returns. Holds the header read (pixel data deferred), the decoder and size checks made before
any pixel is decoded, per-frame decoding (:class:`_DicomContext`), and the Modality LUT / VOI
LUT / window, palette and MONOCHROME1 conversions. Deflated data sets, compressed frames' own
headers and decoder failures are handled in :mod:`.dicom_decode`; the patient, study and
ultrasound regions in :mod:`.dicom_info`. pydicom is imported only when a DICOM file is read.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnreadableImageError
from ..types import ImageRecord
from . import pixels
from .dicom_decode import (
    CappedFile,
    Inflated,
    compressed_frame,
    decode_failure,
    decode_one_frame,
    file_meta,
    fixed_sequential_scan,
    frame_bytes_per_pixel,
    inflate,
    ts_name,
)
from .dicom_info import (
    image_areas,
    number,
    patient_info,
    study_info,
    text,
    ultrasound_regions,
)
from .dicom_spacing import pixel_spacing
from .pixels import (
    NESTED_TOO_DEEP,
    NOT_SUPPORTED,
    check_budget,
    check_frame,
    finish,
    guard_loader,
    mb,
    plain,
    range_to_uint8,
)

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
"""Suffixes taken for DICOM; files without a suffix are recognised by their content."""

# pydicom reads elements larger than this only when accessed: the header read never pulls the
# pixel data into memory (frames are decoded from the file by index instead).
_DICOM_DEFER_SIZE = "1 MB"

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _pydicom() -> Any:
    import pydicom  # lazy: ~0.2 s of import time only when a DICOM is opened

    return pydicom


def _transfer_syntax(ds: Any) -> Any:
    from pydicom.uid import (
        UID,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return UID(str(ts))
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        implicit, little = True, True
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _dicom_open_error(p: Path, exc: Exception) -> UnreadableImageError:
    if isinstance(exc, RecursionError):
        return UnreadableImageError(p, NESTED_TOO_DEEP)
    msg = plain(exc)
    low = msg.lower()
    if isinstance(exc, EOFError) or "end of file" in low or "truncat" in low:
        return UnreadableImageError(p, f"DICOM file is truncated ({msg})")
    return UnreadableImageError(p, f"the DICOM header could not be read ({msg})")


def has_dicm_preamble(head: bytes) -> bool:
    """The file's first bytes hold the 128-byte preamble and the ``DICM`` magic."""
    return len(head) >= 132 and head[128:132] == b"DICM"


# Value representations, and those written with a 4-byte length after two reserved bytes.
_VRS = frozenset(b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV "
                 b"TM UC UI UL UN UR US UT UV".split())
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())


def looks_like_dicom(head: bytes) -> bool:
    """DICOM by content: the preamble and ``DICM``, or a data set written without them.

    A data set without preamble must start with a well-formed group 0002 (file meta) or 0008
    element: explicit VR (little or big endian) with a known VR and an even length, or
    implicit VR little endian with an even length that fits a first element.
    """
    if has_dicm_preamble(head):
        return True
    if len(head) < 8:
        return False
    for order in "<>":
        group, _element = struct.unpack(order + "HH", head[:4])
        if group not in (0x0002, 0x0008) or (order == ">" and group == 0x0002):
            continue
        vr = head[4:6]
        if vr in _VRS:
            if vr in _LONG_VRS:
                return head[6:8] == b"\0\0"
            return struct.unpack(order + "H", head[6:8])[0] % 2 == 0
        if order == "<":  # implicit VR: a 4-byte length
            length = struct.unpack("<I", head[4:8])[0]
            return length == 0xFFFFFFFF or (length % 2 == 0 and length < 2**16)
    return False


class DicomReader:
    """The DICOM reader, in two places of :data:`rcdnet_desktop.core.io.READERS`.

    With ``preamble=True`` it takes files with the preamble and ``DICM`` magic, before any
    other reader; with ``preamble=False`` it takes, after the others declined, files named as
    DICOM, files without a suffix and files that start like a data set without preamble, and
    says the format is not supported when pydicom finds no image in them.
    """

    label = "DICOM"
    suffixes = DICOM_SUFFIXES

    def __init__(self, preamble: bool) -> None:
        self.preamble = preamble

    def can_read(self, path: Path, head: bytes) -> bool:
        if self.preamble:
            return has_dicm_preamble(head)
        return (path.suffix.lower() in DICOM_SUFFIXES or path.suffix == ""
                or looks_like_dicom(head))

    def read(self, path: Path, frame: int) -> ImageRecord:
        return read_dicom(path, frame, has_preamble=self.preamble)


def read_dicom(p: Path, frame: int, has_preamble: bool) -> ImageRecord:
    ds, inflated = _read_header(p, has_preamble)

    keywords = _safe_keywords(ds)
    pixel_kw = next((k for k in _PIXEL_KEYWORDS if k in keywords), None)
    if not has_preamble and pixel_kw is None and "SOPClassUID" not in keywords:
        raise UnreadableImageError(p, NOT_SUPPORTED)
    if pixel_kw is None:
        if _safe_len(ds) == 0:
            raise UnreadableImageError(
                p, "DICOM file is truncated or damaged: no data elements could be read"
            )
        kind = _sop_class_name(ds)
        raise UnreadableImageError(
            p, "DICOM file has no pixel data" + (f" (SOP class: {kind})" if kind else "")
        )

    rows = int(number(ds, "Rows", 0) or 0)
    cols = int(number(ds, "Columns", 0) or 0)
    if rows <= 0 or cols <= 0:
        raise UnreadableImageError(p, "DICOM file has no valid image size (Rows/Columns)")
    spp = int(number(ds, "SamplesPerPixel", 1) or 1)
    bits_allocated = int(number(ds, "BitsAllocated", 8) or 8)
    check_budget(p, cols, rows, frame_bytes_per_pixel(spp, bits_allocated))

    ts = _transfer_syntax(ds)
    _check_decoder(p, ts)

    notes: list[str] = []
    count = max(1, int(number(ds, "NumberOfFrames", 1) or 1))
    held = _native_frames_held(ds, pixel_kw, ts, rows * cols * spp * bits_allocated // 8)
    if held is not None and 0 < held < count:
        notes.append(f"the header declares {count} frames but the file holds {held}: only "
                     "those are shown")
        count = held
    check_frame(p, frame, count, "clip")

    photometric = text(ds, "PhotometricInterpretation").upper()
    overrides: dict[str, Any] = {}
    if not photometric:
        if spp != 1:
            raise UnreadableImageError(
                p, f"DICOM file is damaged: it has {spp} samples per pixel but no Photometric "
                "Interpretation, so its colours cannot be known")
        photometric = overrides["photometric_interpretation"] = "MONOCHROME2"
        notes.append("the file does not say how its pixels are encoded (no Photometric "
                     "Interpretation): shown as greyscale (MONOCHROME2)")

    ctx = _DicomContext(p, ds, ts, pixel_kw == "PixelData", rows, cols, photometric,
                        spp=spp, overrides=overrides, inflated=inflated)
    pixels = ctx.frame(frame)
    loader = guard_loader(p, count, ctx.frame, "clip") if count > 1 else None

    bits = int(number(ds, "BitsStored", None) or number(ds, "BitsAllocated", 8) or 8)
    return ImageRecord(
        path=p,
        pixels=pixels,
        frame_count=count,
        source_format="DICOM",
        bits_stored=bits,
        photometric=photometric,
        patient=patient_info(ds),
        study=study_info(ds),
        regions=ultrasound_regions(ds, cols, rows),
        image_areas=image_areas(ds, cols, rows),
        pixels_frame=frame,
        frame_loader=loader,
        frame_rate=_frame_rate(ds) if count > 1 else None,
        pixel_spacing=pixel_spacing(ds),
        notes=tuple(notes),
    )


def _read_header(p: Path, has_preamble: bool) -> tuple[Any, Inflated | None]:
    """The data set with its pixel data deferred, and the inflated bytes of a deflated one.

    A deflated data set is inflated here within the budgets (:func:`.dicom_decode.inflate`);
    pydicom would inflate all of it first, however large.
    """
    pydicom = _pydicom()
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    meta = file_meta(p)
    inflated = None
    try:
        if meta is not None and meta[0].get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            inflated = inflate(p, meta[1])
            ds = pydicom.dcmread(inflated.open(), force=True, defer_size=_DICOM_DEFER_SIZE)
            ds.file_meta = meta[0]
        else:
            ds = pydicom.dcmread(p, force=True, defer_size=_DICOM_DEFER_SIZE)
    except (MemoryError, UnreadableImageError):
        raise
    except Exception as exc:
        if not has_preamble:
            raise UnreadableImageError(p, NOT_SUPPORTED) from exc
        raise _dicom_open_error(p, exc) from exc
    return ds, inflated


def _native_frames_held(ds: Any, keyword: str, ts: Any, frame_bytes: int) -> int | None:
    """How many whole frames uncompressed pixel data holds (None when it cannot be told).

    A header that declares a billion frames over one frame's data would otherwise give a clip
    of a billion frames that all but one fail to decode.
    """
    if getattr(ts, "is_encapsulated", False) or frame_bytes <= 0:
        return None  # compressed, or less than a byte a frame
    try:
        elem = ds.get_item(keyword, keep_deferred=True)
        length = getattr(elem, "length", None)
        if length is None and elem.value is not None:
            length = len(elem.value)
    except Exception:
        return None
    if not isinstance(length, int) or length == 0xFFFFFFFF:
        return None
    return length // frame_bytes


def _frame_rate(ds: Any) -> float | None:
    """Cine frames per second: CineRate, else RecommendedDisplayFrameRate, else 1000/FrameTime."""
    for kw in ("CineRate", "RecommendedDisplayFrameRate"):
        v = number(ds, kw)
        if v is not None and v > 0:
            return v
    ft = number(ds, "FrameTime")
    return 1000.0 / ft if ft is not None and ft > 0 else None


def _safe_len(ds: Any) -> int:
    try:
        return len(ds)
    except Exception:
        return 0


def _safe_keywords(ds: Any) -> set[str]:
    try:
        return {k for k in ds.dir() if k}
    except Exception:
        out = set()
        for k in ("SOPClassUID", "Rows", "Columns", *_PIXEL_KEYWORDS):
            try:
                if k in ds:
                    out.add(k)
            except Exception:
                pass
        return out


def _sop_class_name(ds: Any) -> str:
    try:
        uid = ds.get("SOPClassUID")
        if uid is None:
            meta = getattr(ds, "file_meta", None)
            uid = meta.get("MediaStorageSOPClassUID") if meta is not None else None
        if uid is None:
            return ""
        name = getattr(uid, "name", "") or str(uid)
        return str(name)
    except Exception:
        return ""


def _check_decoder(p: Path, ts: Any) -> None:
    from pydicom.pixels import get_decoder

    name = ts_name(ts)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UnreadableImageError(
            p, f"compressed with {name}, which this program cannot decode"
        ) from None
    if not decoder.is_available:
        raise UnreadableImageError(p, f"compressed with {name}, for which no decoder is installed")


class _DicomContext:
    """What is needed to decode any frame of one DICOM file, without its pixel data."""

    def __init__(
        self, p: Path, ds: Any, ts: Any, integer: bool, rows: int, cols: int, photometric: str,
        *, spp: int = 1, overrides: dict[str, Any] | None = None,
        inflated: Inflated | None = None,
    ) -> None:
        self.p = p
        self.ds = ds
        self.ts = ts
        self.integer = integer
        self.rows = rows
        self.cols = cols
        self.spp = spp
        self.photometric = photometric
        self.overrides = overrides or {}  # image attributes the file lacks, for pydicom
        # A deflated data set, inflated: its frames are decoded from memory.
        self.inflated = inflated
        # Reading frames from the file skips the deferred pixel data of the header dataset and
        # decodes only the frame asked for. It needs the dataset to follow its file meta in the
        # declared transfer syntax.
        self.by_path = inflated is None
        self._full_ds: Any = None

    def _raw(self, index: int) -> np.ndarray:
        from pydicom.pixels import pixel_array
        from pydicom.uid import ExplicitVRLittleEndian

        if self.inflated is not None:
            return pixel_array(self.inflated.open(), index=index,
                               transfer_syntax_uid=ExplicitVRLittleEndian, **self.overrides)
        if self.by_path:
            try:
                with CappedFile(self.p) as f:
                    return pixel_array(f, index=index, transfer_syntax_uid=self.ts,
                                       **self.overrides)
            except (MemoryError, UnreadableImageError):
                raise
            except Exception:
                # e.g. an implicit-VR data set whose meta claims explicit VR: pydicom's full
                # reader copes with it, the streaming one does not.
                self.by_path = False
        if self._full_ds is None:
            self._full_ds = self._read_whole()
        return pixel_array(self._full_ds, index=index, **self.overrides)

    def _read_whole(self) -> Any:
        size = self.p.stat().st_size
        if size > pixels.MAX_DATASET_BYTES:
            raise UnreadableImageError(
                self.p, f"the file ({mb(size)}) would have to be read whole, as its frames "
                f"cannot be read one by one; the limit is {mb(pixels.MAX_DATASET_BYTES)}")
        full = _pydicom().dcmread(self.p, force=True)
        if not full.file_meta.get("TransferSyntaxUID"):
            full.file_meta.TransferSyntaxUID = self.ts
        if "NumberOfFrames" in full and number(full, "NumberOfFrames") is None:
            full.NumberOfFrames = 1  # an unreadable value such as "1A": take one frame
        return full

    def frame(self, index: int) -> np.ndarray:
        data = compressed_frame(self.p, self.ds, self.ts, index, self.rows, self.cols, self.spp)
        try:
            fixed = fixed_sequential_scan(self.ts, data)
            if fixed is not None:
                arr = decode_one_frame(self.ds, self.ts, fixed, self.overrides)
            else:
                arr = self._raw(index)
        except (MemoryError, UnreadableImageError):
            raise
        except RecursionError:
            raise UnreadableImageError(self.p, NESTED_TOO_DEEP) from None
        except Exception as exc:
            raise UnreadableImageError(self.p, decode_failure(exc, self.ts)) from exc
        if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[0] != self.rows):
            arr = arr[0]  # a decoder returned all frames: keep the first
        if arr.ndim not in (2, 3):
            raise UnreadableImageError(
                self.p, f"the decoded pixel data has an unexpected shape {arr.shape}")
        pi = self.photometric
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if pi == "PALETTE COLOR" and arr.ndim == 2:
            return finish(_palette_to_rgb(arr, self.ds))
        if arr.ndim == 2:
            return _monochrome_to_uint8(arr, self.ds, pi, self.integer)
        if arr.shape[2] in (3, 4) and pi in (
            "RGB",
            "YBR_FULL",
            "YBR_FULL_422",
            "YBR_ICT",
            "YBR_RCT",
            "YBR_PARTIAL_422",
            "YBR_PARTIAL_420",
        ):
            # pixel_array(raw=False) has already converted YBR_FULL/_422 to RGB unless the JPEG
            # decoder did it; YBR_ICT/RCT come out of the JPEG 2000 decoders as RGB.
            return finish(arr[..., :3])
        raise UnreadableImageError(
            self.p,
            f"photometric interpretation {pi or 'unknown'} with {arr.shape[-1]} samples per "
            "pixel is not supported",
        )


def _has_rescale(ds: Any) -> bool:
    slope = number(ds, "RescaleSlope", 1.0)
    intercept = number(ds, "RescaleIntercept", 0.0)
    return slope != 1.0 or intercept != 0.0 or "ModalityLUTSequence" in ds


def _monochrome_to_uint8(arr: np.ndarray, ds: Any, pi: str, integer: bool) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut

    values: np.ndarray = arr
    if integer:
        try:
            values = apply_modality_lut(arr, ds)
        except Exception:
            values = arr  # a broken Modality LUT: show the stored values rather than nothing
    out = _apply_voi(values, ds) if integer else None
    if out is None:
        bits = number(ds, "BitsStored", 8) or 8
        signed = (number(ds, "PixelRepresentation", 0) or 0) != 0
        if integer and bits <= 8 and not signed and not _has_rescale(ds):
            out = np.clip(values, 0, 255).astype(np.uint8)  # 8-bit data: show as stored
        else:
            out = range_to_uint8(values)
    if pi == "MONOCHROME1":
        out = 255 - out  # minimum value is white in MONOCHROME1
    return finish(out)


def _apply_voi(values: np.ndarray, ds: Any) -> np.ndarray | None:
    """VOI LUT (preferred) or first window -> uint8; None when there is none or it is broken."""
    from pydicom.pixels import apply_voi, apply_windowing

    try:
        seq = ds.get("VOILUTSequence")
        if seq:
            item = seq[0]
            n, first, _bits = (int(v) for v in item.LUTDescriptor)
            n = n or 65536
            out = apply_voi(values, ds, index=0).astype(np.float64)
            table = apply_voi(np.arange(first, first + n, dtype=np.float64), ds, index=0)
            lo, hi = float(np.min(table)), float(np.max(table))
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            out = apply_windowing(values, ds, index=0)
            with np.errstate(all="ignore"):
                ends = apply_windowing(np.array([-1e300, 1e300]), ds, index=0)
            # pydicom outputs in a range set by BitsStored and rescale; its ends (lo may exceed
            # hi with a negative slope) map the window onto 0..255 the right way round.
            lo, hi = float(ends[0]), float(ends[1])
        else:
            return None
    except Exception:
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi == lo:
        return None
    scaled = (np.asarray(out, np.float64) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _palette_to_rgb(arr: np.ndarray, ds: Any) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(arr, ds)
    if rgb.dtype == np.uint8:
        return rgb
    top = int(rgb.max(initial=0))
    if top <= 255:
        # A 16-bit LUT descriptor with 8-bit entries (older scanners write these).
        return rgb.astype(np.uint8)
    scaled = (rgb.astype(np.uint32) * 255 + 32767) // 65535
    return scaled.astype(np.uint8)
