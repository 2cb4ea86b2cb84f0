"""PACS > Send result to PACS...: the result on display as a DICOM SR (and Secondary Capture).

Both belong to the source's study, with its patient, so the PACS files them with the images
they explain; they are built and sent off the GUI thread, and what the PACS answered is shown
in words (stored, stored with changes, refused, or why the connection failed).
"""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.pacs import StoreResult
from rcdnet_desktop.core.result import band_and_decision, probability_text
from rcdnet_desktop.gui.dialogs.export_dialog import ExportJob, render_export
from rcdnet_desktop.gui.pacs.jobs import JobDialog, PacsJob
from rcdnet_desktop.gui.pacs.login import logged_in, ready_node
from rcdnet_desktop.gui.pacs.nodes import last_node, pacs_nodes, set_last_node
from rcdnet_desktop.gui.settings import Settings


def result_datasets(job: ExportJob, with_sc: bool) -> list:
    """The SR (and SC) of what is on display, with the source's patient and study."""
    from rcdnet_desktop.core.export.dicom_sc import dicom_sc_dataset
    from rcdnet_desktop.core.export.dicom_sr import dicom_sr_dataset

    datasets = [dicom_sr_dataset(job.record, job.heatmaps.prediction, include_patient=True,
                                 measurements=job.measurements)]
    if with_sc:
        report = render_export(job, include_patient=True)
        datasets.append(dicom_sc_dataset(job.record, report, include_patient=True))
    return datasets


class PacsSendDialog(JobDialog):
    """Choose the node (and whether to add the SC) and send."""

    def __init__(self, job: ExportJob, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Send result to PACS")
        self.export_job = job
        self.settings = settings
        self.job: PacsJob | None = None
        self.result: StoreResult | None = None
        self.nodes = pacs_nodes(settings)
        self.node = QComboBox(self)
        for n in self.nodes:
            self.node.addItem(n.label, n.name)
        self.node.setCurrentIndex(max(self.node.findData(last_node(settings)), 0))
        self.with_sc = QCheckBox("Also send the annotated image (Secondary Capture)", self)
        self.with_sc.setChecked(True)
        pred, patient = job.heatmaps.prediction, job.record.patient
        who = escape(f"{patient.name.replace('^', ' ').strip() or '(no name)'}, ID "
                     f"{patient.patient_id or '(none)'}")
        flagged = ("<br><span style='color:#b00020'>Outside intended use: the report says "
                   "so.</span>" if pred.outside_intended_use else "")
        note = QLabel(f"<b>{escape(job.record.path.name)}</b> of {who}: "
                      f"{escape(band_and_decision(pred))}, P(malignant) "
                      f"{probability_text(pred)}."
                      f"{flagged}<br>A structured report goes to the PACS with the source's "
                      "patient and study, so it is filed with the images it explains.", self)
        note.setWordWrap(True)
        self.status = QLabel("" if self.nodes else "No PACS is configured: add one under "
                             "PACS > PACS nodes...", self)
        self.status.setWordWrap(True)
        self.send_button = QPushButton("Send", self)
        self.send_button.setDefault(True)
        self.send_button.setEnabled(bool(self.nodes))
        self.cancel_button = QPushButton("Cancel", self)
        self.close_button = QPushButton("Close", self)
        self.cancel_button.setEnabled(False)
        lay = QVBoxLayout(self)
        lay.addWidget(note)
        row = QHBoxLayout()
        row.addWidget(QLabel("PACS", self))
        row.addWidget(self.node, 1)
        lay.addLayout(row)
        lay.addWidget(self.with_sc)
        lay.addWidget(self.status)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.send_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.send_button.clicked.connect(self.send)
        self.cancel_button.clicked.connect(lambda: self.job and self.job.cancel())
        self.close_button.clicked.connect(self.close)

    def send(self) -> None:
        from rcdnet_desktop.core.pacs import store

        i = self.node.currentIndex()
        if not 0 <= i < len(self.nodes) or (self.job is not None and self.job.busy):
            return
        node, export_job, with_sc = self.nodes[i], self.export_job, self.with_sc.isChecked()
        set_last_node(self.settings, node.name)
        ready = ready_node(self, node)
        if ready is None:
            self._show(f"Not logged in to {node.label}: nothing sent.")
            return
        node = ready

        def run(cancel, _progress):
            return logged_in(node, lambda: store(node, result_datasets(export_job, with_sc),
                                                 cancel=cancel))

        self.job = PacsJob(run, self, "store")
        self.job.done.connect(self._sent)
        self.job.failed.connect(lambda m: self._show(f"Not sent: {m}", error=True))
        self.job.cancelled.connect(lambda: self._show("Cancelled."))
        self.status.setText(f"Sending to {node.label}...")
        self.send_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.job.start()

    def _sent(self, result: StoreResult) -> None:
        self.result = result
        self._show(("Sent: " if result.ok else "Not everything was taken: ")
                   + result.summary() + ".", error=not result.ok)

    def _show(self, text: str, error: bool = False) -> None:
        self.show_status(text, error)
        self.send_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
