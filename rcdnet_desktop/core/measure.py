"""Physical size of a lesion box, where the image gives a scale."""

from __future__ import annotations

from collections.abc import Sequence

from rcdnet_desktop.core.types import Box, UltrasoundRegion


def box_size_mm(box: Box, regions: Sequence[UltrasoundRegion]) -> tuple[float, float] | None:
    """Width and height of ``box`` in millimetres, from the first calibrated ultrasound region
    that holds the whole box (DICOM SequenceOfUltrasoundRegions); None when none does (no
    scale, or a box across regions of different scales)."""
    for r in regions:
        rb = r.box
        if rb.x <= box.x and rb.y <= box.y and box.x + box.w <= rb.x + rb.w \
                and box.y + box.h <= rb.y + rb.h:
            return (box.w * r.mm_per_pixel_x, box.h * r.mm_per_pixel_y)
    return None


def size_text(size_mm: tuple[float, float] | None) -> str:
    """``"12.3 x 8.1 mm"`` (width x height), or "" without a scale."""
    return "" if size_mm is None else f"{size_mm[0]:.1f} x {size_mm[1]:.1f} mm"
