"""The annotated report: three panels, their titles and the report text, as one RGB image.

No Qt here. :func:`render_report` draws, at the image's OWN resolution (nothing is rescaled),
three panels side by side -- the plain image, "Evidence for benign" and "Evidence for
malignant" -- with a title band above them, a colour bar under the evidence panels (both maps
share one scale, topped by the evidence for the result: :mod:`rcdnet_desktop.core.evidence_scale`)
and a text band below: the prediction in words, the
calibrated probability of malignancy and its likelihood band (with what the suspicious cut-off
means at the measured sensitivity, when an :class:`OperatingPoint` is given), the input mode
with where the lesion box came from (drawn by the user or found automatically), the heat-map
method by its display name, a plain-language line
per map, the model version, the device, date and time, the source file name and the patient's
name and ID only when the :class:`ReportOptions` hold a :class:`PatientInfo`, any intended-use
warnings, and the permanent note "Decision support only - not a diagnosis.". The lesion box,
when the prediction has one, is the box as given (drawn by the user or found automatically, the
one the viewer shows): it is drawn on all three panels as a yellow ring just OUTSIDE the box, so the
pixels of the lesion stay untouched, and the evidence sentences are measured against it
(:func:`~rcdnet_desktop.core.overlay.evidence_sentences`, as on screen). The padded region the
model saw, where it is larger, is drawn as a thin grey outline (the heat maps are zero outside it).
:class:`ReportLayout` records where every panel lies, so a caller (or a test) can crop them.

The :class:`Report` it returns is what :mod:`rcdnet_desktop.core.export` writes as PNG, PDF or
DICOM Secondary Capture. Its ``summary`` holds only non-identifying key/values (for PNG text
chunks and PDF metadata); patient identifiers are in ``image`` and ``lines`` only when the
options' ``patient`` was given (``patient_included`` says so). Everything a report shows
besides the result comes in one :class:`ReportOptions`, passed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.evidence_scale import SCALE_CAPTION, SCALE_ENDS, shared_scale
from rcdnet_desktop.core.export.deidentify import BURNED_IN_NOTE, blank_outside
from rcdnet_desktop.core.lexicon import SECTION_TITLE, lexicon_words
from rcdnet_desktop.core.measure import (
    Calibration,
    Measured,
    draw_measurements,
    measurement_lines,
)
from rcdnet_desktop.core.model.explain import METHOD_LABELS
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.overlay import (
    DEFAULT_ALPHA,
    DEFAULT_COLORMAP,
    as_rgb,
    blend,
    colorize,
    evidence_sentences,
)
from rcdnet_desktop.core.result import LESION_REGION_WORDS, describe, frame_number, probability_text
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, PatientInfo, Prediction

DECISION_SUPPORT_NOTE = "Decision support only - not a diagnosis."
PANEL_TITLES = ("Image", "Evidence for benign", "Evidence for malignant")
SOFTWARE_NAME = "RcdNet Desktop"

# Colours of the report (RGB). White background and dark text print well.
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_ALERT = (190, 0, 0)
_WARNING = (170, 90, 0)
_BOX = (255, 220, 0)  # lesion box: yellow reads on grey ultrasound and on every colour map
_BOX_EDGE = (0, 0, 0)
_REGION = (190, 190, 190)  # the padded region the model saw: a thin, lighter outline


# --- report layout and text ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportLayout:
    """Geometry of a rendered report, in report-image pixels.

    Attributes
    ----------
    width, height : int
        Size of the whole report image.
    panels : tuple of Box
        The plain image, the benign overlay and the malignant overlay, each exactly the size of
        the source image.
    title_band : Box
        The band above the panels holding their titles.
    text_band : Box
        The band below the panels holding the report text.
    font_px : int
        Size of the body text, scaled with the image so small and large reports stay legible.
    scale_band : Box or None
        The band between the panels and the text holding the colour bar and its caption (part
        of the figure, so the PDF shows it too).
    """

    width: int
    height: int
    panels: tuple[Box, Box, Box]
    title_band: Box
    text_band: Box
    font_px: int
    scale_band: Box | None = None

    def crop(self, image: np.ndarray, index: int) -> np.ndarray:
        """Return panel ``index`` (0 plain, 1 benign, 2 malignant) of a report image."""
        b = self.panels[index]
        return image[b.y : b.y + b.h, b.x : b.x + b.w]


@dataclass(frozen=True)
class ReportLine:
    """One line of report text; ``kind`` is "text", "headline" (the result, when not suspicious),
    "alert" (a suspicious result, an UNTRAINED model), "warning" or "note"."""

    text: str
    kind: str = "text"


@dataclass(frozen=True)
class Report:
    """A rendered report: the image, its geometry and its text (for PDF and metadata).

    ``prediction`` is the result the report shows (what a structured report codes), with the
    caliper ``measurements`` drawn on it; ``patient_included`` says whether patient identifiers
    are in ``image`` and ``lines``; ``operating_point`` is the one the result was read at (the
    card's, or a site profile's), which the structured report says too; ``pixels_blanked``
    whether the source's pixels outside its ultrasound regions were blanked (a de-identified
    report of a frame that says where its regions are).
    """

    image: np.ndarray
    layout: ReportLayout
    lines: tuple[ReportLine, ...]
    when: datetime
    prediction: Prediction
    source_name: str = ""
    patient_included: bool = False
    summary: dict[str, str] = field(default_factory=dict)
    measurements: tuple[Measured, ...] = ()
    operating_point: OperatingPoint | None = None
    pixels_blanked: bool = False

    @property
    def identity_removed(self) -> bool:
        """No patient identifier in the text, and the pixels blanked outside the ultrasound
        regions: nothing left that a scanner burned in (see :mod:`.deidentify`)."""
        return not self.patient_included and self.pixels_blanked

    @property
    def frame(self) -> int:
        """The frame the report shows (0 for a single-frame image)."""
        return self.prediction.frame

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


SOURCE_WITHHELD = "file name left out (de-identified)"
"""What a de-identified report writes for the source file's name."""


@dataclass(frozen=True)
class ReportOptions:
    """What a report shows besides the result: one object, passed once to :func:`render_report`.

    Attributes
    ----------
    when : datetime
        Date and time printed on the report (an aware datetime prints the UTC offset).
    patient : PatientInfo, optional
        Printed only when given and not empty; leave it out (the default) to keep identifiers
        off the report.
    colormap, alpha : str, float
        Colour map and opacity of the overlays, as shown on screen.
    source_name : str
        The source file's name (not its full path, which may carry identifiers); a
        de-identified report (``deidentify``) writes :data:`SOURCE_WITHHELD` in its place.
    operating_point : OperatingPoint, optional
        The model's cut-off and measured sensitivity: a line says what the cut-off means.
    measurements : tuple of Measured
        Caliper lines on the frame, drawn on every panel with their lengths and listed in the
        text (:mod:`rcdnet_desktop.core.measure`).
    calibration : Calibration, optional
        The image's scale: the lesion box's width and height are given in mm too.
    deidentify : bool
        The report is for someone who may not see the patient's identity: the image is shown
        only inside ``image_areas`` (blanked around them), or, without areas, the report says
        that text burned into the image may remain (:mod:`.deidentify`).
    image_areas : tuple of Box
        Where the source frame's image data lies (its ultrasound regions).
    """

    when: datetime
    patient: PatientInfo | None = None
    colormap: str = DEFAULT_COLORMAP
    alpha: float = DEFAULT_ALPHA
    source_name: str = ""
    operating_point: OperatingPoint | None = None
    measurements: tuple[Measured, ...] = ()
    calibration: Calibration | None = None
    deidentify: bool = False
    image_areas: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "measurements", tuple(self.measurements))
        object.__setattr__(self, "image_areas", tuple(self.image_areas))
        if self.deidentify and self.patient is not None and not self.patient.is_empty():
            raise ValueError("a de-identified report cannot show the patient")

    @property
    def source_text(self) -> str:
        """The source file's name as the report writes it (text and file metadata alike):
        :data:`SOURCE_WITHHELD` when de-identified, since a name may carry the patient's
        (``DOE_JANE.png``)."""
        return SOURCE_WITHHELD if self.deidentify and self.source_name else self.source_name

    @classmethod
    def of_record(
        cls,
        record: ImageRecord,
        *,
        include_patient: bool = False,
        when: datetime | None = None,
        colormap: str = DEFAULT_COLORMAP,
        alpha: float = DEFAULT_ALPHA,
        operating_point: OperatingPoint | None = None,
        measurements: Sequence[Measured] = (),
    ) -> ReportOptions:
        """The options of an opened image's report, the usual way for the viewer and the CLI.

        The file's name (never its folder, which may name the patient), its calibration, and
        the patient's identifiers only when ``include_patient`` is True; without them the
        report is de-identified (``deidentify``, with the image's ultrasound regions; the
        file's name is left out too).
        ``when`` defaults to now, in local time with its UTC offset.
        """
        return cls(
            when=when or datetime.now().astimezone(),
            patient=record.patient if include_patient else None,
            colormap=colormap,
            alpha=alpha,
            source_name=Path(record.path).name,
            operating_point=operating_point,
            measurements=tuple(measurements),
            calibration=Calibration.of(record),
            deidentify=not include_patient,
            image_areas=record.image_areas,
        )


def format_person_name(name: str) -> str:
    """Turn a DICOM person name ("Family^Given^Middle^Prefix^Suffix") into readable text."""
    parts = [p.strip() for p in str(name).split("=")[0].split("^")]
    family = parts[0] if parts else ""
    given = " ".join(p for p in parts[1:3] if p)
    if family and given:
        return f"{family}, {given}"
    return family or given


def _format_when(when: datetime) -> str:
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    if when.utcoffset() is not None:
        text += " " + when.strftime("%z")
    return text


def _patient_text(patient: PatientInfo) -> str:
    bits = []
    if patient.name:
        bits.append(f"Patient: {format_person_name(patient.name)}")
    if patient.patient_id:
        bits.append(f"ID: {patient.patient_id}")
    if patient.birth_date:
        bits.append(f"Born: {patient.birth_date}")
    if patient.accession_number:
        bits.append(f"Accession: {patient.accession_number}")
    return "   ".join(bits)


BOX_SOURCE_TEXT = {"user": "drawn by the user", "auto": "found automatically", "none": ""}
"""How a report says where a prediction's lesion box came from, by ``Prediction.box_source``."""


def seen_region(p: Prediction) -> Box | None:
    """The padded region the model saw, when it differs from the lesion box (else None)."""
    return p.roi if p.roi is not None and p.roi != p.box else None


def _box_words(box: Box) -> str:
    return f"x {box.x}, y {box.y}, {box.w} x {box.h} px"


def describe_input(p: Prediction, calibration: Calibration | None = None) -> str:
    """The input of a prediction in words, with where its lesion box came from.

    E.g. ``"whole image"``, ``"lesion box (x 80, y 60, 90 x 70 px), drawn by the user; the
    model saw it with a margin (x 62, y 46, 126 x 98 px)"``, ``"lesion box (...), found
    automatically (localiser confidence 0.93); ..."`` or, for fusion, ``"whole image and lesion
    box (...), found automatically (...); ...; the two results averaged"``. The box is the one
    as given, the one the viewer shows and the report draws; the padded region the model saw
    follows when it is larger. Every export states the input with this wording. With the
    image's ``calibration``, the box's width and height in mm follow its size in pixels:
    ``"lesion box (x 80, y 60, 90 x 70 px; 23.6 x 18.4 mm)"``.
    """
    box = p.box
    if box is None:
        return "whole image"
    mm = calibration.box_size_text(box) if calibration is not None else ""
    text = f"lesion box ({_box_words(box)}{f'; {mm}' if mm else ''})"
    source = BOX_SOURCE_TEXT.get(p.box_source, "")
    if source:
        text += f", {source}"
    if p.box_source == "auto" and p.finding is not None:
        text += f" (localiser confidence {p.finding.confidence:.2f})"
    if p.lesion_region is not None:
        text += f"; {LESION_REGION_WORDS} ({_box_words(p.lesion_region)})"
    region = seen_region(p)
    if region is not None:
        text += f"; the model saw it with a margin ({_box_words(region)})"
    if p.fused:
        text = f"whole image and {text}; the two results averaged"
    return text


def describe_band(p: Prediction) -> str:
    """The prediction's likelihood band with its range, e.g. ``"low (2-10%), the BI-RADS 4A
    range - not a BI-RADS assessment"``.

    Bands are aligned with BI-RADS likelihood-of-malignancy ranges; a band is not a BI-RADS
    assessment, and the text says so whenever it names a category.
    """
    band = p.band
    if band is None:  # pragma: no cover - Prediction always fills it
        return ""
    text = band.label
    if band.birads_range:
        text += f", the BI-RADS {band.birads_range} range - not a BI-RADS assessment"
    return text


def method_label(method: str) -> str:
    """A heat-map method's display name ("Grad-CAM, contrastive (closed form)"), not its
    internal key."""
    return METHOD_LABELS.get(method, method)


def report_lines(heatmaps: HeatMaps, options: ReportOptions) -> tuple[ReportLine, ...]:
    """Return the report's text lines (the same text goes into the PNG band and the PDF).

    Patient identifiers are included only when ``options.patient`` is given and not empty.
    With the model's ``options.operating_point``, a line says what the suspicious cut-off means
    at the sensitivity measured there. The caliper ``options.measurements`` are listed with
    their lengths after the input, and the lesion box's size is given in mm when
    ``options.calibration`` knows the image's scale.
    """
    o = options
    p = heatmaps.prediction
    words = describe(p, o.operating_point)
    benign_words, malignant_words = evidence_sentences(heatmaps)
    lines: list[ReportLine] = []
    if p.untrained:
        lines.append(ReportLine("The model's weights are UNTRAINED: this result carries no "
                                "information.", "alert"))
    # As on screen: the warnings first, then the headline (band and decision), the probability,
    # what the cut-off means and what limits the result.
    for warning in p.warnings:
        lines.append(ReportLine(f"Warning: {warning}", "warning"))
    lines.append(ReportLine(f"Result: {words.headline}".replace("\n", ". "),
                            "alert" if words.tone == "alert" else "headline"))
    lines.append(ReportLine(f"Likelihood band: {describe_band(p)}"))
    lines.append(ReportLine(f"Probability of malignancy (calibrated): {words.probability}"))
    lines.append(ReportLine(words.cutoff_sentence))
    if words.site:
        lines.append(ReportLine(words.site))
    lines.extend(ReportLine(c, "warning") for c in words.caveats)
    lines.append(ReportLine(f"Input: {describe_input(p, o.calibration)}"))
    lines.extend(ReportLine(text) for text in measurement_lines(o.measurements))
    lexicon = lexicon_words(p)
    if lexicon:
        lines.append(ReportLine(f"{SECTION_TITLE}: {lexicon}"))
    lines.append(
        ReportLine(f"Heat maps: {method_label(heatmaps.method)}; {SCALE_CAPTION.lower()}; "
                   f"colour map {o.colormap}, opacity {o.alpha:.2f}")
    )
    lines.append(ReportLine(f"Evidence for benign: {benign_words}"))
    lines.append(ReportLine(f"Evidence for malignant: {malignant_words}"))
    lines.append(ReportLine(f"Model: {p.model_version}   Device: {p.device}"))
    lines.append(ReportLine(f"Date and time: {_format_when(o.when)}"))
    if o.source_name or p.frame:
        source = o.source_text or "(unnamed)"
        if p.frame:
            source += f", frame {frame_number(p.frame)}"
        lines.append(ReportLine(f"Source: {source}"))
    if o.patient is not None and not o.patient.is_empty():
        lines.append(ReportLine(_patient_text(o.patient)))
    if o.deidentify and not o.image_areas:
        lines.append(ReportLine(BURNED_IN_NOTE, "warning"))
    lines.append(ReportLine(DECISION_SUPPORT_NOTE, "note"))
    return tuple(lines)


def _summary(heatmaps: HeatMaps, when: datetime, source_name: str,
             calibration: Calibration | None = None) -> dict[str, str]:
    """Non-identifying key/values for PNG text chunks and PDF metadata."""
    p = heatmaps.prediction
    return {
        "Software": SOFTWARE_NAME,
        "Decision": describe(p).decision,
        "Probability of malignancy": probability_text(p, least=4),
        "Input mode": describe_input(p, calibration),
        "Lesion box": BOX_SOURCE_TEXT.get(p.box_source, "") or "none",
        "Likelihood band": describe_band(p),
        "Heat map method": method_label(heatmaps.method),
        "Heat map scale": SCALE_CAPTION,
        "Model version": p.model_version,
        "Device": p.device,
        "Creation Time": _format_when(when),
        "Source": source_name,
        "Disclaimer": DECISION_SUPPORT_NOTE,
    }


# --- rendering -----------------------------------------------------------------------------------


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType: fixed bitmap font
        return ImageFont.load_default()


def _text_width(draw, text: str, font) -> float:
    return float(draw.textlength(text, font=font))


def _wrap(draw, text: str, font, max_width: float) -> list[str]:
    """Greedy word wrap; a single word longer than the width is cut by characters."""
    words = text.split(" ")
    out: list[str] = []
    current = ""
    for word in words:
        candidate = word if not current else f"{current} {word}"
        if _text_width(draw, candidate, font) <= max_width:
            current = candidate
            continue
        if current:
            out.append(current)
        current = word
        while _text_width(draw, current, font) > max_width and len(current) > 1:
            cut = len(current)
            while cut > 1 and _text_width(draw, current[:cut], font) > max_width:
                cut -= 1
            out.append(current[:cut])
            current = current[cut:]
    if current or not out:
        out.append(current)
    return out


def _full_size(heatmap: np.ndarray, shape: tuple[int, int], roi: Box | None, name: str):
    """Return a map at the image's size; a box-sized map is placed at the box (zeros around)."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape == shape:
        return heatmap
    if roi is not None and heatmap.shape == (roi.h, roi.w):
        full = np.zeros(shape, np.float32)
        y0, x0 = max(roi.y, 0), max(roi.x, 0)
        y1, x1 = min(roi.y + roi.h, shape[0]), min(roi.x + roi.w, shape[1])
        full[y0:y1, x0:x1] = heatmap[y0 - roi.y : y1 - roi.y, x0 - roi.x : x1 - roi.x]
        return full
    raise ValueError(
        f"the {name} heat map is {heatmap.shape[1]}x{heatmap.shape[0]} but the image is "
        f"{shape[1]}x{shape[0]}"
    )


def _ring(rgb: np.ndarray, box: Box, outer: int, inner: int, colour) -> None:
    """Paint the band between ``outer`` and ``inner`` pixels outside ``box`` (clipped), in place."""
    h, w = rgb.shape[:2]
    ox0, oy0 = max(box.x - outer, 0), max(box.y - outer, 0)
    ox1, oy1 = min(box.x + box.w + outer, w), min(box.y + box.h + outer, h)
    ix0, iy0 = max(box.x - inner, 0), max(box.y - inner, 0)
    ix1, iy1 = min(box.x + box.w + inner, w), min(box.y + box.h + inner, h)
    if ox0 >= ox1 or oy0 >= oy1:
        return
    region = np.zeros((h, w), bool)
    region[oy0:oy1, ox0:ox1] = True
    if ix0 < ix1 and iy0 < iy1:
        region[iy0:iy1, ix0:ix1] = False
    rgb[region] = colour


def _draw_box(rgb: np.ndarray, box: Box, thickness: int) -> None:
    """Draw the lesion box as a yellow ring with a dark edge just outside ``box``, in place."""
    edge = max(1, thickness // 3)
    _ring(rgb, box, thickness + edge, 0, _BOX_EDGE)
    _ring(rgb, box, thickness, 0, _BOX)


def _draw_region(rgb: np.ndarray, region: Box, thickness: int) -> None:
    """Draw the padded region the model saw as a thin grey line just outside it, in place."""
    _ring(rgb, region, max(1, thickness // 2), 0, _REGION)


@dataclass(frozen=True)
class _ScaleGeometry:
    """Where the colour bar row lies: the span of its words and bar, and the bar itself."""

    x0: int
    x1: int
    bar_x0: int
    bar_x1: int
    pad: int


def _scale_geometry(draw, font, panels, width: int, margin: int, top: int) -> _ScaleGeometry:
    """Under the two evidence panels when the bar fits there, else across the whole width."""
    pad = max(3, round(_text_width(draw, " ", font)))
    left = int(np.ceil(_text_width(draw, SCALE_ENDS[0], font))) + pad
    right = int(np.ceil(_text_width(draw, SCALE_ENDS[1], font))) + pad
    x0, x1 = panels[1].x, panels[2].x + panels[2].w
    if x1 - x0 - left - right < 60:
        x0, x1 = margin, width - margin
    bar_x0, bar_x1 = x0 + left, max(x0 + left + 8, x1 - right)
    return _ScaleGeometry(x0, x1, bar_x0, min(bar_x1, width), pad)


def render_report(pixels: np.ndarray, heatmaps: HeatMaps, options: ReportOptions) -> Report:
    """Render the annotated report at the image's own resolution.

    Parameters
    ----------
    pixels : numpy.ndarray
        The image the prediction was made on (the frame shown), uint8 (H, W) or (H, W, 3).
    heatmaps : HeatMaps
        Both evidence maps, at the image's size, with their prediction.
    options : ReportOptions
        What the report shows besides the result (date, patient, overlay, source, cut-off,
        measurements, scale); :meth:`ReportOptions.of_record` makes them for an opened image.

    Returns
    -------
    Report
        With ``image`` (uint8 RGB), ``layout`` (panel boxes) and ``lines`` (the text).

    Raises
    ------
    ValueError
        If the heat maps do not match the image size, or the pixels are not uint8 grey/RGB.
    """
    from PIL import Image, ImageDraw

    o = options

    rgb = as_rgb(pixels)
    blanked = o.deidentify and bool(o.image_areas)
    if blanked:  # the scanner's header band and side panels, where names are burned in
        rgb = blank_outside(rgb, o.image_areas)
    h, w = rgb.shape[:2]
    p = heatmaps.prediction
    benign = _full_size(heatmaps.benign, (h, w), p.roi, "benign")
    malignant = _full_size(heatmaps.malignant, (h, w), p.roi, "malignant")
    # Both maps on one scale, topped by the evidence for the result (as on screen).
    benign, malignant = shared_scale(HeatMaps(benign, malignant, heatmaps.method, p))
    panels_rgb = [
        rgb.copy(),
        blend(rgb, benign, o.alpha, o.colormap),
        blend(rgb, malignant, o.alpha, o.colormap),
    ]
    del benign, malignant
    lesion, region = p.box, seen_region(p)
    thickness = max(2, round(max(h, w) / 250))
    for panel in panels_rgb:
        if region is not None:  # under the lesion box, should the two meet
            _draw_region(panel, region, thickness)
        if lesion is not None:
            _draw_box(panel, lesion, thickness)
        draw_measurements(panel, o.measurements, max(1, 2 * thickness // 3),
                          _font(max(12, round(max(h, w) / 45))))

    gap = max(4, round(0.02 * w))
    width = 3 * w + 4 * gap
    # ~1/110 of the report's width: read at the scale that fits the report on a screen or a
    # page, body text stays near 14 screen pixels; never below 12 px on small images.
    font_px = max(12, round(width / 110))
    font = _font(font_px)
    margin = gap
    line_gap = max(2, round(font_px * 0.35))
    line_h = font_px + line_gap

    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = width - 2 * margin
    lines = report_lines(heatmaps, options)
    wrapped: list[tuple[str, str]] = []
    for line in lines:
        for piece in _wrap(scratch, line.text, font, text_w):
            wrapped.append((piece, line.kind))

    title_px = font_px
    title_h = round(title_px * 1.8)
    panel_boxes = tuple(Box(gap + i * (w + gap), title_h, w, h) for i in range(3))
    scale = _scale_geometry(scratch, font, panel_boxes, width, margin, title_h + h)
    caption = _wrap(scratch, SCALE_CAPTION, font, scale.x1 - scale.x0)
    scale_h = gap // 2 + font_px + line_gap + len(caption) * line_h + gap // 2
    text_top = title_h + h + scale_h
    text_h = margin + len(wrapped) * line_h + margin
    height = text_top + text_h

    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = _BACKGROUND
    for box, panel in zip(panel_boxes, panels_rgb, strict=True):
        canvas[box.y : box.y + box.h, box.x : box.x + box.w] = panel

    # The colour bar under the evidence panels: "none [gradient] strongest", then its meaning.
    row_y = title_h + h + gap // 2
    bar_h = max(6, round(font_px * 0.8))
    bar_y0 = row_y + (font_px - bar_h) // 2 + 1
    bar_w = scale.bar_x1 - scale.bar_x0
    ramp = np.linspace(0.0, 1.0, bar_w, dtype=np.float32)[None, :].repeat(bar_h, axis=0)
    canvas[bar_y0 : bar_y0 + bar_h, scale.bar_x0 : scale.bar_x1] = colorize(ramp, o.colormap)

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for i, title in enumerate(PANEL_TITLES):
        box = panel_boxes[i]
        size = title_px
        tfont = font
        while size > 8 and _text_width(draw, title, tfont) > box.w:
            size -= 1
            tfont = _font(size)
        tw = _text_width(draw, title, tfont)
        tx = box.x + max(0.0, (box.w - tw) / 2)
        ty = (title_h - size) / 2
        draw.text((tx, ty), title, fill=_TEXT, font=tfont)

    draw.text((scale.x0, row_y), SCALE_ENDS[0], fill=_TEXT, font=font)
    draw.text((scale.bar_x1 + scale.pad, row_y), SCALE_ENDS[1], fill=_TEXT, font=font)
    y = row_y + font_px + line_gap
    for piece in caption:
        cx = scale.x0 + max(0.0, (scale.x1 - scale.x0 - _text_width(draw, piece, font)) / 2)
        draw.text((cx, y), piece, fill=_TEXT, font=font)
        y += line_h
    colours = {"text": _TEXT, "alert": _ALERT, "warning": _WARNING, "note": _ALERT}
    y = text_top + margin
    for piece, kind in wrapped:
        draw.text((margin, y), piece, fill=colours.get(kind, _TEXT), font=font)
        y += line_h

    out = np.asarray(image, dtype=np.uint8).copy()
    # Text drawing never touches the panels, but make the guarantee explicit: panel 0 is the
    # source image pixel for pixel (plus the lesion box ring and the outline of the region the
    # model saw, when there are).
    for box, panel in zip(panel_boxes, panels_rgb, strict=True):
        out[box.y : box.y + box.h, box.x : box.x + box.w] = panel

    layout = ReportLayout(
        width=width,
        height=height,
        panels=panel_boxes,  # type: ignore[arg-type]
        title_band=Box(0, 0, width, title_h),
        text_band=Box(0, text_top, width, text_h),
        font_px=font_px,
        scale_band=Box(0, title_h + h, width, scale_h),
    )
    return Report(
        image=out,
        layout=layout,
        lines=lines,
        when=o.when,
        source_name=o.source_name,
        patient_included=o.patient is not None and not o.patient.is_empty(),
        summary=_summary(heatmaps, o.when, o.source_text, o.calibration),
        prediction=heatmaps.prediction,
        measurements=o.measurements,
        operating_point=o.operating_point,
        pixels_blanked=blanked,
    )


__all__: Sequence[str] = (
    "DECISION_SUPPORT_NOTE",
    "PANEL_TITLES",
    "SOFTWARE_NAME",
    "BOX_SOURCE_TEXT",
    "Report",
    "ReportLayout",
    "ReportLine",
    "ReportOptions",
    "describe_band",
    "describe_input",
    "format_person_name",
    "method_label",
    "render_report",
    "report_lines",
    "seen_region",
)
