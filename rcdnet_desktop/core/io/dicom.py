"""The DICOM reader (pydicom) -> :class:`ImageRecord`.

Called by :func:`rcdnet_desktop.core.io.read_image`; see that module for what every reader
returns. Holds the header read (pixel data deferred), the decoder and compressed-frame size
checks made before any pixel is decoded, per-frame decoding (:class:`_DicomContext`), the
Modality LUT / VOI LUT / window, palette and MONOCHROME1 conversions, and the patient, study
and ultrasound-region information. pydicom is imported only when a DICOM file is read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnreadableImageError
from ..types import Box, ImageRecord, PatientInfo, StudyInfo, UltrasoundRegion
from . import pixels
from .dicom_spacing import pixel_spacing
from .pixels import (
    NOT_SUPPORTED,
    check_budget,
    check_frame,
    finish,
    guard_loader,
    range_to_uint8,
    trim,
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


def _text(ds: Any, keyword: str) -> str:
    try:
        v = ds.get(keyword)
        return "" if v is None else str(v).strip()
    except Exception:
        return ""


def _number(ds: Any, keyword: str, default: float | None = None) -> float | None:
    try:
        v = ds.get(keyword)
        if v is None or v == "":
            return default
        if isinstance(v, (list, tuple)) or (hasattr(v, "__len__") and not isinstance(v, str)):
            v = v[0]
        f = float(v)
        return f if math.isfinite(f) else default
    except Exception:
        return default


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


def _decode_failure(exc: Exception, ts: Any) -> str:
    """Why the pixel data of a DICOM file could not be decoded, in words."""
    msg = trim(exc)
    low = msg.lower()
    name = getattr(ts, "name", "") or str(ts)
    if isinstance(exc, EOFError) or "less than expected" in low or "truncat" in low:
        return f"file is truncated: the pixel data is shorter than the header declares ({msg})"
    if "all available plugins" in low or "unable to decode" in low:
        detail = msg.split(":", 1)[1].strip() if ":" in msg else msg
        return f"the {name} pixel data could not be decoded by the installed decoders ({detail})"
    return f"the pixel data could not be decoded ({type(exc).__name__}: {msg})"


def _dicom_open_error(p: Path, exc: Exception) -> UnreadableImageError:
    msg = trim(exc)
    low = msg.lower()
    if isinstance(exc, EOFError) or "end of file" in low or "truncat" in low:
        return UnreadableImageError(p, f"DICOM file is truncated ({msg})")
    return UnreadableImageError(p, f"the DICOM header could not be read ({msg})")


def has_dicm_preamble(head: bytes) -> bool:
    """The file's first bytes hold the 128-byte preamble and the ``DICM`` magic."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A DICOM data set written without preamble starts with a group 0002/0008 tag."""
    return head[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x08")


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
                or _looks_like_raw_dicom(head))

    def read(self, path: Path, frame: int) -> ImageRecord:
        return read_dicom(path, frame, has_preamble=self.preamble)


def read_dicom(p: Path, frame: int, has_preamble: bool) -> ImageRecord:
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(p, force=True, defer_size=_DICOM_DEFER_SIZE)
    except MemoryError:
        raise
    except Exception as exc:
        if not has_preamble:
            raise UnreadableImageError(p, NOT_SUPPORTED) from exc
        raise _dicom_open_error(p, exc) from exc

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

    rows = int(_number(ds, "Rows", 0) or 0)
    cols = int(_number(ds, "Columns", 0) or 0)
    if rows <= 0 or cols <= 0:
        raise UnreadableImageError(p, "DICOM file has no valid image size (Rows/Columns)")
    check_budget(p, cols, rows)

    ts = _transfer_syntax(ds)
    _check_decoder(p, ts)

    count = int(_number(ds, "NumberOfFrames", 1) or 1)
    count = max(1, count)
    check_frame(p, frame, count)

    photometric = _text(ds, "PhotometricInterpretation").upper()
    spp = int(_number(ds, "SamplesPerPixel", 1) or 1)
    if not photometric:
        photometric = "MONOCHROME2" if spp == 1 else "RGB"

    ctx = _DicomContext(p, ds, ts, pixel_kw == "PixelData", rows, cols, photometric)
    pixels = ctx.frame(frame)
    loader = guard_loader(p, count, ctx.frame) if count > 1 else None

    bits = int(_number(ds, "BitsStored", None) or _number(ds, "BitsAllocated", 8) or 8)
    return ImageRecord(
        path=p,
        pixels=pixels,
        frame_count=count,
        source_format="DICOM",
        bits_stored=bits,
        photometric=photometric,
        patient=_patient_info(ds),
        study=_study_info(ds),
        regions=_ultrasound_regions(ds, cols, rows),
        pixels_frame=frame,
        frame_loader=loader,
        frame_rate=_frame_rate(ds) if count > 1 else None,
        pixel_spacing=pixel_spacing(ds),
    )


def _frame_rate(ds: Any) -> float | None:
    """Cine frames per second: CineRate, else RecommendedDisplayFrameRate, else 1000/FrameTime."""
    for kw in ("CineRate", "RecommendedDisplayFrameRate"):
        v = _number(ds, kw)
        if v is not None and v > 0:
            return v
    ft = _number(ds, "FrameTime")
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

    name = getattr(ts, "name", "") or str(ts)
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
        self, p: Path, ds: Any, ts: Any, integer: bool, rows: int, cols: int, photometric: str
    ) -> None:
        self.p = p
        self.ds = ds
        self.ts = ts
        self.integer = integer
        self.rows = rows
        self.cols = cols
        self.photometric = photometric
        # Reading frames by file path skips the deferred pixel data of the header dataset and
        # decodes only the frame asked for. It needs the dataset to follow its file meta in the
        # declared transfer syntax; deflated data sets are read whole instead.
        self.by_path = not getattr(ts, "is_deflated", False)
        self._full_ds: Any = None

    def _raw(self, index: int) -> np.ndarray:
        from pydicom.pixels import pixel_array

        if self.by_path:
            try:
                return pixel_array(self.p, index=index, transfer_syntax_uid=self.ts)
            except MemoryError:
                raise
            except Exception:
                # e.g. an implicit-VR data set whose meta claims explicit VR: pydicom's full
                # reader copes with it, the streaming one does not.
                self.by_path = False
        if self._full_ds is None:
            full = _pydicom().dcmread(self.p, force=True)
            if not full.file_meta.get("TransferSyntaxUID"):
                full.file_meta.TransferSyntaxUID = self.ts
            if "NumberOfFrames" in full and _number(full, "NumberOfFrames") is None:
                full.NumberOfFrames = 1  # an unreadable value such as "1A": take one frame
            self._full_ds = full
        return pixel_array(self._full_ds, index=index)

    def frame(self, index: int) -> np.ndarray:
        _check_compressed_frame(self.p, self.ds, self.ts, index, self.rows, self.cols)
        try:
            arr = self._raw(index)
        except MemoryError:
            raise
        except Exception as exc:
            raise UnreadableImageError(self.p, _decode_failure(exc, self.ts)) from exc
        if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[0] != self.rows):
            arr = arr[0]  # a decoder returned all frames: keep the first
        if arr.ndim not in (2, 3):
            raise UnreadableImageError(self.p, f"unexpected pixel array shape {arr.shape}")
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


def _check_compressed_frame(p: Path, ds: Any, ts: Any, index: int, rows: int, cols: int) -> None:
    """Refuse a JPEG / JPEG 2000 frame whose own header disagrees with Rows/Columns.

    The decoders allocate what the compressed frame claims, not what the DICOM header says:
    a small file whose frame claims 20000 x 20000 would otherwise take gigabytes first.
    """
    if not getattr(ts, "is_encapsulated", False) or str(ts) == "1.2.840.10008.1.2.5":  # RLE
        return
    try:
        data = _encapsulated_frame(p, ds, ts, index)
    except Exception:
        return  # the decoder reports damaged encapsulation in its own words
    size = _codestream_size(data)
    if size is None:
        return
    w, h = size
    limit = pixels.MAX_PIXELS_PER_FRAME  # read at run time: one limit for every reader
    if w * h > limit:
        raise UnreadableImageError(
            p, f"image too large: its compressed frame is {w} x {h} pixels; the limit is "
            f"{limit // 1_000_000} megapixels per frame")
    if (w, h) != (cols, rows):
        raise UnreadableImageError(
            p, f"DICOM file is damaged: its compressed frame is {w} x {h} pixels but the header "
            f"says {cols} x {rows}")


def _encapsulated_frame(p: Path, ds: Any, ts: Any, index: int) -> bytes:
    """The compressed bytes of frame ``index``, read from the file when the header left them.

    The header dataset defers large pixel data; reading only this frame's fragments from the
    file keeps a long cine's compressed data from being loaded (and kept) just to check a frame.
    """
    from pydicom.encaps import get_frame

    count = int(_number(ds, "NumberOfFrames", 1) or 1)
    elem = ds.get_item("PixelData", keep_deferred=True)
    tell = getattr(elem, "value_tell", None)
    if elem.value is None and tell is not None and not getattr(ts, "is_deflated", False):
        with open(p, "rb") as f:
            f.seek(tell)
            return get_frame(f, index, number_of_frames=count)
    return get_frame(ds.PixelData, index, number_of_frames=count)


def _codestream_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG SOF or JPEG 2000 SIZ marker, or None when not found."""
    import struct

    siz = -1
    if data.startswith(b"\xff\x4f\xff\x51"):  # JPEG 2000 codestream: SOC then SIZ
        siz = 0
    elif data[4:8] == b"jP  ":  # JP2 file format: the codestream sits in the jp2c box
        box = data.find(b"jp2c\xff\x4f\xff\x51")
        siz = box + 4 if box >= 0 else -1
    if siz >= 0:
        if len(data) < siz + 24:
            return None
        x, y, x0, y0 = struct.unpack(">IIII", data[siz + 8:siz + 24])
        return (x - x0, y - y0) if x > x0 and y > y0 else None
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        # Start-of-frame markers (baseline, progressive, lossless, JPEG-LS); not DHT/JPG/DAC.
        if (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7:
            if pos + 9 > len(data):
                return None
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            return (w, h)
        pos += 2 + length
    return None


def _has_rescale(ds: Any) -> bool:
    slope = _number(ds, "RescaleSlope", 1.0)
    intercept = _number(ds, "RescaleIntercept", 0.0)
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
        bits = _number(ds, "BitsStored", 8) or 8
        signed = (_number(ds, "PixelRepresentation", 0) or 0) != 0
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


def _patient_info(ds: Any) -> PatientInfo:
    return PatientInfo(
        name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        birth_date=_text(ds, "PatientBirthDate"),
        sex=_text(ds, "PatientSex"),
        accession_number=_text(ds, "AccessionNumber"),
    )


def _study_info(ds: Any) -> StudyInfo:
    return StudyInfo(
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_id=_text(ds, "StudyID"),
        study_description=_text(ds, "StudyDescription"),
        modality=_text(ds, "Modality"),
        manufacturer=_text(ds, "Manufacturer"),
        manufacturer_model=_text(ds, "ManufacturerModelName"),
        body_part=_text(ds, "BodyPartExamined"),
        region_kinds=_region_kinds(ds),
    )


def _region_kinds(ds: Any) -> tuple[tuple[int, int], ...]:
    """(RegionSpatialFormat, RegionDataType) of each ultrasound region; -1 where absent."""
    try:
        seq = ds.get("SequenceOfUltrasoundRegions")
        items = list(seq)[:64] if seq else []
    except Exception:
        return ()
    kinds = []
    for item in items:
        fmt, kind = _number(item, "RegionSpatialFormat", -1), _number(item, "RegionDataType", -1)
        kinds.append((int(fmt if fmt is not None else -1), int(kind if kind is not None else -1)))
    return tuple(kinds)


# PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.15).
_UNITS_CM = 3
# Plausible spacing: anything outside this is a broken calibration, not a real probe.
_MIN_MM_PER_PIXEL = 1e-4
_MAX_MM_PER_PIXEL = 10.0


def _ultrasound_regions(ds: Any, width: int, height: int) -> tuple[UltrasoundRegion, ...]:
    """Calibrated regions (units cm in both directions), clipped to the image; others skipped."""
    try:
        seq = ds.get("SequenceOfUltrasoundRegions")
        items = list(seq) if seq else []
    except Exception:
        return ()
    regions: list[UltrasoundRegion] = []
    for item in items:
        try:
            region = _one_region(item, width, height)
        except Exception:
            region = None
        if region is not None:
            regions.append(region)
    return tuple(regions)


def _one_region(item: Any, width: int, height: int) -> UltrasoundRegion | None:
    ux = _number(item, "PhysicalUnitsXDirection")
    uy = _number(item, "PhysicalUnitsYDirection")
    if ux != _UNITS_CM or uy != _UNITS_CM:
        return None
    dx, dy = _number(item, "PhysicalDeltaX"), _number(item, "PhysicalDeltaY")
    if dx is None or dy is None:
        return None
    mx, my = abs(dx) * 10.0, abs(dy) * 10.0  # cm -> mm; the sign only gives a direction
    if not (
        _MIN_MM_PER_PIXEL <= mx <= _MAX_MM_PER_PIXEL
        and _MIN_MM_PER_PIXEL <= my <= _MAX_MM_PER_PIXEL
    ):
        return None
    coords = [
        _number(item, k)
        for k in (
            "RegionLocationMinX0",
            "RegionLocationMinY0",
            "RegionLocationMaxX1",
            "RegionLocationMaxY1",
        )
    ]
    if any(c is None for c in coords):
        return None
    x0, y0, x1, y1 = (int(c) for c in coords)  # type: ignore[arg-type]
    if x1 < x0 or y1 < y0:
        return None
    # Max coordinates are inclusive. Clip to the image; a region wholly outside is skipped.
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, width - 1), min(y1, height - 1)
    if cx1 < cx0 or cy1 < cy0:
        return None
    return UltrasoundRegion(
        box=Box(cx0, cy0, cx1 - cx0 + 1, cy1 - cy0 + 1), mm_per_pixel_x=mx, mm_per_pixel_y=my
    )
