"""The banner above the image: whose image it is and from which study.

Two lines from :func:`rcdnet_desktop.core.context.banner`: the patient (name, ID, birth date)
in bold, the study (date, description, modality, scanner) under it; a plain image file says it
has no patient data. On screen only: exports leave the patient out unless asked.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from rcdnet_desktop.core.context import NO_PATIENT_DATA, Banner


class PatientBanner(QFrame):
    """The patient and study of the image on display (hidden when none is open)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("patient_banner")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setStyleSheet("#patient_banner { border-bottom: 1px solid palette(mid); }")
        self.patient = QLabel(self)
        self.study = QLabel(self)
        for label in (self.patient, self.study):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setTextFormat(Qt.TextFormat.PlainText)
            # Wrapped, never cut: a long name or description must neither be hidden nor widen
            # the window beyond the screen.
            label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 3, 8, 3)
        lay.setSpacing(1)
        lay.addWidget(self.patient)
        lay.addWidget(self.study)
        self.set_banner(None)

    def set_banner(self, banner: Banner | None) -> None:
        """Show ``banner``; None hides the banner (nothing read yet)."""
        self.patient.setText(banner.patient if banner is not None else "")
        plain = banner is not None and banner.patient == NO_PATIENT_DATA
        self.patient.setStyleSheet("font-size: 11pt; font-style: italic;" if plain
                                   else "font-size: 11pt; font-weight: bold;")
        self.study.setText(banner.study if banner is not None else "")
        self.study.setVisible(bool(self.study.text()))
        self.setVisible(banner is not None)

    def text(self) -> str:
        """The banner's words, both lines ("" when hidden)."""
        if self.isHidden():
            return ""
        return "\n".join(t for t in (self.patient.text(), self.study.text()) if t)
