"""The prediction in words and numbers, the model version, the input mode and the warnings."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QProgressBar, QVBoxLayout, QWidget

from rcdnet_desktop.core.types import Prediction

NOT_A_DIAGNOSIS = "Decision support, not a diagnosis."
UNTRAINED_TEXT = ("UNTRAINED MODEL: never trained on breast ultrasound. Its outputs are "
                  "arbitrary and must not inform any decision.")
COLOURS = {"benign": "#2e7d32", "malignant": "#c62828"}


class PredictionPanel(QWidget):
    """Shows one :class:`~rcdnet_desktop.core.types.Prediction`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.untrained_banner = QLabel(UNTRAINED_TEXT, self)
        self.untrained_banner.setWordWrap(True)
        self.untrained_banner.setStyleSheet(
            "background: #b71c1c; color: white; font-weight: bold; padding: 6px;"
            "border-radius: 3px;")
        self.untrained_banner.hide()
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
        self.mode = QLabel(self)
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
        lay = QVBoxLayout(self)
        lay.addWidget(self.untrained_banner)
        lay.addWidget(self.label)
        lay.addWidget(self.probability)
        lay.addWidget(self.bar)
        lay.addWidget(self.mode)
        lay.addWidget(self.version)
        lay.addWidget(self.warnings)
        lay.addWidget(self.note)
        self._prediction: Prediction | None = None
        self.set_waiting("No image open")

    def set_untrained(self, untrained: bool) -> None:
        self.untrained_banner.setVisible(bool(untrained))

    def untrained_shown(self) -> bool:
        return not self.untrained_banner.isHidden()

    def set_model_version(self, version: str) -> None:
        self.version.setText(f"Model version {version}" if version else "")

    def set_waiting(self, text: str, mode: str = "") -> None:
        """No prediction yet: say why (loading model, classifying, unreadable file...)."""
        self._prediction = None
        self.label.setText(text)
        self.label.setStyleSheet("font-size: 14pt; font-weight: bold; color: palette(mid);")
        self.probability.setText("")
        self.bar.setValue(0)
        self.bar.setEnabled(False)
        if mode:
            self.mode.setText(f"Input: {mode}")
        self.warnings.hide()

    def set_prediction(self, p: Prediction) -> None:
        self._prediction = p
        words = p.label.capitalize()
        if p.untrained:
            words = f"UNTRAINED {words.lower()}"
        colour = COLOURS.get(p.label, "palette(text)")
        self.label.setStyleSheet(f"font-size: 20pt; font-weight: bold; color: {colour};")
        self.label.setText(words)
        self.probability.setText(f"P(malignant) = {p.p_malignant:.2f}")
        self.bar.setEnabled(True)
        self.bar.setValue(int(round(1000 * p.p_malignant)))
        self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }}")
        self.set_mode(p.mode if p.roi is None else
                      f"lesion box {p.roi.w}x{p.roi.h} at ({p.roi.x}, {p.roi.y})")
        self.set_model_version(p.model_version)
        if p.untrained:
            self.set_untrained(True)
        # The banner already says UNTRAINED; do not repeat it as a warning.
        warnings = [w for w in p.warnings if not (p.untrained and "UNTRAINED" in w)]
        if warnings:
            self.warnings.setText("Warning: " + " ".join(warnings))
            self.warnings.show()
        else:
            self.warnings.hide()

    def set_mode(self, mode: str) -> None:
        self.mode.setText(f"Input: {mode}")

    def prediction(self) -> Prediction | None:
        return self._prediction

    def mode_text(self) -> str:
        return self.mode.text()
