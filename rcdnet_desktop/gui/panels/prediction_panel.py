"""The prediction in words and numbers: warnings first, then the band, probability and input.

The result's words, numbers and tone come from :func:`rcdnet_desktop.core.result.describe`
(shared with the image list, the batch table and every export), at the model card's operating
point (:class:`~rcdnet_desktop.core.operating_point.OperatingPoint`); the input and warning
words from :mod:`rcdnet_desktop.gui.wording`; the colours from :mod:`rcdnet_desktop.gui.theme`.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from rcdnet_desktop.core.lexicon import (
    SECTION_TITLE,
    SUGGESTIONS_NOTE,
    descriptor_note,
    descriptor_words,
    shown_descriptors,
)
from rcdnet_desktop.core.measure import Calibration
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.result import SUSPICIOUS_TIP, describe, no_lesion_found
from rcdnet_desktop.core.types import Prediction
from rcdnet_desktop.gui import theme, wording

NOT_A_DIAGNOSIS = "Decision support, not a diagnosis."
UNTRAINED_TEXT = ("UNTRAINED MODEL: never trained on breast ultrasound. Its outputs are "
                  "arbitrary and must not inform any decision.")
WARNING_BANNER_STYLE = ("background: #ffb74d; color: #1b1b1b; border: 2px solid #e65100;"
                        "padding: 6px; border-radius: 3px; font-weight: bold;")
"""Amber with dark text: reads the same on the dark and the light theme."""
_SUGGESTIONS = SUGGESTIONS_NOTE[0].upper() + SUGGESTIONS_NOTE[1:] + "."
SHORT_NOTE = "Suggestions, not a BI-RADS assessment (hover for how they were measured)."
DECISION_TIP = ("The decision at the model's suspicious cut-off: suspicious at or above it, "
                "below the cut-off under it. A result below it does not rule cancer out.")
CAVEAT_STYLE = ("border: 2px solid #e65100; padding: 6px; border-radius: 3px;")
"""What limits the result (no lesion box, a box-dependent result): framed, in the text colour."""


def _wrapped(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class PredictionPanel(QWidget):
    """Shows one :class:`~rcdnet_desktop.core.types.Prediction`.

    From the top: the UNTRAINED banner, a warning banner (intended-use and other warnings, in
    words), the headline (band and decision; "No lesion found: draw a box around the lesion"
    first when the localiser found none), coloured by the result's tone (red when suspicious,
    green only in the BI-RADS 3 range, amber outside intended use, neutral otherwise), the
    calibrated probability with its bar and the decision (small), what the suspicious cut-off
    means at the measured sensitivity, what the band means, what limits the result (the whole
    image used, a box-dependent result), the input, the model version and the decision-support
    note. What the model sees in the box in the BI-RADS lexicon's words (or that it needs a box)
    is :attr:`lexicon`, a widget of its own that the window places under the heat maps, so the
    maps stay in view on a 720-pixel-high screen.
    Every text wraps, so the panel is never cut off at its width.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.untrained_banner = _wrapped(UNTRAINED_TEXT, self)
        self.untrained_banner.setStyleSheet(
            "background: #b71c1c; color: white; font-weight: bold; padding: 6px;"
            "border-radius: 3px;")
        self.untrained_banner.hide()
        self.warnings = _wrapped("", self)  # the warning banner, above the result
        self.warnings.setStyleSheet(WARNING_BANNER_STYLE)
        self.warnings.hide()
        self.headline = _wrapped("", self)
        self.probability = _wrapped("", self)
        self.label = _wrapped("", self)  # the decision; the waiting text without a result
        self.label.setToolTip(DECISION_TIP)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(10)
        self.bar.setToolTip("Calibrated probability of malignancy (0 left, 1 right)")
        self.cutoff = _wrapped("", self)
        self.cutoff.setStyleSheet("font-size: 9pt;")
        self.cutoff.hide()
        self.site = _wrapped("", self)  # the site profile in use (result.site_sentence)
        self.site.setStyleSheet("font-size: 9pt;")
        self.site.hide()
        self.band_note = _wrapped("", self)
        self.band_note.setStyleSheet("font-size: 9pt;")
        self.caveats = _wrapped("", self)
        self.caveats.setStyleSheet(CAVEAT_STYLE)
        self.caveats.hide()
        self.mode = _wrapped("", self)
        self.lexicon = _wrapped("", self)
        self.lexicon.setTextFormat(Qt.TextFormat.RichText)
        self.lexicon.setFrameShape(QFrame.Shape.StyledPanel)
        self.lexicon.setStyleSheet("padding: 4px;")
        self.lexicon.setToolTip(_SUGGESTIONS)
        self.lexicon.hide()
        self.version = _wrapped("", self)
        self.note = _wrapped(f"<b>{NOT_A_DIAGNOSIS}</b> The clinician's own reading decides.",
                             self)
        self.note.setFrameShape(QFrame.Shape.StyledPanel)
        self.note.setStyleSheet("padding: 4px;")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.probability, 1)
        row.addWidget(self.label, 0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom)
        lay = QVBoxLayout(self)
        lay.addWidget(self.untrained_banner)
        lay.addWidget(self.warnings)
        lay.addWidget(self.headline)
        lay.addLayout(row)
        lay.addWidget(self.bar)
        lay.addWidget(self.cutoff)
        lay.addWidget(self.site)
        lay.addWidget(self.band_note)
        lay.addWidget(self.caveats)
        lay.addWidget(self.mode)
        lay.addWidget(self.version)
        lay.addWidget(self.note)
        self._prediction: Prediction | None = None
        self._waiting = ("No image open", "")
        self.operating_point = OperatingPoint.from_card(None)
        self._calibration: Calibration | None = None
        self.set_waiting("No image open")

    def set_calibration(self, calibration: Calibration | None) -> None:
        """The scale of the image on display: the lesion box's size is given in mm too."""
        self._calibration = calibration

    def set_untrained(self, untrained: bool) -> None:
        self.untrained_banner.setVisible(bool(untrained))

    def untrained_shown(self) -> bool:
        return not self.untrained_banner.isHidden()

    def set_model_version(self, version: str) -> None:
        self.version.setText(f"Model version {version}" if version else "")

    def set_operating_point(self, op: OperatingPoint) -> None:
        """The loaded model's cut-off and measured sensitivity (from its card)."""
        self.operating_point = op
        self.refresh()

    def set_waiting(self, text: str, mode: str = "") -> None:
        """No prediction yet: say why (loading model, classifying, unreadable file...)."""
        self._prediction = None
        self._waiting = (text, mode)
        self.headline.setText("")
        self.headline.hide()
        self.label.setText(text)
        self.label.setStyleSheet(f"font-size: 13pt; font-weight: bold; "
                                 f"color: {theme.colour('muted')};")
        self.probability.setText("")
        self.bar.setValue(0)
        self.bar.setEnabled(False)
        self.cutoff.hide()
        self.site.hide()
        self.band_note.setText("")
        self.band_note.hide()
        self.caveats.hide()
        self.lexicon.hide()
        if mode:
            self.set_mode(mode)
        self.warnings.hide()

    def tone(self, p: Prediction) -> str:
        """How the headline is coloured (:func:`rcdnet_desktop.core.result.tone`)."""
        return describe(p, self.operating_point).tone

    def set_prediction(self, p: Prediction) -> None:
        self._prediction = p
        words = describe(p, self.operating_point)
        colour = theme.colour(words.tone)
        banner = wording.warning_banner(p)
        self.warnings.setText(banner)
        self.warnings.setVisible(bool(banner))
        self.headline.setText(words.headline)
        self.headline.setStyleSheet(f"font-size: 18pt; font-weight: bold; color: {colour};")
        self.headline.setToolTip(SUSPICIOUS_TIP if p.suspicious else "")
        self.headline.show()
        self.probability.setText(words.probability_line)
        self.probability.setStyleSheet("font-size: 12pt;")
        self.label.setText(f"UNTRAINED, {words.decision}" if p.untrained else
                           words.decision[:1].upper() + words.decision[1:])
        self.label.setStyleSheet(f"font-size: 9pt; color: {theme.colour('muted')};")
        self.bar.setEnabled(True)
        self.bar.setValue(int(round(1000 * p.p_malignant)))
        self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }}")
        self.cutoff.setText(words.cutoff_sentence)
        self.cutoff.setVisible(bool(words.cutoff_sentence))
        self.site.setText(words.site)
        self.site.setVisible(bool(words.site))
        self.band_note.setText(words.band_note)
        self.band_note.show()
        self.caveats.setText("\n".join(words.caveats))
        self.caveats.setVisible(bool(words.caveats))
        self.set_mode(wording.input_words(p, self._calibration))
        self._set_lexicon(p)
        self.set_model_version(p.model_version)
        if p.untrained:
            self.set_untrained(True)

    def refresh(self) -> None:
        """Show again what is shown, in the colours of the theme now in use."""
        if self._prediction is not None:
            self.set_prediction(self._prediction)
        else:
            self.set_waiting(*self._waiting)

    def _set_lexicon(self, p: Prediction) -> None:
        shown = shown_descriptors(p)  # none on an image outside intended use
        if shown:  # two columns keep the section short beside the heat maps
            cells = [f"<td>{html.escape(descriptor_words(d))}</td>" for d in shown]
            rows = "".join(f"<tr>{''.join(cells[i:i + 2])}</tr>"
                           for i in range(0, len(cells), 2))
            body = (f"<table cellspacing='0' cellpadding='1' width='100%'>{rows}</table>"
                    f"<span style='font-size: 8pt;'>{html.escape(SHORT_NOTE)}</span>")
        else:
            body = f"<br>{html.escape(descriptor_note(p))}"
        self.lexicon.setText(f"<b>{SECTION_TITLE}</b>{body}")
        self.lexicon.setVisible(bool(shown or descriptor_note(p)))

    def set_mode(self, mode: str) -> None:
        self.mode.setText(f"Input: {mode}")

    def prediction(self) -> Prediction | None:
        return self._prediction

    def mode_text(self) -> str:
        return self.mode.text()

    def headline_text(self) -> str:
        return self.headline.text() if not self.headline.isHidden() else ""

    def warning_text(self) -> str:
        """The warning banner's words ("" when there is none)."""
        return self.warnings.text() if not self.warnings.isHidden() else ""

    def lexicon_text(self) -> str:
        """The lexicon section as plain text ("" while hidden)."""
        if self.lexicon.isHidden():
            return ""
        doc = QTextDocument()
        doc.setHtml(self.lexicon.text())
        return doc.toPlainText()

    def no_lesion_shown(self) -> bool:
        """The headline says no lesion was found and asks for a box."""
        p = self._prediction
        return p is not None and no_lesion_found(p) and not self.headline.isHidden()

    def site_text(self) -> str:
        """The site profile in use, as shown ("" under the model card's operating point)."""
        return self.site.text() if not self.site.isHidden() else ""

    def caveat_text(self) -> str:
        """What limits the result, as shown ("" when nothing does)."""
        return self.caveats.text() if not self.caveats.isHidden() else ""
