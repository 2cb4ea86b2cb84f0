"""Exporting what the main window shows: annotated PNG, PDF report, DICOM Secondary Capture.

Plain functions over explicit inputs. The export is made of the very heat maps on display (the
controller's for the key on display), so it draws and describes the same lesion box as the
screen: the box of those maps' prediction. The files themselves are written by
:mod:`rcdnet_desktop.gui.dialogs.export_dialog` and :mod:`rcdnet_desktop.core.export`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from rcdnet_desktop.gui.dialogs.export_dialog import ExportJob
from rcdnet_desktop.gui.panels.heatmap_panel import HeatmapPanel
from rcdnet_desktop.gui.session.engine import engine_operating_point
from rcdnet_desktop.gui.window.viewer_controller import ViewerController

NOTHING_YET = "Nothing to export yet: wait for the heat maps."


def export_job(controller: ViewerController, panel: HeatmapPanel) -> ExportJob | None:
    """The export inputs for what is on display, or None when its maps are not known yet."""
    doc = controller.current
    maps = controller.current_maps()
    if doc is None or doc.record is None or maps is None:
        return None

    pixels = controller.frames.get(doc, doc.frame)
    return ExportJob(doc.record, pixels, maps, doc.frame, panel.colormap_name(), panel.alpha(),
                     operating_point=engine_operating_point(controller.engine),
                     measurements=controller.measured())


def confirm_overwrite(parent: QWidget, path: Path) -> bool:
    """Ask before replacing a file."""
    answer = QMessageBox.question(parent, "Replace file?", f"{path} already exists.\nReplace it?")
    return answer == QMessageBox.StandardButton.Yes


def export_to(job: ExportJob, fmt: str, path: str | Path, include_patient: bool,
              confirm: Callable[[Path], bool], notify: Callable[[str], object]) -> Path | None:
    """Write one export of ``job``; ``confirm`` before replacing a file, ``notify`` a failure.

    Returns the file written, or None (declined or failed).
    """
    # The export modules (~0.2 s) load with the first export, not with the window.
    from rcdnet_desktop.core.export import ExportError, ExportExistsError
    from rcdnet_desktop.gui.dialogs.export_dialog import write_export

    path = Path(path)
    overwrite = False
    if path.exists():
        if not confirm(path):
            return None
        overwrite = True
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        try:
            return write_export(job, fmt, path, include_patient, overwrite=overwrite)
        except ExportExistsError:
            QApplication.restoreOverrideCursor()
            if not confirm(path):
                QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
                return None
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            return write_export(job, fmt, path, include_patient, overwrite=True)
    except (ExportError, ValueError, OSError) as exc:
        notify(f"Export failed: {exc}")
        return None
    except Exception as exc:  # a library's own failure: told, and the window goes on
        notify(f"Export failed: unexpected {type(exc).__name__}: {exc}")
        return None
    finally:
        QApplication.restoreOverrideCursor()


def ask_export(parent: QWidget, job: ExportJob, fmt: str, folder: str) -> tuple[str, str, bool]:
    """The export dialog: (format, path, include patient), or a path "" when cancelled."""
    # The export modules (~0.2 s) load with the first export, not with the window.
    from rcdnet_desktop.gui.dialogs.export_dialog import ExportDialog

    dlg = ExportDialog(job.record, job.frame, fmt, folder, parent)
    if dlg.exec() != ExportDialog.DialogCode.Accepted or not dlg.path():
        return fmt, "", False
    return dlg.format(), dlg.path(), dlg.include_patient.isChecked()
