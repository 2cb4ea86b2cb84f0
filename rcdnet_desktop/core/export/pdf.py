"""The one-page PDF of a report: the panels as one image, the report text as real text.

No Qt here. :func:`pdf_bytes` builds the page with reportlab and :func:`export_pdf` writes it
atomically. The PDF's metadata never holds patient identifiers, which a user cannot see and
would not think to scrub.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rcdnet_desktop.core.atomic import atomic_write
from rcdnet_desktop.core.export.report import DECISION_SUPPORT_NOTE, SOFTWARE_NAME, Report

BOLD_KINDS = ("headline", "alert", "note")
"""Report lines printed in bold: the result's headline, alerts and the decision-support note."""

_PDF_MARGIN = 36.0  # points: half an inch
_PDF_TITLE_H = 24.0  # points: the 14 pt title and the space under it


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
            font = "Helvetica-Bold" if line.kind in BOLD_KINDS else body_font
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
        font = "Helvetica-Bold" if kind in BOLD_KINDS else body_font
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


__all__: Sequence[str] = ("export_pdf", "pdf_bytes")
