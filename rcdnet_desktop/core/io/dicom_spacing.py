"""The DICOM Pixel Spacing (0028,0030) of an image, in millimetres per pixel.

Ultrasound images usually carry their scale in SequenceOfUltrasoundRegions instead (read by
:mod:`.dicom` into ``ImageRecord.regions``); this is the scale of other images, and of
ultrasound files that give both. Enhanced multi-frame files keep it in the shared functional
groups, where it is looked up too.
"""

from __future__ import annotations

import math
from typing import Any

# Plausible spacing in mm: zeros or absurd values are a missing calibration, not a scale.
_MIN_MM, _MAX_MM = 1e-4, 50.0


def pixel_spacing(ds: Any) -> tuple[float, float] | None:
    """``(x, y)`` spacing in mm from PixelSpacing (stored as row spacing \\ column spacing).

    None when the file has none, or when it is damaged or implausible.
    """
    for source in (ds, _shared_pixel_measures(ds)):
        if source is None:
            continue
        try:
            value = source.get("PixelSpacing")
            if value is None or len(value) != 2:
                continue
            dy, dx = float(value[0]), float(value[1])
        except Exception:
            continue
        if all(math.isfinite(v) and _MIN_MM <= v <= _MAX_MM for v in (dx, dy)):
            return (dx, dy)
    return None


def _shared_pixel_measures(ds: Any) -> Any:
    try:
        return ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    except Exception:
        return None
