"""Lengths on an image: caliper measurements and lesion-box sizes in millimetres, or in pixels
when the file gives no scale.

The one rule from pixels to millimetres (:meth:`Calibration.scale_for`): the calibrated
ultrasound region (DICOM SequenceOfUltrasoundRegions, physical deltas in cm) that holds every
point measured, else the DICOM Pixel Spacing, else none: the length stays in pixels and says
why (:attr:`Length.reason`): a line that leaves the calibrated regions (or spans two of them)
is "outside the calibrated region", since no region's scale holds for it; an image whose file
gives no scale at all says so. The caliper, the lesion box's size and the exports all go
through it. No Qt here; the report draws measurements with :func:`draw_measurements`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rcdnet_desktop.core.types import Box, ImageRecord, UltrasoundRegion

REGION_SOURCE = "ultrasound region calibration"
SPACING_SOURCE = "DICOM pixel spacing"
OUTSIDE_REGION = "outside the calibrated region"
NO_SCALE = "the file gives no scale"

COLOUR = (80, 255, 120)  # caliper lines: bright green, apart from the yellow lesion box
EDGE = (0, 0, 0)

Point = tuple[float, float]


@dataclass(frozen=True)
class Scale:
    """Millimetres per pixel across (x) and down (y), and where the file says so."""

    mm_x: float
    mm_y: float
    source: str


@dataclass(frozen=True)
class Measurement:
    """A caliper line between two points in image coordinates (pixels; 0 is the image's
    left or top edge)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def points(self) -> tuple[Point, Point]:
        return (self.x0, self.y0), (self.x1, self.y1)

    def pixels(self) -> float:
        """Length in image pixels."""
        return math.hypot(self.x1 - self.x0, self.y1 - self.y0)


@dataclass(frozen=True)
class Length:
    """A length with its unit ("mm" or "px"), where its scale came from ("" for px) and, in
    px, why there is no scale (:data:`OUTSIDE_REGION` or :data:`NO_SCALE`)."""

    value: float
    unit: str
    source: str = ""
    reason: str = ""

    @property
    def text(self) -> str:
        """``"12.3 mm"``, ``"84 px"``, or ``"84 px, outside the calibrated region"`` when the
        file has a scale that does not hold for this line."""
        if self.unit == "mm":
            return f"{self.value:.1f} mm"
        text = f"{self.value:.0f} px"
        return f"{text}, {self.reason}" if self.reason == OUTSIDE_REGION else text


@dataclass(frozen=True)
class Measured:
    """A measurement with its length and its number on the image (1, 2, ...)."""

    measurement: Measurement
    length: Length
    number: int

    @property
    def label(self) -> str:
        """``"1: 12.3 mm"``: what the screen and the report write beside the line."""
        return f"{self.number}: {self.length.text}"


def _holds(region: UltrasoundRegion, points: Iterable[Point]) -> bool:
    b = region.box
    return all(b.x <= x <= b.x + b.w and b.y <= y <= b.y + b.h for x, y in points)


@dataclass(frozen=True)
class Calibration:
    """What an image's file says about its scale: calibrated regions and Pixel Spacing."""

    regions: tuple[UltrasoundRegion, ...] = ()
    pixel_spacing: tuple[float, float] | None = None

    @classmethod
    def of(cls, record: ImageRecord) -> Calibration:
        return cls(tuple(record.regions), getattr(record, "pixel_spacing", None))

    @property
    def known(self) -> bool:
        """Whether lengths can be given in millimetres anywhere on the image."""
        return bool(self.regions) or self.pixel_spacing is not None

    def scale_for(self, points: Sequence[Point]) -> Scale | None:
        """The scale for a measurement between ``points`` (the rule in the module's words)."""
        region = next((r for r in self.regions if _holds(r, points)), None)
        if region is not None:
            return Scale(region.mm_per_pixel_x, region.mm_per_pixel_y, REGION_SOURCE)
        if self.pixel_spacing is not None:
            return Scale(self.pixel_spacing[0], self.pixel_spacing[1], SPACING_SOURCE)
        return None

    def no_scale_reason(self) -> str:
        """Why a length without a scale has none: outside the calibrated regions, or none."""
        return OUTSIDE_REGION if self.regions else NO_SCALE

    def length(self, m: Measurement) -> Length:
        """The caliper's length: in mm when a scale holds for it, else in pixels with why."""
        scale = self.scale_for(m.points())
        if scale is None:
            return Length(m.pixels(), "px", reason=self.no_scale_reason())
        mm = math.hypot((m.x1 - m.x0) * scale.mm_x, (m.y1 - m.y0) * scale.mm_y)
        return Length(mm, "mm", scale.source)

    def box_size(self, box: Box) -> tuple[float, float] | None:
        """A box's width and height in mm, or None when no scale holds for it."""
        corners = [(box.x, box.y), (box.x + box.w, box.y + box.h)]
        scale = self.scale_for(corners)
        if scale is None:
            return None
        return box.w * scale.mm_x, box.h * scale.mm_y

    def box_size_text(self, box: Box) -> str:
        """``"12.3 x 6.3 mm"``, or "" when no scale is known."""
        size = self.box_size(box)
        return "" if size is None else f"{size[0]:.1f} x {size[1]:.1f} mm"


def measure_all(calibration: Calibration,
                measurements: Sequence[Measurement]) -> tuple[Measured, ...]:
    """Number the measurements from 1 and give each its length."""
    return tuple(Measured(m, calibration.length(m), i + 1) for i, m in enumerate(measurements))


def measurement_lines(measured: Sequence[Measured]) -> list[str]:
    """The report's words for the measurements: one line, or none when there are none.

    E.g. ``"Measurements: 1: 12.3 mm, 2: 6.1 mm (scale: ultrasound region calibration)"``.
    """
    if not measured:
        return []
    sources = sorted({m.length.source for m in measured if m.length.unit == "mm"})
    text = "Measurements: " + ", ".join(m.label for m in measured)
    notes = [f"scale: {' and '.join(sources)}"] if sources else []
    reasons = sorted({m.length.reason for m in measured if m.length.unit == "px"})
    if reasons:
        notes.append(f"px: image pixels, {' or '.join(reasons)}")
    return [text + (f" ({'; '.join(notes)})" if notes else "")]


def draw_measurements(rgb: np.ndarray, measured: Sequence[Measured], thickness: int,
                      font) -> None:
    """Draw each caliper line with end ticks and its label onto ``rgb`` (uint8 RGB), in place.

    ``font`` is a Pillow font for the labels.
    """
    if not measured:
        return
    from PIL import Image, ImageDraw

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    h, w = rgb.shape[:2]
    tick = 3 * thickness
    for item in measured:
        m = item.measurement
        dx, dy = m.x1 - m.x0, m.y1 - m.y0
        n = math.hypot(dx, dy) or 1.0
        px, py = -dy / n * tick, dx / n * tick  # perpendicular, for the end ticks
        segments = [((m.x0, m.y0), (m.x1, m.y1)),
                    ((m.x0 - px, m.y0 - py), (m.x0 + px, m.y0 + py)),
                    ((m.x1 - px, m.y1 - py), (m.x1 + px, m.y1 + py))]
        for colour, width in ((EDGE, thickness + 2), (COLOUR, thickness)):
            for a, b in segments:
                draw.line([a, b], fill=colour, width=width)
        left, top, right, bottom = draw.textbbox((0, 0), item.label, font=font)
        tw, th = right - left, bottom - top
        x = min(max(m.x1 + tick, 0), max(w - tw - 2, 0))
        y = min(max(m.y1 + tick, 0), max(h - th - 2, 0))
        draw.rectangle([x - 2, y - 2, x + tw + 2, y + th + 2], fill=EDGE)
        draw.text((x - left, y - top), item.label, fill=COLOUR, font=font)
    rgb[...] = np.asarray(image, dtype=np.uint8)


__all__ = [
    "COLOUR",
    "NO_SCALE",
    "OUTSIDE_REGION",
    "REGION_SOURCE",
    "SPACING_SOURCE",
    "Calibration",
    "Length",
    "Measured",
    "Measurement",
    "Scale",
    "draw_measurements",
    "measure_all",
    "measurement_lines",
]
