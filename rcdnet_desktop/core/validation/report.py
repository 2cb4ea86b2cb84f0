"""The validation report: the same parts as an HTML page and a PDF, plus a JSON of the figures.

No Qt here. :func:`report_parts` lays the figures out once (summary first, then each figure
with its interval and the model card's value beside it, a figure with too few cases replaced
by its sentence); :func:`html_bytes` and :func:`pdf_bytes` only render those parts, and
:func:`write_report` writes the three files with :func:`~rcdnet_desktop.core.atomic.
atomic_write`. A write stopped part-way (Ctrl+C, a full disk) removes the files it had
written, so the folder never holds half a report.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcdnet_desktop.core.atomic import atomic_write, remove_file
from rcdnet_desktop.core.card_summary import Section
from rcdnet_desktop.core.export.report import DECISION_SUPPORT_NOTE, SOFTWARE_NAME
from rcdnet_desktop.core.numbers import shortest
from rcdnet_desktop.core.result import BELOW_CUTOFF, SUSPICIOUS
from rcdnet_desktop.core.validation.cases import PATIENT_SOURCES
from rcdnet_desktop.core.validation.figures import ECE_DEFINITION, MIN_BAND
from rcdnet_desktop.core.validation.plots import calibration_png, roc_png
from rcdnet_desktop.core.validation.summary import pct, summary, with_ci

TITLE = "Local validation report"
REPORT_FILES = {"html": "validation_report.html", "pdf": "validation_report.pdf",
                "json": "validation_figures.json"}
"""The files :func:`write_report` writes into its folder."""


@dataclass(frozen=True)
class Part(Section):
    """One part of the report: a section of the model card's page (title, paragraphs, a table
    with its header first) and optionally a PNG plot."""

    image: bytes | None = None


def _card_cell(card: Mapping[str, Any], name: str, as_share: bool = True) -> str:
    return with_ci(card[name], as_share) if name in card else "not given"


def _cutoff_part(fig: Mapping[str, Any]) -> Part:
    at, card = fig["at_cutoff"], fig.get("card_external") or {}
    c = at["confusion"]
    rows: list[tuple[str, ...]] = [("figure", "here (95% CI, by patient)",
                                    "model card, external site")]
    rows.append(("sensitivity: cancers flagged " + SUSPICIOUS, with_ci(at["sensitivity"]),
                 _card_cell(card, "sensitivity")))
    rows.append((f"specificity: benign lesions {BELOW_CUTOFF}", with_ci(at["specificity"]),
                 _card_cell(card, "specificity")))
    rows.append((f"PPV: {SUSPICIOUS} results that are cancer", with_ci(at["ppv"]), ""))
    rows.append((f"NPV: results {BELOW_CUTOFF} that are not cancer", with_ci(at["npv"]), ""))
    rows.append(("AUC", with_ci(fig["auc"], as_share=False), _card_cell(card, "auc", False)))
    cut = shortest(at["threshold"]) if at["threshold"] is not None else "?"
    # Validated under a site profile (rcdnet validate --site): its cut-off, said as such.
    site = fig.get("site_profile") or {}
    whose = "the site profile's" if site.get("cutoff") is not None else "the model card's"
    text = [site["sentence"]] if site else []
    text += [f"The decision is each result's own, at {whose} cut-off: {SUSPICIOUS} at "
            f"P(malignant) {cut} or above, {BELOW_CUTOFF} under it. Here: {c['tp']} cancers "
            f"{SUSPICIOUS} and {c['fn']} {BELOW_CUTOFF}; {c['tn']} benign lesions "
            f"{BELOW_CUTOFF} and {c['fp']} {SUSPICIOUS}."]
    seen = set()
    for f in (at["sensitivity"], at["specificity"], at["ppv"], at["npv"], fig["auc"]):
        if "too_few" in f and f["too_few"] not in seen:
            seen.add(f["too_few"])
            text.append(f["too_few"])
    return Part(f"At {whose} cut-off", tuple(text), tuple(rows))


def _prevalence_part(fig: Mapping[str, Any]) -> Part:
    pv = fig["predictive_values"]
    site = pv["site"]
    rows: list[tuple[str, ...]] = [("share of cancer among the cases", f"{SUSPICIOUS}: cancer",
                                    f"{BELOW_CUTOFF}: not cancer")]
    rows.append((f"{pct(site['prevalence'])} (here)", with_ci(site["ppv"]), with_ci(site["npv"])))
    for row in pv["fixed"]:
        rows.append((pct(row["prevalence"]), with_ci(row["ppv"]), with_ci(row["npv"])))
    return Part("What a result means where cancer is more or less common",
                ("How often a suspicious result is a cancer (PPV), and a result below the "
                 "cut-off is not (NPV), depends on how common cancer is among the lesions "
                 "shown to the model. From the sensitivity and specificity measured here; "
                 "intervals from the same patient resamples.",), tuple(rows))


def _roc_part(fig: Mapping[str, Any], image: bytes | None) -> Part:
    if "too_few" in fig["auc"]:
        return Part("ROC curve", (fig["auc"]["too_few"],))
    return Part("ROC curve", ("How sensitivity and specificity trade off over every cut-off; "
                              "the dot is the model card's cut-off here.",), image=image)


def _calibration_part(fig: Mapping[str, Any], image: bytes | None) -> Part:
    ece = fig["calibration"]["ece"]
    if "too_few" in ece:
        return Part("Calibration", (ece["too_few"],))
    return Part("Calibration", (
        "Does P(malignant) match the share of cancers? Each point is a tenth of the range of P "
        "(its number of images beside it, 95% Wilson interval); points on the diagonal are "
        "well calibrated. Calibration measured at one hospital rarely holds at another.",
        f"Calibration error here: {with_ci(ece, as_share=False)} ({ECE_DEFINITION}; 0 is "
        "perfect)."), image=image)


def _bands_part(fig: Mapping[str, Any]) -> Part:
    rows: list[tuple[str, ...]] = [("band", "BI-RADS range", "images", "cancers",
                                    "share of cancers (95% CI)", "against the band's range")]
    for b in fig["bands"]:
        status = {"within": "within", "too_few": f"too few (< {MIN_BAND})"}.get(b["status"], "")
        if b["status"] == "outside":
            status = "OUTSIDE" + (" (interval excludes it)" if b.get("ci_excludes_range")
                                  else " (interval overlaps it)")
        share = (f"{pct(b['rate'], b['range'])} ({pct(b['ci95'][0])}-{pct(b['ci95'][1])})"
                 if b["n"] else "-")
        rows.append((b["band"], b["birads_range"] or "-", str(b["n"]), str(b["malignant"]),
                     share, status))
    return Part("Likelihood bands", (
        "Each band puts P(malignant) beside a BI-RADS likelihood-of-malignancy range (it is not "
        "a BI-RADS assessment). A band holds here when the share of cancers among its images "
        f"lies in its range; a band with fewer than {MIN_BAND} images is not judged. Intervals "
        "count images, not patients.",), tuple(rows))


def _checks_part(fig: Mapping[str, Any]) -> Part:
    g, loc, box = fig["guard"], fig["localiser"], fig["box_stability"]
    text = []
    if g["n"]:
        codes = ", ".join(f"{k} {v}" for k, v in g["by_check"].items())
        text.append(f"Intended-use guard: {g['flagged']} of {g['n']} images flagged as outside "
                    f"intended use ({pct(g['rate'])}, 95% CI {pct(g['ci95'][0])}-"
                    f"{pct(g['ci95'][1])})" + (f"; by check: {codes}." if codes else "."))
    if loc.get("note"):
        text.append(f"Lesion localiser: {loc['note']}")
    elif loc.get("too_few"):
        text.append(f"Lesion localiser: {loc['too_few']}")
    else:
        text.append(f"Lesion localiser: the automatic box hit the outlined lesion in "
                    f"{loc['hits']} of {loc['masked']} images with a mask: "
                    f"{with_ci(loc, key='rate')}; "
                    f"{loc['hits_iou']} by overlap, {loc['hits_centre']} with the box's centre "
                    f"in the lesion, {loc['no_box']} without an automatic box (counted as "
                    f"misses). Rule: {loc['rule']}.")
    if loc["mask_problems"]:
        text.append(f"{len(loc['mask_problems'])} mask(s) could not be used: "
                    + "; ".join(loc["mask_problems"][:10])
                    + (" ..." if len(loc["mask_problems"]) > 10 else ""))
    if box["n"]:
        text.append(f"Box stability: {box['box_dependent']} of {box['n']} results on a lesion "
                    f"box ({pct(box['rate'])}) would fall on the other side of the cut-off with "
                    "a box drawn slightly differently.")
    return Part("Intended-use guard, lesion localiser and box stability", tuple(text))


def _cases_part(fig: Mapping[str, Any]) -> Part:
    c = fig["cases"]
    sources = "; ".join(f"{n} image(s): {PATIENT_SOURCES[k]}"
                        for k, n in c["patient_sources"].items() if n)
    rows = (("files", "classified", "cancers", "benign", "patients", "share of cancer"),
            (str(c["files"]), str(c["classified"]), str(c["malignant"]), str(c["benign"]),
             str(c["patients"]), pct(c["prevalence"])))
    return Part("Cases", (f"Patients from: {sources}." if sources else "",), rows)


def _failed_part(fig: Mapping[str, Any]) -> Part | None:
    failed = fig["cases"]["not_classified"]
    if not failed:
        return None
    return Part("Files not classified",
                tuple(f["reason"] or f["path"] for f in failed))


def _method_part(fig: Mapping[str, Any]) -> Part:
    b = fig["bootstrap"]
    ci = (f"95% intervals of AUC, sensitivity, specificity, PPV, NPV and calibration error: "
          f"percentile bootstrap over patients ({b['n']} resamples, seed {b['seed']}; each "
          "resample draws patients with replacement and keeps all of their images)."
          if b["n"] else "No bootstrap interval: fewer than two patients, or one class only.")
    return Part("How the figures were computed", (
        "Every image went through the same review as rcdnet classify: the same model, "
        "intended-use guard, automatic lesion box, likelihood bands and decision at the model "
        "card's cut-off.", ci,
        "Shares of images (bands, guard, localiser): Wilson 95% intervals over images.",
        f"Model {fig['model']['version']}. {DECISION_SUPPORT_NOTE}"))


def report_parts(figures: Mapping[str, Any], roc: bytes | None = None,
                 calibration: bytes | None = None) -> list[Part]:
    """The report's parts in order, from :func:`~.figures.validation_figures`' output and the
    two plots' PNG bytes."""
    parts = [Part("Summary", tuple(summary(figures))), _cases_part(figures),
             _cutoff_part(figures), _prevalence_part(figures), _roc_part(figures, roc),
             _calibration_part(figures, calibration), _bands_part(figures),
             _checks_part(figures)]
    failed = _failed_part(figures)
    if failed is not None:
        parts.append(failed)
    parts.append(_method_part(figures))
    return parts


_CSS = ("body{font-family:Helvetica,Arial,sans-serif;max-width:60em;margin:2em auto;"
        "color:#222;line-height:1.4}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}"
        "th{background:#eee}h2{border-bottom:1px solid #ccc;margin-top:1.6em}"
        "section.summary p{font-size:1.05em}")


def html_bytes(parts: Sequence[Part]) -> bytes:
    """The report as one self-contained HTML page (plots embedded as PNG data)."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(TITLE)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(TITLE)}</h1><p><em>{e(SOFTWARE_NAME)}. {e(DECISION_SUPPORT_NOTE)}</em></p>"]
    for i, part in enumerate(parts):
        out.append(f'<section{" class=summary" if i == 0 else ""}><h2>{e(part.title)}</h2>')
        out += [f"<p>{e(p)}</p>" for p in part.paragraphs if p]
        if part.table:
            head, *body = part.table
            out.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
            out.append("</table>")
        if part.image is not None:
            data = base64.b64encode(part.image).decode("ascii")
            out.append(f'<p><img alt="{e(part.title)}" src="data:image/png;base64,{data}">'
                       "</p>")
        out.append("</section>")
    out.append("</body></html>\n")
    return "\n".join(out).encode("utf-8")


def pdf_bytes(parts: Sequence[Part]) -> bytes:
    """The report as an A4 PDF (text as text, plots as images); no patient data in its
    metadata."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
    from reportlab.platypus.flowables import KeepTogether

    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], styles["BodyText"].clone("small", fontSize=8, leading=10)
    e = html.escape
    story: list[Any] = [Paragraph(e(TITLE), styles["Title"]),
                        Paragraph(f"<i>{e(SOFTWARE_NAME)}. {e(DECISION_SUPPORT_NOTE)}</i>", body)]
    width = A4[0] - 4 * cm
    for part in parts:
        block: list[Any] = [Paragraph(e(part.title), styles["Heading2"])]
        block += [Paragraph(e(p), body) for p in part.paragraphs if p]
        if part.table:
            data = [[Paragraph(e(c), small) for c in row] for row in part.table]
            t = Table(data, colWidths=[width / len(part.table[0])] * len(part.table[0]),
                      repeatRows=1)
            t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP")]))
            block.append(t)
        if part.image is not None:
            block.append(Image(io.BytesIO(part.image), width=9 * cm, height=9 * cm * 4.0 / 4.2))
        block.append(Spacer(1, 6))
        story.append(KeepTogether(block) if part.image is not None else block[0])
        if part.image is None:
            story += block[1:]
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, title=TITLE, author=SOFTWARE_NAME,
                            subject="", creator=SOFTWARE_NAME, leftMargin=2 * cm,
                            rightMargin=2 * cm, topMargin=2 * cm, bottomMargin=2 * cm)
    doc.build(story)
    return buf.getvalue()


def json_bytes(figures: Mapping[str, Any]) -> bytes:
    """The figures as indented JSON (no NaN: unknown values are null)."""
    return (json.dumps(figures, indent=2, allow_nan=False) + "\n").encode("utf-8")


def report_paths(folder: str | Path) -> dict[str, Path]:
    """The report's files in ``folder`` by kind (``html``, ``pdf``, ``json``)."""
    return {k: Path(folder) / name for k, name in REPORT_FILES.items()}


def write_report(folder: str | Path, figures: Mapping[str, Any], *,
                 overwrite: bool = False) -> dict[str, Path]:
    """Render and write the HTML, PDF and JSON into ``folder`` (which must exist).

    Everything is rendered before the first file is written; should a write fail or be
    interrupted, the files this call had written are removed again.

    Raises
    ------
    ExportExistsError, ExportError
        A file exists (without ``overwrite``) or cannot be written.
    """
    parts = report_parts(figures, roc_png(figures), calibration_png(figures))
    content = {"html": html_bytes(parts), "pdf": pdf_bytes(parts), "json": json_bytes(figures)}
    paths = report_paths(folder)
    written: list[Path] = []
    try:
        for kind, data in content.items():
            written.append(atomic_write(paths[kind], lambda fh, d=data: fh.write(d),
                                        overwrite=overwrite))
    except BaseException:
        for p in written:
            remove_file(p)
        raise
    return paths


__all__ = ["REPORT_FILES", "TITLE", "Part", "html_bytes", "json_bytes", "pdf_bytes",
           "report_parts", "report_paths", "write_report"]
