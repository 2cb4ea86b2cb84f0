"""Small dialogs: About, Model card, Keyboard shortcuts."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop import __version__ as APP_VERSION  # noqa: N812
from rcdnet_desktop.core.card_summary import clinician_page
from rcdnet_desktop.core.lexicon import SECTION_TITLE
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.result import SITE_CARD_NOTE, rules_sentences, site_sentence
from rcdnet_desktop.gui.panels.prediction_panel import NOT_A_DIAGNOSIS


def card_to_dict(card: Any) -> dict[str, Any]:
    """The model card as plain data, whether it is a ModelCard, a dict or absent."""
    if card is None:
        return {}
    if isinstance(card, dict):
        return dict(card)
    to_dict = getattr(card, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return dict(getattr(card, "__dict__", {}))


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt_number(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return _e(v)


def _fmt_value(v: Any) -> str:
    if isinstance(v, dict):
        return _table(v)
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, (int, float)) for x in v) and len(v) <= 4:
            return "[" + ", ".join(_fmt_number(x) for x in v) + "]"
        return "<ul>" + "".join(f"<li>{_fmt_value(x)}</li>" for x in v) + "</ul>"
    return _fmt_number(v)


CI_SUFFIXES = ("_ci95", "_ci", "_ci_95")


def _table(d: dict[str, Any]) -> str:
    """Nested dict as an HTML table; a metric and its ``<name>_ci95`` share one row."""
    rows = []
    keys = list(d)
    for k in keys:
        if any(k.endswith(s) and k[: -len(s)] in d for s in CI_SUFFIXES):
            continue  # shown with its metric
        v = d[k]
        cell = _fmt_value(v)
        for s in CI_SUFFIXES:
            ci = d.get(k + s)
            if isinstance(ci, (list, tuple)) and len(ci) == 2:
                cell += f" (95% CI {_fmt_number(ci[0])}-{_fmt_number(ci[1])})"
        rows.append(f"<tr><td valign='top'><b>{_e(k)}</b></td><td>{cell}</td></tr>")
    return "<table cellspacing='2' cellpadding='2'>" + "".join(rows) + "</table>"


def _list(items: Sequence[Any]) -> str:
    if not items:
        return "<p><i>none stated</i></p>"
    return "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in items) + "</ul>"


def model_card_html(card: Any) -> str:
    """The model card as HTML: version, intended use, limits, training data and metrics."""
    d = card_to_dict(card)
    if not d:
        return "<p>The model is not loaded, so there is no model card to show.</p>"
    parts = [f"<h2>RcdNet model {_e(d.get('version', '?'))}</h2>"]
    if d.get("untrained"):
        parts.append("<p style='background:#b71c1c;color:white;padding:6px'><b>UNTRAINED "
                     "weights: outputs are arbitrary and must not inform any decision.</b></p>")
    parts.append(f"<p><b>{_e(NOT_A_DIAGNOSIS)}</b></p>")
    parts.append("<h3>Intended use</h3>")
    parts.append(f"<p>{_e(d.get('intended_use') or 'not stated')}</p>")
    parts.append("<h3>Not for</h3>" + _list(d.get("not_for") or []))
    parts.append("<h3>Limitations</h3>" + _list(d.get("limitations") or []))
    parts.append("<h3>Training data</h3>")
    training = d.get("training") or {}
    parts.append(_table(training) if isinstance(training, dict) and training
                 else f"<p>{_e(training or 'not stated')}</p>")
    parts.append("<h3>Metrics (with 95% confidence intervals where given)</h3>")
    metrics = d.get("metrics") or {}
    parts.append(_table(metrics) if metrics else "<p><i>No evaluation results: the model "
                 "has not been evaluated.</i></p>")
    op = d.get("operating_point") or {}
    reading = OperatingPoint.from_card(d)
    parts.append("<h3>How a result reads: the decision, the band, the colours</h3>"
                 + _list(rules_sentences(reading)))
    if op:
        parts.append("<h3>Operating point: likelihood bands and the suspicious threshold</h3>"
                     + _table(op))
    loc = d.get("localiser") or {}
    if loc:
        parts.append("<h3>Lesion localiser (proposes the box when none is drawn)</h3>"
                     + _table(loc))
    lexicon = d.get("lexicon") or {}
    if lexicon:
        parts.append(_lexicon_html(lexicon))
    arch = d.get("architecture") or {}
    if arch:
        parts.append("<h3>Architecture</h3>" + _table(arch))
    pre = d.get("preprocessing") or {}
    if pre:
        parts.append("<h3>Preprocessing</h3>" + _table(pre))
    diffs = d.get("differences_from_paper") or []
    if diffs:
        parts.append("<h3>Differences from the paper (Liu et al. 2025)</h3>" + _list(diffs))
    other = {k: d[k] for k in ("temperature", "roi_margin", "classes", "weights") if k in d}
    if other:
        parts.append("<h3>Other</h3>" + _table(other))
    if d.get("notes"):
        parts.append(f"<h3>Notes</h3><p>{_e(d['notes'])}</p>")
    return "".join(parts)


def _lexicon_html(section: dict) -> str:
    """The lexicon heads' part of the card: what they are, the rule, the measured agreement."""
    def ci(m: dict) -> str:
        lo, hi = m["ci95"]
        return f"{m['value']:.2f} [{lo:.2f}, {hi:.2f}]"

    rows = "".join(
        f"<tr><td>{_e(e['name'])}</td><td>{_e(', '.join(e['classes']))}</td>"
        f"<td>{ci(e['metrics']['kappa'])}</td><td>{ci(e['metrics']['balanced_accuracy'])}"
        f" (baseline {e['metrics']['baseline']['balanced_accuracy']:.2f})</td>"
        f"<td>{'yes' if e['shown'] else 'no'}</td></tr>" for e in section["descriptors"])
    return (f"<h3>{_e(SECTION_TITLE)}: BI-RADS lexicon suggestions</h3>"
            f"<p>{_e(section.get('notes', ''))}</p><p>A descriptor is {_e(section['rule'])}.</p>"
            "<table cellpadding='3' border='1' cellspacing='0'><tr><th>descriptor</th>"
            "<th>classes</th><th>Cohen's kappa [95% CI]</th><th>balanced accuracy [95% CI]"
            f"</th><th>shown</th></tr>{rows}</table>")


def clinician_html(card: Any) -> str:
    """The model card's first page, in plain words (:mod:`rcdnet_desktop.core.card_summary`)."""
    d = card_to_dict(card)
    if not d:
        return "<p>The model is not loaded, so there is no model card to show.</p>"
    parts = [f"<h2>RcdNet model {_e(d.get('version', '?'))}: for clinicians</h2>"]
    for section in clinician_page(d):
        parts.append(f"<h3>{_e(section.title)}</h3>")
        parts.extend(f"<p>{_e(p)}</p>" for p in section.paragraphs)
        if section.table:
            head, *rows = section.table
            parts.append("<table cellspacing='2' cellpadding='3' border='1'><tr>"
                         + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>"
                                   for r in rows) + "</table>")
    return "".join(parts)


class ModelCardDialog(QDialog):
    """Shows the model card of the loaded weights: the page for clinicians first, the
    technical sections folded under it ("Technical details"). With a site ``profile`` in use,
    the page opens with what it changes (:func:`rcdnet_desktop.core.result.site_sentence`)."""

    def __init__(self, card: Any, parent: QWidget | None = None, profile: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model card")
        self.resize(720, 640)
        self.summary = QTextBrowser(self)
        site = site_sentence(profile)
        self.summary.setHtml((f"<p><b>{_e(SITE_CARD_NOTE)}</b> {_e(site)}</p>" if site else "")
                             + clinician_html(card))
        self.details = QPushButton("Technical details", self)
        self.details.setCheckable(True)
        self.browser = QTextBrowser(self)
        self.browser.setHtml(model_card_html(card))
        self.browser.hide()
        self.details.toggled.connect(self._fold)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary, 1)
        lay.addWidget(self.details)
        lay.addWidget(self.browser, 1)
        lay.addWidget(buttons)

    def _fold(self, shown: bool) -> None:
        self.browser.setVisible(shown)
        self.summary.setVisible(not shown)
        self.details.setText("Back to the page for clinicians" if shown
                             else "Technical details")


SHORTCUTS: list[tuple[str, str]] = []
"""(keys, what they do), filled by the main window from its actions."""


def shortcuts_html(shortcuts: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><td><b>{_e(k)}</b></td><td>{_e(v)}</td></tr>" for k, v in shortcuts)
    mouse = [
        ("Wheel", "Zoom about the pointer"),
        ("Left drag", "Pan (draws the lesion box in box mode)"),
        ("Right drag", "Brightness/contrast: left-right = window width, up-down = level"),
        ("Double-click", "Fit the image to the window"),
    ]
    mrows = "".join(f"<tr><td><b>{_e(k)}</b></td><td>{_e(v)}</td></tr>" for k, v in mouse)
    return (f"<h3>Keyboard</h3><table cellpadding='3'>{rows}</table>"
            f"<h3>Mouse</h3><table cellpadding='3'>{mrows}</table>")


class ShortcutsDialog(QDialog):
    """Lists the keyboard shortcuts and mouse gestures."""

    def __init__(self, shortcuts: Sequence[tuple[str, str]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 560)
        self.browser = QTextBrowser(self)
        self.browser.setHtml(shortcuts_html(shortcuts))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)


def about_html(model_version: str = "", device: str = "") -> str:
    return (
        f"<h2>RcdNet Desktop {_e(APP_VERSION)}</h2>"
        "<p>Breast ultrasound viewer with benign/malignant decision support and Grad-CAM "
        "evidence maps, after Liu et al. 2025, <i>Accurate classification of benign and "
        "malignant breast tumors in ultrasound imaging with an enhanced deep learning "
        "model</i> (Front. Bioeng. Biotechnol. 13:1526260).</p>"
        f"<p><b>{_e(NOT_A_DIAGNOSIS)}</b> Read the model card (Help menu) for what the model "
        "was trained on, how it was tested and what it must not be used for.</p>"
        + (f"<p>Model {_e(model_version)}" + (f" on {_e(device)}" if device else "") + "</p>"
           if model_version else "")
        + "<p>Licence: Apache-2.0. Built with PySide6 (Qt), PyTorch, pydicom and "
        "pytorch-grad-cam.</p>"
    )


class AboutDialog(QDialog):
    def __init__(self, model_version: str = "", device: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About RcdNet Desktop")
        label = QLabel(about_html(model_version, device), self)
        label.setWordWrap(True)
        label.setOpenExternalLinks(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok, self)
        buttons.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(label)
        lay.addWidget(buttons)
        self.resize(480, 300)
