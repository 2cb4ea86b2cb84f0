"""The prediction in words and numbers: likelihood band, class, probability, input and warnings.

The words come from :mod:`rcdnet_desktop.gui.wording`, shared with the image list and the batch
table.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from rcdnet_desktop.core.lexicon import (
    SECTION_TITLE,
    SUGGESTIONS_NOTE,
    descriptor_words,
)
from rcdnet_desktop.core.measure import Calibration
from rcdnet_desktop.core.types import Prediction
from rcdnet_desktop.gui import wording

NOT_A_DIAGNOSIS = "Decision support, not a diagnosis."
UNTRAINED_TEXT = ("UNTRAINED MODEL: never trained on breast ultrasound. Its outputs are "
                  "arbitrary and must not inform any decision.")
_SUGGESTIONS = SUGGESTIONS_NOTE[0].upper() + SUGGESTIONS_NOTE[1:] + "."
SHORT_NOTE = "Suggestions, not a BI-RADS assessment (hover for how they were measured)."
COLOURS = {"benign": "#2e7d32", "malignant": "#c62828"}
SUSPICIOUS_COLOUR = "#c62828"
OUTSIDE_USE_COLOUR = "#e65100"  # orange: the intended-use warnings' colour, bold


class PredictionPanel(QWidget):
    """Shows one :class:`~rcdnet_desktop.core.types.Prediction`.

    From the top: the likelihood band as the headline (with "suspicious" when flagged), the
    class label beside the calibrated probability and its bar, what the band means, a notice
    when no lesion was found with confidence, the input (where the lesion box came from), what
    the model sees in the box in the BI-RADS lexicon's words (or that it needs a box),
    the model version, the other warnings and the decision-support note.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.untrained_banner = QLabel(UNTRAINED_TEXT, self)
        self.untrained_banner.setWordWrap(True)
        self.untrained_banner.setStyleSheet(
            "background: #b71c1c; color: white; font-weight: bold; padding: 6px;"
            "border-radius: 3px;")
        self.untrained_banner.hide()
        self.headline = QLabel(self)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.headline.setWordWrap(True)
        self.label = QLabel(self)
        self.label.setStyleSheet("font-size: 20pt; font-weight: bold;")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.probability = QLabel(self)
        self.probability.setStyleSheet("font-size: 12pt;")
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(14)
        self.bar.setToolTip("Calibrated probability of malignancy (0 left, 1 right)")
        self.band_note = QLabel(self)
        self.band_note.setWordWrap(True)
        self.band_note.setStyleSheet("font-size: 9pt;")
        self.no_lesion = QLabel(wording.NO_LESION_TEXT, self)
        self.no_lesion.setWordWrap(True)
        self.no_lesion.setStyleSheet(
            "background: #fff3e0; color: #6d3a00; border: 1px solid #e65100; padding: 6px;"
            "border-radius: 3px; font-weight: bold;")
        self.no_lesion.hide()
        self.mode = QLabel(self)
        self.mode.setWordWrap(True)
        self.lexicon = QLabel(self)
        self.lexicon.setWordWrap(True)
        self.lexicon.setTextFormat(Qt.TextFormat.RichText)
        self.lexicon.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lexicon.setFrameShape(QFrame.Shape.StyledPanel)
        self.lexicon.setStyleSheet("padding: 4px;")
        self.lexicon.setToolTip(_SUGGESTIONS)
        self.lexicon.hide()
        self.version = QLabel(self)
        self.warnings = QLabel(self)
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #e65100;")
        self.warnings.hide()
        self.note = QLabel(f"<b>{NOT_A_DIAGNOSIS}</b> The clinician's own reading decides.",
                           self)
        self.note.setWordWrap(True)
        self.note.setFrameShape(QFrame.Shape.StyledPanel)
        self.note.setStyleSheet("padding: 4px;")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addSpacing(12)
        row.addWidget(self.probability, 1, Qt.AlignmentFlag.AlignBottom)
        lay = QVBoxLayout(self)
        lay.addWidget(self.untrained_banner)
        lay.addWidget(self.headline)
        lay.addLayout(row)
        lay.addWidget(self.bar)
        lay.addWidget(self.band_note)
        lay.addWidget(self.no_lesion)
        lay.addWidget(self.mode)
        lay.addWidget(self.lexicon)
        lay.addWidget(self.version)
        lay.addWidget(self.warnings)
        lay.addWidget(self.note)
        self._prediction: Prediction | None = None
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

    def set_waiting(self, text: str, mode: str = "") -> None:
        """No prediction yet: say why (loading model, classifying, unreadable file...)."""
        self._prediction = None
        self.headline.setText("")
        self.headline.hide()
        self.label.setText(text)
        self.label.setStyleSheet("font-size: 14pt; font-weight: bold; color: palette(mid);")
        self.probability.setText("")
        self.bar.setValue(0)
        self.bar.setEnabled(False)
        self.band_note.setText("")
        self.band_note.hide()
        self.no_lesion.hide()
        self.lexicon.hide()
        if mode:
            self.set_mode(mode)
        self.warnings.hide()

    def set_prediction(self, p: Prediction) -> None:
        self._prediction = p
        colour = COLOURS.get(p.label, "palette(text)")
        self.headline.setText(wording.band_headline(p))
        self.headline.setStyleSheet(
            "font-size: 18pt; font-weight: bold;"
            + (f" color: {OUTSIDE_USE_COLOUR};" if p.outside_intended_use
               else f" color: {SUSPICIOUS_COLOUR};" if p.suspicious else ""))
        self.headline.setToolTip(wording.SUSPICIOUS_TIP if p.suspicious else "")
        self.headline.show()
        words = p.label.capitalize()
        if p.untrained:
            words = f"UNTRAINED {words.lower()}"
        self.label.setStyleSheet(f"font-size: 14pt; font-weight: bold; color: {colour};")
        self.label.setText(words)
        self.probability.setText(f"P(malignant) = {p.p_malignant:.2f}")
        self.bar.setEnabled(True)
        self.bar.setValue(int(round(1000 * p.p_malignant)))
        self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }}")
        self.band_note.setText(wording.band_note(p))
        self.band_note.show()
        self.no_lesion.setVisible(wording.no_lesion_found(p))
        self.set_mode(wording.input_words(p, self._calibration))
        self._set_lexicon(p)
        self.set_model_version(p.model_version)
        if p.untrained:
            self.set_untrained(True)
        warnings = wording.other_warnings(p)
        if warnings:
            self.warnings.setText("Warning: " + " ".join(warnings))
            self.warnings.show()
        else:
            self.warnings.hide()

    def _set_lexicon(self, p: Prediction) -> None:
        if p.descriptors:  # two columns keep the section short beside the heat maps
            cells = [f"<td>{html.escape(descriptor_words(d))}</td>" for d in p.descriptors]
            rows = "".join(f"<tr>{''.join(cells[i:i + 2])}</tr>"
                           for i in range(0, len(cells), 2))
            body = (f"<table cellspacing='0' cellpadding='1' width='100%'>{rows}</table>"
                    f"<span style='font-size: 8pt;'>{html.escape(SHORT_NOTE)}</span>")
        else:
            body = f"<br>{html.escape(p.descriptor_note)}"
        self.lexicon.setText(f"<b>{SECTION_TITLE}</b>{body}")
        self.lexicon.setVisible(bool(p.descriptors or p.descriptor_note))

    def set_mode(self, mode: str) -> None:
        self.mode.setText(f"Input: {mode}")

    def prediction(self) -> Prediction | None:
        return self._prediction

    def mode_text(self) -> str:
        return self.mode.text()

    def headline_text(self) -> str:
        return self.headline.text() if not self.headline.isHidden() else ""

    def lexicon_text(self) -> str:
        """The lexicon section as plain text ("" while hidden)."""
        if self.lexicon.isHidden():
            return ""
        doc = QTextDocument()
        doc.setHtml(self.lexicon.text())
        return doc.toPlainText()

    def no_lesion_shown(self) -> bool:
        return not self.no_lesion.isHidden()
