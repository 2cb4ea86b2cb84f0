"""What a DICOM header says besides its pixels (used by :mod:`.dicom`).

The patient (kept apart so exports can leave it out), the study, the calibrated ultrasound
regions, and the two value readers every part of the DICOM reader uses: :func:`text` and
:func:`number`, which never raise on a damaged value.
"""

from __future__ import annotations

import math
from typing import Any

from ..types import Box, PatientInfo, StudyInfo, UltrasoundRegion


def text(ds: Any, keyword: str) -> str:
    try:
        v = ds.get(keyword)
        return "" if v is None else str(v).strip()
    except Exception:
        return ""


def number(ds: Any, keyword: str, default: float | None = None) -> float | None:
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


def patient_info(ds: Any) -> PatientInfo:
    return PatientInfo(
        name=text(ds, "PatientName"),
        patient_id=text(ds, "PatientID"),
        birth_date=text(ds, "PatientBirthDate"),
        sex=text(ds, "PatientSex"),
        accession_number=text(ds, "AccessionNumber"),
    )


def study_info(ds: Any) -> StudyInfo:
    return StudyInfo(
        study_instance_uid=text(ds, "StudyInstanceUID"),
        series_instance_uid=text(ds, "SeriesInstanceUID"),
        sop_instance_uid=text(ds, "SOPInstanceUID"),
        sop_class_uid=text(ds, "SOPClassUID"),
        study_date=text(ds, "StudyDate"),
        study_time=text(ds, "StudyTime"),
        study_id=text(ds, "StudyID"),
        study_description=text(ds, "StudyDescription"),
        modality=text(ds, "Modality"),
        manufacturer=text(ds, "Manufacturer"),
        manufacturer_model=text(ds, "ManufacturerModelName"),
        body_part=text(ds, "BodyPartExamined"),
        series_description=text(ds, "SeriesDescription"),
        exam_type=exam_type(ds),
        region_kinds=region_kinds(ds),
    )


def exam_type(ds: Any) -> str:
    """An ultrasound image's examination: value 3 of its Image Type (PS3.3 C.8.5.6.1.1), upper
    case, words one space apart (``FETAL_HEART`` read as ``FETAL HEART``); "" for another
    modality, or when the file gives none."""
    if text(ds, "Modality").upper() != "US":
        return ""
    try:
        values = ds.get("ImageType")
        values = [values] if isinstance(values, str) else list(values or [])[:3]
        term = str(values[2]) if len(values) > 2 else ""
    except Exception:
        return ""
    return " ".join(term.replace("_", " ").upper().split())


# PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.15).
_UNITS_CM = 3
# Plausible spacing: anything outside this is a broken calibration, not a real probe.
_MIN_MM_PER_PIXEL = 1e-4
_MAX_MM_PER_PIXEL = 10.0


def region_kinds(ds: Any) -> tuple[tuple[int, int], ...]:
    """(RegionSpatialFormat, RegionDataType) of each ultrasound region; -1 where absent."""
    try:
        seq = ds.get("SequenceOfUltrasoundRegions")
        items = list(seq)[:64] if seq else []
    except Exception:
        return ()
    kinds = []
    for item in items:
        fmt, kind = number(item, "RegionSpatialFormat", -1), number(item, "RegionDataType", -1)
        kinds.append((int(fmt if fmt is not None else -1), int(kind if kind is not None else -1)))
    return tuple(kinds)


IMAGE_DATA_FORMATS = (1, 2, 3, 4)
"""RegionSpatialFormat of regions that hold image data: 2D, M-mode, spectral, waveform (not
0, none, nor 5, graphics, which may hold text)."""


def image_areas(ds: Any, width: int, height: int) -> tuple[Box, ...]:
    """The bounds of the ultrasound regions that hold image data, clipped to the image (any
    units: calibration does not matter here); regions without bounds or outside the image are
    skipped."""
    try:
        seq = ds.get("SequenceOfUltrasoundRegions")
        items = list(seq)[:64] if seq else []
    except Exception:
        return ()
    boxes = []
    for item in items:
        try:
            if number(item, "RegionSpatialFormat", -1) not in IMAGE_DATA_FORMATS:
                continue
            box = region_box(item, width, height)
        except Exception:
            continue
        if box is not None:
            boxes.append(box)
    return tuple(boxes)


def ultrasound_regions(ds: Any, width: int, height: int) -> tuple[UltrasoundRegion, ...]:
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
    ux = number(item, "PhysicalUnitsXDirection")
    uy = number(item, "PhysicalUnitsYDirection")
    if ux != _UNITS_CM or uy != _UNITS_CM:
        return None
    dx, dy = number(item, "PhysicalDeltaX"), number(item, "PhysicalDeltaY")
    if dx is None or dy is None:
        return None
    mx, my = abs(dx) * 10.0, abs(dy) * 10.0  # cm -> mm; the sign only gives a direction
    if not (
        _MIN_MM_PER_PIXEL <= mx <= _MAX_MM_PER_PIXEL
        and _MIN_MM_PER_PIXEL <= my <= _MAX_MM_PER_PIXEL
    ):
        return None
    box = region_box(item, width, height)
    if box is None:
        return None
    return UltrasoundRegion(box=box, mm_per_pixel_x=mx, mm_per_pixel_y=my)


def region_box(item: Any, width: int, height: int) -> Box | None:
    """The bounds of one ultrasound region in image pixels, clipped to the image; None when
    it has none, they are reversed, or it lies wholly outside."""
    coords = [number(item, k) for k in ("RegionLocationMinX0", "RegionLocationMinY0",
                                        "RegionLocationMaxX1", "RegionLocationMaxY1")]
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
    return Box(cx0, cy0, cx1 - cx0 + 1, cy1 - cy0 + 1)
