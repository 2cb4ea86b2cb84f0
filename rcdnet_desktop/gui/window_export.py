"""Exporting what the main window shows: annotated PNG, PDF report, DICOM Secondary Capture.

A mixin of :class:`~rcdnet_desktop.gui.main_window.MainWindow`; the files themselves are
written by :mod:`rcdnet_desktop.gui.export_dialog` and :mod:`rcdnet_desktop.core.export`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox


class WindowExport:
    """Export of the image on display with its maps (asks before replacing a file)."""

    def export_job(self):
        """The export inputs for what is on display, or None when the maps are not ready."""
        from rcdnet_desktop.gui.export_dialog import ExportJob

        key = self._current_key()
        doc = self.current
        if key is None or doc is None:
            return None
        maps = self.heatmap_cache.get(key)
        if maps is None:
            return None
        pixels = self.frames.get(doc, doc.frame)
        return ExportJob(doc.record, pixels, maps, doc.frame, self.heatmaps.colormap_name(),
                         self.heatmaps.alpha())

    def export_dialog(self, fmt: str = "png") -> None:
        from rcdnet_desktop.gui.export_dialog import ExportDialog

        job = self.export_job()
        if job is None:
            self.notify("Nothing to export yet: wait for the heat maps.")
            return
        dlg = ExportDialog(job.record, job.frame, fmt, self.settings.export_folder, self)
        if dlg.exec() != ExportDialog.DialogCode.Accepted or not dlg.path():
            return
        written = self.export_to(dlg.format(), dlg.path(), dlg.include_patient.isChecked())
        if written is not None:
            self.settings.export_folder = str(Path(written).parent)

    def confirm_overwrite(self, path: Path) -> bool:
        """Ask before replacing a file (tests replace this)."""
        answer = QMessageBox.question(self, "Replace file?",
                                      f"{path} already exists.\nReplace it?")
        return answer == QMessageBox.StandardButton.Yes

    def export_to(self, fmt: str, path: str | Path, include_patient: bool = False) -> Path | None:
        """Export what is on display; asks before overwriting. Returns the file or None."""
        from rcdnet_desktop.core.export import ExportError, ExportExistsError
        from rcdnet_desktop.gui.export_dialog import write_export

        job = self.export_job()
        if job is None:
            self.notify("Nothing to export yet: wait for the heat maps.")
            return None
        path = Path(path)
        overwrite = False
        if path.exists():
            if not self.confirm_overwrite(path):
                return None
            overwrite = True
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            try:
                written = write_export(job, fmt, path, include_patient, overwrite=overwrite)
            except ExportExistsError:
                QApplication.restoreOverrideCursor()
                if not self.confirm_overwrite(path):
                    return None
                QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
                written = write_export(job, fmt, path, include_patient, overwrite=True)
        except (ExportError, ValueError, OSError) as exc:
            self.notify(f"Export failed: {exc}")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        self.statusBar().showMessage(f"Saved {written}", 8000)
        return written
