"""Export of the image on display: annotated PNG, PDF report, DICOM Secondary Capture.

The rendering and the atomic, never-overwriting writes are :mod:`rcdnet_desktop.core.export`'s;
this module asks the user where, whether to include the patient's name and ID (unticked by
default), and before replacing a file.
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

from rcdnet_desktop.core.types import HeatMaps, ImageRecord

FORMATS = {
    "png": ("Annotated image (PNG)", ".png", "PNG images (*.png)"),
    "pdf": ("One-page report (PDF)", ".pdf", "PDF files (*.pdf)"),
    "dicom": ("DICOM Secondary Capture", ".dcm", "DICOM files (*.dcm)"),
}


@dataclass
class ExportJob:
    """Everything an export needs: the frame on display and its heat maps."""

    record: ImageRecord
    pixels: np.ndarray
    heatmaps: HeatMaps
    frame: int
    colormap: str
    alpha: float


def default_name(record: ImageRecord, frame: int, fmt: str) -> str:
    stem = record.path.stem or "image"
    if record.frame_count > 1:
        stem += f"_frame{frame + 1}"
    return f"{stem}_rcdnet{FORMATS[fmt][1]}"


def render_export(job: ExportJob, include_patient: bool = False,
                  when: datetime | None = None):
    """The core's report (image, layout, text) of what is on display."""
    from rcdnet_desktop.core.export.report import render_report

    return render_report(job.pixels, job.heatmaps,
                         when=when or datetime.now().astimezone(),
                         patient=job.record.patient if include_patient else None,
                         colormap=job.colormap, alpha=job.alpha,
                         source_name=job.record.path.name)


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
    from rcdnet_desktop.core import export

    when = when or datetime.now().astimezone()
    report = render_export(job, include_patient, when)
    if fmt == "png":
        return export.export_png(path, report, overwrite=overwrite)
    if fmt == "pdf":
        return export.export_pdf(path, report, overwrite=overwrite)
    if fmt == "dicom":
        if not job.record.is_dicom:
            raise ValueError("DICOM export needs a DICOM source image")
        return export.export_dicom_sc(path, job.record, report, include_patient=include_patient,
                                      overwrite=overwrite, when=when, frame=job.frame)
    raise ValueError(f"unknown export format {fmt!r}")


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
        for key, (label, _suffix, _filt) in FORMATS.items():
            rb = QRadioButton(label, self)
            self.radios[key] = rb
            self.buttons.addButton(rb)
            lay.addWidget(rb)
        dicom = self.radios["dicom"]
        if not record.is_dicom:
            dicom.setEnabled(False)
            dicom.setToolTip("Only for images opened from DICOM files")
            dicom.setText(FORMATS["dicom"][0] + " (DICOM sources only)")
        if fmt == "dicom" and not record.is_dicom:
            fmt = "png"
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
            self.include_patient.setEnabled(False)
            self.include_patient.setToolTip("This image carries no patient identifiers")
        lay.addWidget(self.include_patient)
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
        return "png"

    def path(self) -> str:
        return self.path_edit.text().strip()

    def _set_default_path(self) -> None:
        self.path_edit.setText(str(Path(self.folder) /
                                   default_name(self.record, self.frame, self.format())))

    def _format_changed(self, *_args) -> None:
        current = Path(self.path()) if self.path() else None
        suffix = FORMATS[self.format()][1]
        if current is not None and current.suffix.lower() in {v[1] for v in FORMATS.values()}:
            self.path_edit.setText(str(current.with_suffix(suffix)))
        else:
            self._set_default_path()

    def _browse(self) -> None:
        fmt = self.format()
        path, _ = QFileDialog.getSaveFileName(
            self, "Export to", self.path() or self.folder, FORMATS[fmt][2],
            options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            if not Path(path).suffix:
                path += FORMATS[fmt][1]
            self.path_edit.setText(path)
