"""Export of the image on display in every format of the core's export table.

The formats (:data:`rcdnet_desktop.core.export.formats.EXPORT_FORMATS`), the rendering and the
atomic, never-overwriting writes are :mod:`rcdnet_desktop.core.export`'s; this module asks the
user which format, where, whether to include the patient's name and ID (unticked by default),
and before replacing a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.export.deidentify import burned_in_warning
from rcdnet_desktop.core.export.formats import (
    EXPORT_FORMATS,
    export_file_name,
    export_format,
    write_report,
)
from rcdnet_desktop.core.measure import Measured
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.types import HeatMaps, ImageRecord


@dataclass
class ExportJob:
    """Everything an export needs: the frame on display, its heat maps and measurements."""

    record: ImageRecord
    pixels: np.ndarray
    heatmaps: HeatMaps
    frame: int
    colormap: str
    alpha: float
    operating_point: OperatingPoint | None = None  # the model's cut-off, for its meaning
    measurements: tuple[Measured, ...] = ()


def default_name(record: ImageRecord, frame: int, fmt: str) -> str:
    return export_file_name(record, frame, fmt)


def render_export(job: ExportJob, include_patient: bool = False,
                  when: datetime | None = None):
    """The core's report (image, layout, text) of what is on display."""
    # The export modules (~0.2 s) load with the first export, not with the window.
    from rcdnet_desktop.core.export.report import ReportOptions, render_report

    return render_report(job.pixels, job.heatmaps, ReportOptions.of_record(
        job.record, include_patient=include_patient, when=when, colormap=job.colormap,
        alpha=job.alpha, operating_point=job.operating_point, measurements=job.measurements))


def write_export(job: ExportJob, fmt: str, path: str | Path, include_patient: bool = False,
                 overwrite: bool = False, when: datetime | None = None) -> Path:
    """Render and write one export; return the written path.

    Raises
    ------
    rcdnet_desktop.core.export.ExportExistsError
        The file exists and ``overwrite`` is False.
    rcdnet_desktop.core.export.ExportError, ValueError
        It could not be written; the message says why.
    """
    export_format(fmt)  # an unknown format fails before anything is rendered
    report = render_export(job, include_patient, when or datetime.now().astimezone())
    return write_report(fmt, path, job.record, report, include_patient=include_patient,
                        overwrite=overwrite)


PATIENT_CHOICE = "Include patient name and ID"
DICOM_IDENTITY_CHOICE = "For the PACS: keep the source's patient and study"
DICOM_IDENTITY_NOTE = ("Ticked, the file carries the patient's name and ID and belongs to the "
                       "source's study, as a PACS needs. Unticked, it is de-identified for "
                       "teaching or sharing: no identifiers, a new study, no study date, and "
                       "the image blanked outside its ultrasound regions.")


class ExportDialog(QDialog):
    """Choose the format, the file and whether to include patient identifiers."""

    def __init__(self, record: ImageRecord, frame: int, fmt: str = "png", folder: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.record = record
        self.frame = frame
        self.folder = folder or str(record.path.parent)
        self.buttons = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"Export <b>{record.path.name}</b>"
                             + (f", frame {frame + 1}" if record.frame_count > 1 else "")
                             + " with both heat maps, the prediction and the model version.",
                             self))
        for entry in EXPORT_FORMATS:
            rb = QRadioButton(entry.label, self)
            if entry.needs_dicom_source and not record.is_dicom:
                rb.setEnabled(False)
                rb.setToolTip("Only for images opened from DICOM files")
                rb.setText(entry.label + " (DICOM sources only)")
            self.radios[entry.key] = rb
            self.buttons.addButton(rb)
            lay.addWidget(rb)
        if fmt not in self.radios or not self.radios[fmt].isEnabled():
            fmt = EXPORT_FORMATS[0].key
        self.radios[fmt].setChecked(True)
        row = QHBoxLayout()
        self.path_edit = QLineEdit(self)
        self.path_edit.setMinimumWidth(380)
        browse = QPushButton("Browse...", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        lay.addLayout(row)
        self.include_patient = QCheckBox("Include patient name and ID", self)
        self.include_patient.setChecked(False)
        if record.patient.is_empty():
            self.include_patient.setToolTip("This image carries no patient identifiers")
        self.identity_note = QLabel("", self)
        self.identity_note.setWordWrap(True)
        self._update_include_patient()
        self.include_patient.toggled.connect(self._update_include_patient)
        lay.addWidget(self.include_patient)
        lay.addWidget(self.identity_note)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                              | QDialogButtonBox.StandardButton.Cancel, self)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.buttons.buttonToggled.connect(self._format_changed)
        self._set_default_path()

    def format(self) -> str:
        for key, rb in self.radios.items():
            if rb.isChecked():
                return key
        return EXPORT_FORMATS[0].key

    def path(self) -> str:
        return self.path_edit.text().strip()

    def _set_default_path(self) -> None:
        self.path_edit.setText(str(Path(self.folder) /
                                   default_name(self.record, self.frame, self.format())))

    def _update_include_patient(self) -> None:
        can = export_format(self.format()).can_include_patient
        self.include_patient.setEnabled(can and not self.record.patient.is_empty())
        if not self.include_patient.isEnabled():
            self.include_patient.setChecked(False)
        dicom = export_format(self.format()).needs_dicom_source  # a DICOM object
        self.include_patient.setText(DICOM_IDENTITY_CHOICE if dicom else PATIENT_CHOICE)
        note = DICOM_IDENTITY_NOTE if dicom else ""
        if self.format() != "sr":  # the SR has no pixels
            warning = burned_in_warning(self.record,
                                        include_patient=self.include_patient.isChecked())
            if warning:
                note = f"{note} {warning}".strip()
        self.identity_note.setText(note)
        self.identity_note.setVisible(bool(note))

    def _format_changed(self, *_args) -> None:
        self._update_include_patient()
        current = Path(self.path()) if self.path() else None
        suffix = export_format(self.format()).suffix
        defaults = {default_name(self.record, self.frame, f.key) for f in EXPORT_FORMATS}
        if current is not None and current.name not in defaults \
                and current.suffix.lower() in {f.suffix for f in EXPORT_FORMATS}:
            self.path_edit.setText(str(current.with_suffix(suffix)))
        else:  # a default name follows the format (the SC and the SR share a suffix)
            self.path_edit.setText(str((current.parent if current else Path(self.folder))
                                       / default_name(self.record, self.frame, self.format())))

    def _browse(self) -> None:
        fmt = export_format(self.format())
        path, _ = QFileDialog.getSaveFileName(
            self, "Export to", self.path() or self.folder, fmt.file_filter,
            options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            if not Path(path).suffix:
                path += fmt.suffix
            self.path_edit.setText(path)
