"""Exports: annotated report image (PNG), one-page PDF report, DICOM Secondary Capture.

No Qt here: the GUI calls these functions (off the GUI thread if it likes) and shows the errors.

The report
----------
:func:`render_report` draws, at the image's OWN resolution (nothing is rescaled), three panels
side by side -- the plain image, "Evidence for benign" and "Evidence for malignant" -- with a
title band above them and a text band below: the prediction in words, the calibrated probability
of malignancy, the input mode, the heat-map method, a plain-language line per map, the model
version, the device, date and time, the source file name, patient name and ID only when a
:class:`PatientInfo` is passed, any intended-use warnings, and the permanent note
"Decision support only - not a diagnosis.". The lesion box, when the prediction has one, is drawn
on all three panels as a ring just OUTSIDE the box, so the pixels of the lesion stay untouched.
:class:`ReportLayout` records where every panel lies, so a caller (or a test) can crop them.

Patient identifiers
-------------------
They appear only where the caller asks: in the report image when ``patient`` is passed to
:func:`render_report`, in the DICOM header when ``include_patient=True``. They are never written
into PNG text chunks or PDF metadata, which a user cannot see and would not think to scrub.
Text that the scanner burned into the source pixels (ultrasound header bars often show the
patient's name or ID) is part of the image and stays in every panel: nothing here detects or
masks it, and the DICOM export says so in DeidentificationMethod.

Writing files
-------------
Every export is atomic: the bytes go to a temporary file in the target's folder, are flushed and
fsync'ed, and only then take the target's name. On any failure the temporary file is removed and
no partial target remains. An existing file is never replaced unless ``overwrite=True``; even a
file that appears while the export runs is not replaced (the final step is a hard link, which
fails if the name is taken).

Errors
------
:class:`ExportExistsError`
    The target exists and ``overwrite`` is False. It is also a :class:`FileExistsError`.
:class:`ExportError`
    Anything else that stopped the file being written (missing or unwritable folder, disk full,
    an encoder failure). The message names the file and the reason, ready to show to a user.
:class:`ValueError`
    Bad arguments (mismatched heat-map size, a report with patient data burned in exported as a
    DICOM that claims the identity was removed...), raised before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rcdnet_desktop.core.errors import FileError
from rcdnet_desktop.core.overlay import DEFAULT_ALPHA, DEFAULT_COLORMAP, as_rgb, blend, colorize
from rcdnet_desktop.core.overlay import describe_evidence as _describe_evidence
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, PatientInfo

DECISION_SUPPORT_NOTE = "Decision support only - not a diagnosis."
PANEL_TITLES = ("Image", "Evidence for benign", "Evidence for malignant")
SOFTWARE_NAME = "RcdNet Desktop"

SECONDARY_CAPTURE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"
_PDF_MARGIN = 36.0  # points: half an inch
_PDF_TITLE_H = 24.0  # points: the 14 pt title and the space under it

# Colours of the report (RGB). White background and dark text print well.
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_ALERT = (190, 0, 0)
_WARNING = (170, 90, 0)
_BOX = (255, 220, 0)  # lesion box: yellow reads on grey ultrasound and on every colour map
_BOX_EDGE = (0, 0, 0)


# --- errors --------------------------------------------------------------------------------------


class ExportError(FileError):
    """A file could not be exported: ``path`` is the target, ``reason`` says why."""


class ExportExistsError(ExportError, FileExistsError):
    """The target file exists and overwriting was not asked for (also a FileExistsError)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "a file with this name already exists; it was not overwritten")
        self.errno = errno.EEXIST
        self.filename = str(path)


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
    """

    width: int
    height: int
    panels: tuple[Box, Box, Box]
    title_band: Box
    text_band: Box
    font_px: int

    def crop(self, image: np.ndarray, index: int) -> np.ndarray:
        """Return panel ``index`` (0 plain, 1 benign, 2 malignant) of a report image."""
        b = self.panels[index]
        return image[b.y : b.y + b.h, b.x : b.x + b.w]


@dataclass(frozen=True)
class ReportLine:
    """One line of report text; ``kind`` is "text", "alert", "warning" or "note"."""

    text: str
    kind: str = "text"


@dataclass(frozen=True)
class Report:
    """A rendered report: the image, its geometry and its text (for PDF and metadata).

    ``patient_included`` says whether patient identifiers are in ``image`` and ``lines``.
    """

    image: np.ndarray
    layout: ReportLayout
    lines: tuple[ReportLine, ...]
    when: datetime
    source_name: str = ""
    patient_included: bool = False
    summary: dict[str, str] = field(default_factory=dict)
    frame: int = 0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


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


def report_lines(
    heatmaps: HeatMaps,
    *,
    when: datetime,
    patient: PatientInfo | None = None,
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = DEFAULT_ALPHA,
    source_name: str = "",
) -> tuple[ReportLine, ...]:
    """Return the report's text lines (the same text goes into the PNG band and the PDF).

    Patient identifiers are included only when ``patient`` is given and not empty.
    """
    p = heatmaps.prediction
    roi = p.roi
    lines: list[ReportLine] = []
    if p.untrained:
        lines.append(
            ReportLine(
                f"Prediction: {p.display_label} - the model's weights are UNTRAINED; "
                "this result carries no information.",
                "alert",
            )
        )
    else:
        lines.append(ReportLine(f"Prediction: {p.display_label}"))
    lines.append(ReportLine(f"Probability of malignancy (calibrated): {100 * p.p_malignant:.1f}%"))
    if roi is not None:
        mode = f"Input: lesion box (x {roi.x}, y {roi.y}, {roi.w} x {roi.h} px)"
    else:
        mode = "Input: whole image"
    lines.append(ReportLine(mode))
    lines.append(
        ReportLine(f"Heat maps: {heatmaps.method}; colour map {colormap}, opacity {alpha:.2f}")
    )
    lines.append(ReportLine(f"Evidence for benign: {_describe_evidence(heatmaps.benign, roi)}"))
    lines.append(
        ReportLine(f"Evidence for malignant: {_describe_evidence(heatmaps.malignant, roi)}")
    )
    lines.append(ReportLine(f"Model: {p.model_version}   Device: {p.device}"))
    lines.append(ReportLine(f"Date and time: {_format_when(when)}"))
    if source_name or p.frame:
        source = source_name or "(unnamed)"
        if p.frame:
            source += f", frame {p.frame + 1}"
        lines.append(ReportLine(f"Source: {source}"))
    if patient is not None and not patient.is_empty():
        lines.append(ReportLine(_patient_text(patient)))
    for warning in p.warnings:
        lines.append(ReportLine(f"Warning: {warning}", "warning"))
    lines.append(ReportLine(DECISION_SUPPORT_NOTE, "note"))
    return tuple(lines)


def _summary(heatmaps: HeatMaps, when: datetime, source_name: str) -> dict[str, str]:
    """Non-identifying key/values for PNG text chunks and PDF metadata."""
    p = heatmaps.prediction
    return {
        "Software": SOFTWARE_NAME,
        "Prediction": p.display_label,
        "Probability of malignancy": f"{p.p_malignant:.4f}",
        "Input mode": p.mode,
        "Heat map method": heatmaps.method,
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


def _draw_box(rgb: np.ndarray, roi: Box, thickness: int) -> None:
    """Draw a ring just outside ``roi`` (clipped to the image), in place."""
    h, w = rgb.shape[:2]

    def ring(outer: int, inner: int, colour) -> None:
        ox0, oy0 = max(roi.x - outer, 0), max(roi.y - outer, 0)
        ox1, oy1 = min(roi.x + roi.w + outer, w), min(roi.y + roi.h + outer, h)
        ix0, iy0 = max(roi.x - inner, 0), max(roi.y - inner, 0)
        ix1, iy1 = min(roi.x + roi.w + inner, w), min(roi.y + roi.h + inner, h)
        if ox0 >= ox1 or oy0 >= oy1:
            return
        region = np.zeros((h, w), bool)
        region[oy0:oy1, ox0:ox1] = True
        if ix0 < ix1 and iy0 < iy1:
            region[iy0:iy1, ix0:ix1] = False
        rgb[region] = colour

    edge = max(1, thickness // 3)
    ring(thickness + edge, 0, _BOX_EDGE)
    ring(thickness, 0, _BOX)


def render_report(
    pixels: np.ndarray,
    heatmaps: HeatMaps,
    *,
    when: datetime,
    patient: PatientInfo | None = None,
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = DEFAULT_ALPHA,
    source_name: str = "",
) -> Report:
    """Render the annotated report at the image's own resolution.

    Parameters
    ----------
    pixels : numpy.ndarray
        The image the prediction was made on (the frame shown), uint8 (H, W) or (H, W, 3).
    heatmaps : HeatMaps
        Both evidence maps, at the image's size, with their prediction.
    when : datetime
        Date and time printed on the report (pass an aware datetime to print the UTC offset).
    patient : PatientInfo, optional
        Printed only when given; leave it out (the default) to keep identifiers off the report.
    colormap, alpha : str, float
        Colour map and opacity of the overlays, as shown on screen.
    source_name : str
        The source file's name (not its full path, which may carry identifiers).

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

    rgb = as_rgb(pixels)
    h, w = rgb.shape[:2]
    roi = heatmaps.prediction.roi
    benign = _full_size(heatmaps.benign, (h, w), roi, "benign")
    malignant = _full_size(heatmaps.malignant, (h, w), roi, "malignant")
    panels_rgb = [
        rgb.copy(),
        blend(rgb, benign, alpha, colormap),
        blend(rgb, malignant, alpha, colormap),
    ]
    if roi is not None:
        thickness = max(2, round(max(h, w) / 250))
        for panel in panels_rgb:
            _draw_box(panel, roi, thickness)

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
    lines = report_lines(
        heatmaps,
        when=when,
        patient=patient,
        colormap=colormap,
        alpha=alpha,
        source_name=source_name,
    )
    wrapped: list[tuple[str, str]] = []
    for line in lines:
        for piece in _wrap(scratch, line.text, font, text_w):
            wrapped.append((piece, line.kind))

    title_px = font_px
    title_h = round(title_px * 1.8)
    scale_h = font_px + line_gap  # the "low ... high" colour scale row
    text_h = margin + scale_h + line_gap + len(wrapped) * line_h + margin
    height = title_h + h + gap + text_h

    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = _BACKGROUND
    panel_boxes = tuple(Box(gap + i * (w + gap), title_h, w, h) for i in range(3))
    for box, panel in zip(panel_boxes, panels_rgb, strict=True):
        canvas[box.y : box.y + box.h, box.x : box.x + box.w] = panel

    # Colour scale row: "low [gradient] high", so the colours read as evidence strength.
    text_top = title_h + h + gap
    scale_y = text_top + margin
    bar_w = max(60, min(text_w // 3, 8 * font_px))
    low_label = "Evidence scale: low "
    low_w = int(np.ceil(_text_width(scratch, low_label, font)))
    bar_x0 = margin + low_w
    bar_h = max(6, font_px * 2 // 3)
    bar_y0 = scale_y + (font_px - bar_h) // 2 + 1
    ramp = np.linspace(0.0, 1.0, bar_w, dtype=np.float32)[None, :].repeat(bar_h, axis=0)
    if bar_x0 + bar_w <= width:
        canvas[bar_y0 : bar_y0 + bar_h, bar_x0 : bar_x0 + bar_w] = colorize(ramp, colormap)

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

    draw.text((margin, scale_y), low_label, fill=_TEXT, font=font)
    draw.text((bar_x0 + bar_w + font_px // 3, scale_y), "high", fill=_TEXT, font=font)
    colours = {"text": _TEXT, "alert": _ALERT, "warning": _WARNING, "note": _ALERT}
    y = scale_y + scale_h + line_gap
    for piece, kind in wrapped:
        draw.text((margin, y), piece, fill=colours.get(kind, _TEXT), font=font)
        y += line_h

    out = np.asarray(image, dtype=np.uint8).copy()
    # Text drawing never touches the panels, but make the guarantee explicit: panel 0 is the
    # source image pixel for pixel (plus the lesion box ring, when there is one).
    for box, panel in zip(panel_boxes, panels_rgb, strict=True):
        out[box.y : box.y + box.h, box.x : box.x + box.w] = panel

    layout = ReportLayout(
        width=width,
        height=height,
        panels=panel_boxes,  # type: ignore[arg-type]
        title_band=Box(0, 0, width, title_h),
        text_band=Box(0, text_top, width, text_h),
        font_px=font_px,
    )
    return Report(
        image=out,
        layout=layout,
        lines=lines,
        when=when,
        source_name=source_name,
        patient_included=patient is not None and not patient.is_empty(),
        summary=_summary(heatmaps, when, source_name),
        frame=heatmaps.prediction.frame,
    )


def render_record_report(
    record: ImageRecord,
    heatmaps: HeatMaps,
    *,
    include_patient: bool = False,
    when: datetime | None = None,
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = DEFAULT_ALPHA,
) -> Report:
    """Render the report of an opened image: the usual way for the GUI and the CLI.

    Takes the frame the prediction was made on, the file's name (never its folder, which may
    name the patient) and the patient's identifiers only when ``include_patient`` is True.
    ``when`` defaults to now, in local time with its UTC offset.
    """
    return render_report(
        record.frame(heatmaps.prediction.frame),
        heatmaps,
        when=when or datetime.now().astimezone(),
        patient=record.patient if include_patient else None,
        colormap=colormap,
        alpha=alpha,
        source_name=Path(record.path).name,
    )


# --- atomic writing ------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "the disk is full"
        if exc.errno == errno.EDQUOT:
            return "the disk quota is exceeded"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied (the folder is not writable)"
        if exc.errno == errno.EROFS:
            return "the disk is read-only"
        if exc.errno == errno.ENAMETOOLONG:
            return "the file name is too long"
        if exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable. Not possible on Windows (directories cannot be opened).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], *, overwrite: bool) -> Path:
    """Write a file atomically: temporary file in the same folder, fsync, then rename.

    Parameters
    ----------
    path : str or Path
        The target.
    write : callable
        Called with a binary file object; writes the whole content.
    overwrite : bool
        Replace an existing target. When False an existing target (even one created while
        ``write`` runs) is left alone and :class:`ExportExistsError` is raised.

    Returns
    -------
    Path
        The target path.

    Raises
    ------
    ExportExistsError
        The target exists and ``overwrite`` is False.
    ExportError
        The folder is missing or unwritable, the disk is full, or ``write`` failed. No
        temporary file and no partial target remain.
    """
    path = Path(path)
    if path.is_dir():
        raise ExportError(path, "this is a folder, not a file name")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise ExportExistsError(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ExportError(path, f"the folder {directory} does not exist")

    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise ExportError(path, f"cannot create a file in {directory}: {_reason(exc)}") from exc
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            # mkstemp makes the file private (0600); give the export the usual rw-r--r-- (reading
            # the umask would mean changing it, which is not thread-safe).
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o644)
            if overwrite:
                os.replace(tmp, path)
            else:
                _link_no_replace(tmp, path)
            _fsync_dir(directory)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(path, f"could not write the file: {_reason(exc)}") from exc
    finally:
        # After a successful os.replace the temporary name is gone; after a link it remains.
        with contextlib.suppress(FileNotFoundError, OSError):
            tmp.unlink()
    return path


def _link_no_replace(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` without ever replacing an existing ``path``."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError as exc:
        raise ExportExistsError(path) from exc
    except OSError:
        # No hard links here (FAT, some network shares, Windows without rights): check, then
        # rename. The window between the two is microseconds.
        pass
    if path.exists() or path.is_symlink():
        raise ExportExistsError(path)
    os.replace(tmp, path)


# --- PNG -----------------------------------------------------------------------------------------


def export_png(
    path: str | Path,
    report: Report | np.ndarray,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a report image as PNG.

    Parameters
    ----------
    path : str or Path
        Target file.
    report : Report or numpy.ndarray
        A :class:`Report` (its non-identifying summary goes into PNG text chunks) or a bare
        uint8 RGB image.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.
    """
    from PIL import Image, PngImagePlugin

    rgb = report.image if isinstance(report, Report) else as_rgb(report)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE_NAME)
    info.add_text("Disclaimer", DECISION_SUPPORT_NOTE)
    if isinstance(report, Report):
        # Never patient identifiers: text chunks are invisible and survive cropping.
        for key, value in report.summary.items():
            if key not in ("Software", "Disclaimer") and value:
                info.add_itxt(key, value)
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")

    def write(fh: BinaryIO) -> None:
        image.save(fh, format="PNG", pnginfo=info, compress_level=6)

    return atomic_write(path, write, overwrite=overwrite)


# --- PDF -----------------------------------------------------------------------------------------


def pdf_bytes(report: Report, *, title: str = "RcdNet decision-support report") -> bytes:
    """Build the one-page PDF of a report and return its bytes.

    The page (A4, landscape when the panels are wider than tall) holds a title, the panels and
    their titles as one image scaled to fit, and the report text as real (selectable) text.
    """
    from reportlab import rl_config
    from reportlab.lib.pagesizes import A4, landscape, portrait
    from reportlab.lib.utils import simpleSplit

    figure = report.image[: report.layout.text_band.y]  # panels and titles; text goes as text
    fig_h, fig_w = figure.shape[:2]
    body_font, body_size, leading = "Helvetica", 9.5, 12.5

    def wrap(page) -> list[tuple[str, str]]:
        text_w = page[0] - 2 * _PDF_MARGIN
        out: list[tuple[str, str]] = []
        for line in report.lines:
            font = "Helvetica-Bold" if line.kind in ("alert", "note") else body_font
            for piece in simpleSplit(line.text, font, body_size, text_w) or [""]:
                out.append((piece, line.kind))
        return out

    def figure_scale(page, n_lines: int) -> float:
        avail_w = page[0] - 2 * _PDF_MARGIN
        avail_h = page[1] - 2 * _PDF_MARGIN - _PDF_TITLE_H - n_lines * leading - 10
        return min(avail_w / fig_w, max(avail_h, 40.0) / fig_h)

    # Landscape suits the usual wide three-panel figure; a tall image may fill portrait better.
    options = []
    for page in (landscape(A4), portrait(A4)):
        lines = wrap(page)
        options.append((figure_scale(page, len(lines)), page, lines))
    _, page, wrapped = max(options, key=lambda o: o[0])

    # ASCII85 (reportlab's default) makes the embedded image a quarter larger for nothing: a PDF
    # is a binary file anyway. The setting is global, so restore it at once.
    saved_a85 = rl_config.useA85
    rl_config.useA85 = 0
    try:
        return _pdf_page(report, title, figure, page, wrapped, body_font, body_size, leading)
    finally:
        rl_config.useA85 = saved_a85


def _pdf_page(report, title, figure, page, wrapped, body_font, body_size, leading) -> bytes:
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    fig_h, fig_w = figure.shape[:2]
    page_w, page_h = page
    margin = _PDF_MARGIN
    text_w = page_w - 2 * margin
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=page, pageCompression=1)
    # Metadata: nothing that identifies a patient, ever.
    c.setTitle(title)
    c.setAuthor(SOFTWARE_NAME)
    c.setCreator(SOFTWARE_NAME)
    c.setSubject(f"{report.summary.get('Prediction', '')} - {DECISION_SUPPORT_NOTE}")
    c.setKeywords("breast ultrasound; decision support; Grad-CAM")

    y = page_h - margin
    c.setFont("Helvetica-Bold", 14)
    c.setFillColorRGB(0, 0, 0)
    c.drawString(margin, y - 14, title)
    y -= _PDF_TITLE_H

    text_h = len(wrapped) * leading
    avail_h = y - margin - text_h - 10
    scale = min(text_w / fig_w, max(avail_h, 40.0) / fig_h)
    draw_w, draw_h = fig_w * scale, fig_h * scale
    img = ImageReader(Image.fromarray(np.ascontiguousarray(figure), "RGB"))
    c.drawImage(img, margin + (text_w - draw_w) / 2, y - draw_h, width=draw_w, height=draw_h)
    y -= draw_h + 10

    colours = {"alert": (0.75, 0, 0), "note": (0.75, 0, 0), "warning": (0.67, 0.35, 0)}
    for piece, kind in wrapped:
        font = "Helvetica-Bold" if kind in ("alert", "note") else body_font
        c.setFont(font, body_size)
        c.setFillColorRGB(*colours.get(kind, (0.08, 0.08, 0.08)))
        y -= leading
        c.drawString(margin, y, piece)
    c.showPage()
    c.save()
    return buf.getvalue()


def export_pdf(
    path: str | Path,
    report: Report,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a one-page PDF report (see :func:`pdf_bytes`) atomically.

    Patient identifiers appear in the page text only when they were passed to
    :func:`render_report`; they never go into the PDF's metadata.
    """
    if not isinstance(report, Report):
        raise TypeError("export_pdf needs a Report from render_report (it uses the report text)")
    data = pdf_bytes(report)

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    return atomic_write(path, write, overwrite=overwrite)


# --- DICOM Secondary Capture ---------------------------------------------------------------------


def _source_reference(record: ImageRecord):
    """Return (SOPClassUID, SOPInstanceUID) of the DICOM source, or None when unknown."""
    if not record.is_dicom or not record.study.sop_instance_uid:
        return None
    try:
        import pydicom

        ds = pydicom.dcmread(
            record.path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"]
        )
        sop_class = str(ds.get("SOPClassUID", "") or "")
    except Exception:  # the source may have moved; the reference is optional (type 3)
        return None
    if not sop_class:
        return None
    return sop_class, record.study.sop_instance_uid


_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _valid_uid(uid: str) -> bool:
    return bool(uid) and len(uid) <= 64 and bool(_UID_RE.match(uid))


def dicom_sc_dataset(
    record: ImageRecord,
    report: Report | np.ndarray,
    *,
    include_patient: bool = False,
    when: datetime | None = None,
    frame: int | None = None,
):
    """Build (not write) the DICOM Secondary Capture dataset of a report.

    See :func:`export_dicom_sc` for what it holds.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    if isinstance(report, Report):
        if report.patient_included and not include_patient:
            raise ValueError(
                "the report image shows patient identifiers; export it with include_patient=True "
                "or render it again without the patient"
            )
        rgb = report.image
        when = when or report.when
        frame = report.frame if frame is None else frame
        description_lines = [line.text for line in report.lines]
    else:
        rgb = as_rgb(report)
        description_lines = [DECISION_SUPPORT_NOTE]
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if when is None:
        when = datetime.now().astimezone()
    rows, cols = rgb.shape[:2]
    if rows > 65535 or cols > 65535:
        raise ValueError(f"the report is {cols}x{rows} pixels; DICOM allows at most 65535 a side")

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names may not be ASCII
    ds.SOPClassUID = SECONDARY_CAPTURE_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["DERIVED", "SECONDARY"]
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.ContentDate, ds.ContentTime = date, time
    offset = when.strftime("%z")
    if offset:
        ds.TimezoneOffsetFromUTC = offset

    # Patient module (type 2: present, empty unless asked for).
    patient = record.patient
    if include_patient:
        ds.PatientName = patient.name
        ds.PatientID = patient.patient_id
        ds.PatientBirthDate = patient.birth_date
        ds.PatientSex = patient.sex
        ds.AccessionNumber = patient.accession_number
    else:
        ds.PatientName = ""
        ds.PatientID = ""
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.AccessionNumber = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = (
            # LO: 64 characters at most. Honest about what was not done: scanners often burn
            # the patient's name or ID into the image's header bar, and the panels keep it.
            "Header identifiers removed; source burned-in text kept"
        )

    # Study: the source's when it is DICOM, so the report files with the images it explains.
    study = record.study
    if record.is_dicom and _valid_uid(study.study_instance_uid):
        ds.StudyInstanceUID = study.study_instance_uid
        ds.StudyDate = study.study_date
        ds.StudyTime = study.study_time
        ds.StudyID = study.study_id
        if study.study_description:
            ds.StudyDescription = study.study_description
    else:
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime = date, time
        ds.StudyID = ""
    ds.ReferringPhysicianName = ""

    # Series: always new.
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = study.modality or "OT"
    ds.SeriesNumber = 9901  # high, so PACS lists the derived series after the acquisitions
    ds.SeriesDescription = "RcdNet decision support (Grad-CAM)"
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""

    # Equipment: the software that made this image; the scanner stays in the source.
    ds.Manufacturer = SOFTWARE_NAME
    ds.ConversionType = "WSD"  # workstation
    ds.SecondaryCaptureDeviceManufacturer = SOFTWARE_NAME
    ds.SecondaryCaptureDeviceManufacturerModelName = "RcdNet Desktop"
    try:
        from importlib.metadata import version

        ds.SecondaryCaptureDeviceSoftwareVersions = version("rcdnet-desktop")
    except Exception:
        ds.SecondaryCaptureDeviceSoftwareVersions = "unknown"

    ds.BurnedInAnnotation = "YES"
    ds.DerivationDescription = (
        "Source image with RcdNet benign/malignant prediction and Grad-CAM evidence maps "
        "burned in. " + DECISION_SUPPORT_NOTE
    )[:1024]
    ds.ImageComments = "\n".join(description_lines)[:10240]

    reference = _source_reference(record)
    if reference is not None:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = reference
        if record.frame_count > 1 and frame is not None:
            item.ReferencedFrameNumber = frame + 1
        ds.SourceImageSequence = [item]

    # Image pixel module: 8-bit RGB, colour-by-pixel.
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    data = rgb.tobytes()
    if len(data) % 2:
        data += b"\x00"  # DICOM values have even length
    ds.PixelData = data
    ds["PixelData"].VR = "OB"
    return ds


def export_dicom_sc(
    path: str | Path,
    record: ImageRecord,
    report: Report | np.ndarray,
    *,
    include_patient: bool = False,
    overwrite: bool = False,
    when: datetime | None = None,
    frame: int | None = None,
) -> Path:
    """Write the report as a DICOM Secondary Capture image, atomically.

    The file: SOP Class Secondary Capture (1.2.840.10008.5.1.4.1.1.7), explicit VR little
    endian, 8-bit RGB uncompressed; the source's StudyInstanceUID when the source is DICOM (a
    new study otherwise); a new SeriesInstanceUID and SOPInstanceUID; ImageType
    DERIVED\\SECONDARY; ConversionType WSD; BurnedInAnnotation YES; Modality copied from the
    source ("OT" when unknown); ContentDate/Time from the report; a reference to the source
    image when it can be read. Patient name, ID, birth date, sex and accession number are empty
    and PatientIdentityRemoved is YES unless ``include_patient`` is True.

    Parameters
    ----------
    path : str or Path
        Target file (".dcm" is customary).
    record : ImageRecord
        The source image's record (study, patient, modality).
    report : Report or numpy.ndarray
        The rendered report, or a bare uint8 RGB image.
    include_patient : bool
        Copy the patient's identifiers into the header. A :class:`Report` that shows them in
        its pixels cannot be exported with ``include_patient=False`` (ValueError).
    overwrite : bool
        Replace an existing file.
    when : datetime, optional
        Content date/time; defaults to the report's time, or now.
    frame : int, optional
        The source frame (0-based) of a cine, recorded in the source reference; defaults to the
        report's frame.

    Returns
    -------
    Path
        The written file.
    """
    ds = dicom_sc_dataset(record, report, include_patient=include_patient, when=when, frame=frame)

    def write(fh: BinaryIO) -> None:
        ds.save_as(fh, enforce_file_format=True)

    return atomic_write(path, write, overwrite=overwrite)


__all__: Sequence[str] = (
    "DECISION_SUPPORT_NOTE",
    "PANEL_TITLES",
    "SECONDARY_CAPTURE_SOP_CLASS",
    "ExportError",
    "ExportExistsError",
    "Report",
    "ReportLayout",
    "ReportLine",
    "atomic_write",
    "dicom_sc_dataset",
    "export_dicom_sc",
    "export_pdf",
    "export_png",
    "format_person_name",
    "pdf_bytes",
    "render_record_report",
    "render_report",
    "report_lines",
)
