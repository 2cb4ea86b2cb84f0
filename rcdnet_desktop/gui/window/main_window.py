"""The viewer's main window: open images, see the prediction beside both evidence maps.

The window is the view: it builds the widgets, turns the user's input into calls of its
:class:`~rcdnet_desktop.gui.window.viewer_controller.ViewerController`, and shows what the
controller asks it to through :class:`~rcdnet_desktop.gui.window.view.WindowView` (its
:class:`~rcdnet_desktop.gui.window.viewer_protocols.ViewerView`). Settings, dialogs, exports and
batch reviews are its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui import theme
from rcdnet_desktop.gui.image.image_overlay import ImageOverlay
from rcdnet_desktop.gui.image.image_view import ImagePane
from rcdnet_desktop.gui.panels.heatmap_panel import HeatmapPanel
from rcdnet_desktop.gui.panels.measure_list import MeasurementList
from rcdnet_desktop.gui.panels.notice_bar import NoticeBar
from rcdnet_desktop.gui.panels.patient_banner import PatientBanner
from rcdnet_desktop.gui.panels.prediction_panel import PredictionPanel
from rcdnet_desktop.gui.panels.thumbnails import ThumbnailList
from rcdnet_desktop.gui.session.analysis import AnalysisRunner
from rcdnet_desktop.gui.session.document import Document
from rcdnet_desktop.gui.session.engine import EngineFactory, default_engine_factory
from rcdnet_desktop.gui.session.loader import ImageLoader
from rcdnet_desktop.gui.settings import DEVICES, Settings
from rcdnet_desktop.gui.window import export as window_export
from rcdnet_desktop.gui.window.actions import build_actions, fill_recent_menu, shortcut_list
from rcdnet_desktop.gui.window.cine import build_cine_timeline
from rcdnet_desktop.gui.window.context import ContextView
from rcdnet_desktop.gui.window.site_choice import SiteChoice
from rcdnet_desktop.gui.window.view import APP_TITLE, StatusLabels, WindowView
from rcdnet_desktop.gui.window.viewer_controller import ViewerController

if TYPE_CHECKING:
    # Opened on demand: each dialog's module (0.1-0.3 s) is not loaded before the window shows.
    from rcdnet_desktop.gui.batch.batch_dialog import BatchDialog
    from rcdnet_desktop.gui.dialogs.export_dialog import ExportJob

    # Opened on demand (0.3 s with the DICOM reader), not before the window shows.
    from rcdnet_desktop.gui.panels.tag_panel import DicomTagsDialog


DEFAULT_SIZE = QSize(1500, 900)
"""First-run size of the window on a screen that has room for it."""
LIST_WIDTH = 190
"""First-run width of the image list (pixels)."""
ANALYSIS_SHARE = 0.32
"""First-run share of the window's width for the prediction and evidence column."""
ANALYSIS_MIN_WIDTH = 360
CLOSE_WAIT_MS = 0
"""How long closing the window waits for a running model call: not at all (see
:func:`rcdnet_desktop.gui.app.exit_status`)."""


def first_size(window: QWidget) -> QSize:
    """The window's size before any is saved: :data:`DEFAULT_SIZE`, within the screen."""
    screen = window.screen() or QApplication.primaryScreen()
    if screen is None:
        return QSize(DEFAULT_SIZE)
    return DEFAULT_SIZE.boundedTo(screen.availableGeometry().size())


def _dock(window: QMainWindow, title: str, name: str, widget: QWidget,
          area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    window.addDockWidget(area, dock)
    return dock


class MainWindow(QMainWindow):
    """The viewer.

    Parameters
    ----------
    engine_factory : callable, optional
        ``factory(device) -> engine``; the real InferenceEngine by default (tests pass fakes).
    settings : Settings, optional
        Defaults to the user's QSettings.
    load_model : bool
        Start loading the model at once (in the background).
    device : str, optional
        "auto", "cpu", "cuda" or "mps" for this session only (the saved choice otherwise).

    Signals
    -------
    heatmaps_shown(object)
        The AnalysisKey whose maps are now on screen.
    prediction_shown(object)
        The AnalysisKey whose prediction is now on screen.
    """

    heatmaps_shown = Signal(object)
    prediction_shown = Signal(object)

    def __init__(self, engine_factory: EngineFactory | None = None,
                 settings: Settings | None = None, load_model: bool = True,
                 device: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.resize(first_size(self))
        self.settings = settings if settings is not None else Settings()
        self.batch_dialogs: list[BatchDialog] = []
        self.pacs_dialogs: list[QDialog] = []
        self._closing = False
        self.ask_open_files = None  # tests replace the file dialogs: () -> list[str]
        self.ask_folder = None  # () -> str
        self.tags_dialog: DicomTagsDialog | None = None

        theme.apply_theme(self.settings.theme)
        self._build_widgets()
        self.act = build_actions(self, self.settings)
        self.view.set_outline_visible(self.act.outline.isChecked())
        self.ui = WindowView(self, self.view, self.cine, self.thumbs, self.prediction,
                             self.heatmaps, self.notice,
                             StatusLabels(self.busy_label, self.image_label, self.model_label,
                                          self.device_label),
                             self.act, self.batch_dialogs, self.prediction_shown.emit,
                             self.heatmaps_shown.emit,
                             ContextView(self.banner, self.measures, self.view, self.prediction,
                                         lambda: self.tags_dialog))
        self.image_overlay = ImageOverlay(self.view, self.heatmaps, self.settings.image_overlay)
        self.site = SiteChoice(self.settings)
        self.analysis = AnalysisRunner(self.site.factory(engine_factory or default_engine_factory),
                                       self)
        self.loader = ImageLoader(self)
        self.controller = ViewerController(self.ui, self.analysis, self.loader,
                                           self.settings.cam_method)
        self._connect()
        self.cine_timeline = build_cine_timeline(self, self.pane, self.controller, self.analysis,
                                                 self.act.play)
        self._restore_settings()
        self.rebuild_recent()
        self.ui.update_actions(self.controller.action_state())
        self.prediction.set_waiting("Loading model..." if load_model else "No model")
        self.heatmaps.set_status("Loading model...")
        if load_model:
            start_device = device if device in DEVICES else self.settings.device
            for d, a in self.act.device.items():
                a.setChecked(d == start_device)
            QTimer.singleShot(0, lambda: self.analysis.load_engine(start_device))

    @property
    def act_outline(self) -> QAction:
        """The lesion-outline action under its earlier name (``act.outline``)."""
        return self.act.outline

    def _build_widgets(self) -> None:
        self.pane = ImagePane(self)
        self.view = self.pane.view
        self.cine = self.pane.cine
        self.notice = NoticeBar(self)
        self.banner = PatientBanner(self)
        self.measures = MeasurementList(self)
        central = QWidget(self)
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.notice)
        cl.addWidget(self.banner)
        cl.addWidget(self.pane, 1)
        cl.addWidget(self.measures)
        self.setCentralWidget(central)
        self.thumbs = ThumbnailList(self)
        self.thumbs_dock = _dock(self, "Open images", "thumbnails", self.thumbs,
                                 Qt.DockWidgetArea.LeftDockWidgetArea)
        self.prediction = PredictionPanel(self)
        self.heatmaps = HeatmapPanel(self)
        self.heatmaps.set_display(self.settings.opacity, self.settings.colormap)
        # A layout, not a splitter: the prediction panel keeps the height its wrapped text
        # needs (splitters ignore height-for-width), the maps take the rest, the lexicon
        # descriptors come under them; on a short screen the column scrolls rather than cut
        # anything off.
        analysis = QWidget(self)
        al = QVBoxLayout(analysis)
        al.setContentsMargins(0, 0, 0, 0)
        al.addWidget(self.prediction, 0)
        al.addWidget(self.heatmaps, 1)
        al.addWidget(self.prediction.lexicon, 0)
        scroll = QScrollArea(self)
        scroll.setWidget(analysis)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.analysis_dock = _dock(self, "Prediction and evidence", "analysis", scroll,
                                   Qt.DockWidgetArea.RightDockWidgetArea)
        self.analysis_dock.setMinimumWidth(ANALYSIS_MIN_WIDTH)
        self.device_label = QLabel("Loading model...", self)
        self.model_label = QLabel("", self)
        self.image_label = QLabel("", self)
        self.busy_label = QLabel("", self)
        for label in (self.busy_label, self.image_label, self.model_label, self.device_label):
            self.statusBar().addPermanentWidget(label)

    def _connect(self) -> None:
        c, a = self.controller, self.analysis
        a.engine_loading.connect(c.on_engine_loading)
        a.engine_ready.connect(c.on_engine_ready)
        a.engine_ready.connect(self._say_site_problem)
        a.engine_failed.connect(c.on_engine_failed)
        a.prediction_ready.connect(c.on_prediction)
        a.heatmaps_ready.connect(c.on_heatmaps)
        a.analysis_failed.connect(c.on_analysis_failed)
        a.busy_changed.connect(c.on_busy)
        self.loader.loaded.connect(c.on_file_loaded)
        self.loader.failed.connect(c.on_file_failed)
        self.thumbs.document_activated.connect(c.select)
        self.view.box_drawn.connect(self._on_box_drawn)
        self.view.measurement_drawn.connect(c.add_measurement)
        self.measures.delete_requested.connect(c.delete_measurement)
        self.measures.clear_requested.connect(c.clear_measurements)
        self.measures.selected.connect(self.ui.context.highlight)
        self.view.hover.connect(self._on_hover)
        self.view.window_level_changed.connect(self._on_window_level)
        self.cine.frame_changed.connect(c.set_frame)
        self.cine.playing_changed.connect(c.set_playing)
        self.heatmaps.method_changed.connect(self._on_method_changed)
        self.heatmaps.display_changed.connect(self._remember_display)

    # --- settings ------------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        geo = self.settings.window_geometry()
        if geo is not None:
            self.restoreGeometry(geo)
        state = self.settings.window_state()
        if state is None or not self.restoreState(state):
            self.first_run_layout()

    def first_run_layout(self) -> None:
        """The image takes the most room: the list and the evidence column share the rest."""
        self.resizeDocks([self.thumbs_dock, self.analysis_dock],
                         [LIST_WIDTH, max(ANALYSIS_MIN_WIDTH, int(self.width() * ANALYSIS_SHARE))],
                         Qt.Orientation.Horizontal)

    def _save_settings(self) -> None:
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self._remember_display()
        self.settings.sync()

    def rebuild_recent(self) -> None:
        fill_recent_menu(self.act.recent_menu, self.settings.recent_files(),
                         lambda p: self.open_paths([p]), self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self.rebuild_recent()

    def _on_method_changed(self, label: str) -> None:
        self.controller.set_method(label)
        self._remember_display()

    def _remember_display(self) -> None:
        """Keep the evidence maps' display in the settings: opacity, colour map and, once the
        panel offers one, the heat-map method (the controller's name for it). The one place
        these three are written."""
        self.settings.opacity = self.heatmaps.alpha()
        self.settings.colormap = self.heatmaps.colormap_name()
        if self.heatmaps.current_method():
            self.settings.cam_method = self.controller.method

    def set_theme(self, name: str) -> None:
        """Switch to the dark or the light theme (saved in the settings)."""
        self.settings.theme = theme.apply_theme(name)
        for key, a in self.act.theme.items():
            a.setChecked(key == self.settings.theme)
        self.prediction.refresh()
        self.heatmaps.update()

    def set_image_overlay(self, choice: str) -> None:
        """Lay the benign or the malignant heat map over the main image, or none (saved)."""
        self.image_overlay.set_choice(choice)
        self.settings.image_overlay = self.image_overlay.choice()
        for key, a in self.act.image_overlay.items():
            a.setChecked(key == self.image_overlay.map_choice())
        self.act.overlay.setChecked(self.image_overlay.choice() != "none")
        if choice != "none" and self.heatmaps.maps() is None:
            self.statusBar().showMessage("The heat map goes over the image once it is computed",
                                         5000)

    def set_overlay_on(self, on: bool) -> None:
        """Heat map over the image on (the map last chosen) or off: View menu and toolbar."""
        self.set_image_overlay(self.image_overlay.map_choice() if on else "none")

    def set_device(self, device: str) -> None:
        """Re-create the engine on another device (auto, cpu, cuda, mps)."""
        if device not in DEVICES:
            return
        self.settings.device = device
        for d, a in self.act.device.items():
            a.setChecked(d == device)
        self.controller.load_engine(device)

    def choose_site_profile(self) -> None:
        """Model > Site profile...: decide every result under a site profile's operating
        point (the model is loaded again under it)."""
        engine = self.controller.engine
        self.site.choose(self, engine.card if engine is not None else None,
                         self._reload_at_new_operating_point)

    def clear_site_profile(self) -> None:
        """Model > Use the bundled defaults: back to the model card's operating point."""
        self.site.clear(self._reload_at_new_operating_point)

    def _reload_at_new_operating_point(self) -> None:
        """Results made at the old operating point are not shown again: the model is loaded
        again and classifies every open image anew."""
        self.controller.forget_results()
        self.controller.load_engine(self.settings.device)

    def _say_site_problem(self, _engine: object) -> None:
        if self.site.problem:
            self.ui.show_notice(self.site.problem)

    # --- opening -------------------------------------------------------------------------------

    def open_files_dialog(self) -> None:
        if self.ask_open_files is not None:
            paths = self.ask_open_files()
        else:
            from rcdnet_desktop.core.io import image_file_filter  # the readers' own suffixes

            paths, _ = QFileDialog.getOpenFileNames(self, "Open images",
                                                    self.settings.last_folder,
                                                    image_file_filter())
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = self._ask_folder("Open folder")
        if folder:
            self.open_paths([folder])

    def _ask_folder(self, title: str) -> str:
        if self.ask_folder is not None:
            return self.ask_folder()
        return QFileDialog.getExistingDirectory(self, title, self.settings.last_folder)

    def open_paths(self, paths: Sequence[str | Path]) -> list[Document]:
        """Open files and folders (folders recursively), remembered as recent; show the first."""
        paths = [Path(p) for p in paths]
        docs = self.controller.open_paths(paths)
        if paths:
            for p in paths:
                self.settings.add_recent(p.absolute())
            first = paths[0]
            self.settings.last_folder = str(first if first.is_dir() else first.parent)
            self.rebuild_recent()
        return docs

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    # --- lesion box and outline ----------------------------------------------------------------

    def set_box_mode(self, on: bool) -> None:
        if on:
            self.set_caliper_mode(False)
        self.act.box.setChecked(bool(on))
        self.view.set_box_mode(bool(on))
        if on:
            self.statusBar().showMessage("Drag a box around the lesion", 5000)

    def set_caliper_mode(self, on: bool) -> None:
        """Measure with the caliper (the lesion-box tool ends), or go back to panning."""
        if on:
            self.set_box_mode(False)
        self.act.measure.setChecked(bool(on))
        self.view.set_caliper_mode(bool(on))
        self.measures.set_active(bool(on))
        if on:
            self.statusBar().showMessage("Drag a line across the image to measure it", 5000)

    def _on_box_drawn(self, box: Box) -> None:
        self.controller.set_box(box)
        self.set_box_mode(False)

    def set_outline_visible(self, on: bool) -> None:
        """Show or hide the outline of the automatically found lesion (saved in the settings)."""
        on = bool(on)
        self.act.outline.setChecked(on)
        self.view.set_outline_visible(on)
        self.settings.show_outline = on
        if on and self.controller.current_key() is not None and not self.view.has_outline():
            self.statusBar().showMessage("No automatic lesion outline for this image", 5000)

    def _on_hover(self, x: int, y: int) -> None:
        self.image_label.setText(self.controller.image_info(f"({x}, {y})" if x >= 0 else ""))

    def _on_window_level(self, window: float, level: float) -> None:
        self.statusBar().showMessage(f"Display window {window:.0f}, level {level:.0f} "
                                     "(display only; press R to reset)", 3000)

    # --- exports -------------------------------------------------------------------------------

    def export_job(self) -> ExportJob | None:
        """The export inputs for what is on display, or None when the maps are not ready."""
        return window_export.export_job(self.controller, self.heatmaps)

    def confirm_overwrite(self, path: Path) -> bool:
        """Ask before replacing a file (tests replace this)."""
        return window_export.confirm_overwrite(self, path)

    def export_dialog(self, fmt: str = "png") -> None:
        job = self.export_job()
        if job is None:
            self.ui.show_notice(window_export.NOTHING_YET)
            return
        fmt, path, include_patient = window_export.ask_export(self, job, fmt,
                                                              self.settings.export_folder)
        if path:
            written = self.export_to(fmt, path, include_patient)
            if written is not None:
                self.settings.export_folder = str(Path(written).parent)

    def export_to(self, fmt: str, path: str | Path, include_patient: bool = False) -> Path | None:
        """Export what is on display; asks before overwriting. Returns the file or None."""
        job = self.export_job()
        if job is None:
            self.ui.show_notice(window_export.NOTHING_YET)
            return None
        written = window_export.export_to(job, fmt, path, include_patient,
                                          self.confirm_overwrite, self.ui.show_notice)
        if written is not None:
            from rcdnet_desktop.core.export.deidentify import burned_in_warning

            warning = None if fmt == "sr" else burned_in_warning(
                job.record, include_patient=include_patient)
            self.statusBar().showMessage(f"Saved {written}" + (f". {warning}" if warning
                                                               else ""), 15000)
        return written

    # --- batch review and dialogs --------------------------------------------------------------

    def batch_dialog(self, folder: str | Path | None = None) -> BatchDialog | None:
        """Open a batch review of ``folder`` (asks when None); returns the dialog."""
        # Opened on demand: each dialog's module (0.1-0.3 s) is not loaded before the window shows.
        from rcdnet_desktop.gui.batch.batch_dialog import BatchDialog

        if folder is None:
            folder = self._ask_folder("Batch review of a folder")
            if not folder:
                return None
        dlg = BatchDialog(folder, self.controller.engine, self.controller.batch_boxes(), self)
        dlg.open_requested.connect(lambda p: self.open_paths([p]))
        dlg.finished.connect(lambda _result, d=dlg: self._forget_batch(d))
        self.batch_dialogs.append(dlg)
        dlg.show()
        return dlg

    def _forget_batch(self, dlg: BatchDialog) -> None:
        dlg.shutdown(0)
        if dlg in self.batch_dialogs:
            self.batch_dialogs.remove(dlg)

    def show_tags(self) -> None:
        """Open the DICOM tag panel beside the window; it follows the image on display."""
        # Opened on demand (0.3 s with the DICOM reader), not before the window shows.
        from rcdnet_desktop.gui.panels.tag_panel import DicomTagsDialog

        if self.tags_dialog is None:
            self.tags_dialog = DicomTagsDialog(self)
        doc = self.controller.current
        rec = doc.record if doc is not None else None
        self.tags_dialog.set_source(rec.path if rec is not None else None,
                                    rec is not None and rec.is_dicom)
        self.tags_dialog.show()
        self.tags_dialog.raise_()

    # --- PACS ----------------------------------------------------------------------------------

    def _keep(self, dlg: QDialog) -> QDialog:
        self.pacs_dialogs.append(dlg)
        dlg.finished.connect(lambda _r, d=dlg: d in self.pacs_dialogs
                             and self.pacs_dialogs.remove(d))
        dlg.show()
        return dlg

    def pacs_query_dialog(self):
        """PACS > Query/retrieve: search, retrieve, and open through :meth:`open_paths`."""
        # Opened on demand: the PACS dialogs (0.1-0.3 s) are not loaded before the window shows.
        from rcdnet_desktop.gui.pacs.query_dialog import PacsQueryDialog

        dlg = PacsQueryDialog(self.settings, self)
        dlg.open_requested.connect(self.open_paths)
        return self._keep(dlg)

    def pacs_send_dialog(self):
        """PACS > Send result: the SR (and SC) of what is on display."""
        # Opened on demand (0.3 s with the DICOM writers), not before the window shows.
        from rcdnet_desktop.gui.pacs.send_dialog import PacsSendDialog

        job = self.export_job()
        if job is None or not job.record.is_dicom:
            self.ui.show_notice("Nothing to send yet: open a DICOM image and wait for its "
                                "heat maps." if job is None else
                                "Only results of DICOM images can go to a PACS.")
            return None
        return self._keep(PacsSendDialog(job, self.settings, self))

    def pacs_nodes_dialog(self):
        """PACS > PACS nodes: the settings dialog."""
        # Opened on demand (0.1 s), not before the window shows.
        from rcdnet_desktop.gui.pacs.nodes_dialog import PacsNodesDialog

        return self._keep(PacsNodesDialog(self.settings, self))

    def show_model_card(self) -> None:
        # Opened on demand: the Help dialogs (0.3 s) are not loaded before the window shows.
        from rcdnet_desktop.gui.dialogs.help_dialogs import ModelCardDialog

        engine = self.controller.engine
        ModelCardDialog(engine.card if engine is not None else None, self,
                        getattr(engine, "profile", None)).exec()

    def show_shortcuts(self) -> None:
        # Opened on demand (0.3 s), not before the window shows.
        from rcdnet_desktop.gui.dialogs.help_dialogs import ShortcutsDialog

        ShortcutsDialog(self.shortcut_list(), self).exec()

    def shortcut_list(self) -> list[tuple[str, str]]:
        return shortcut_list(self)

    def show_about(self) -> None:
        # Opened on demand (0.3 s), not before the window shows.
        from rcdnet_desktop.gui.dialogs.help_dialogs import AboutDialog

        engine = self.controller.engine
        AboutDialog(engine.model_version if engine is not None else "",
                    self.controller.device_name, self).exec()

    # --- closing -------------------------------------------------------------------------------

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel every background job and wait up to ``timeout_ms`` for the running ones to
        end; True when all threads are idle. Closing the window waits for none
        (:data:`CLOSE_WAIT_MS`): a model call still running ends with the process."""
        self._closing = True
        self.cine.set_playing(False)
        if self.tags_dialog is not None:
            self.tags_dialog.close()
        ok = True
        for dlg in list(self.batch_dialogs):
            ok = dlg.shutdown(timeout_ms) and ok
            dlg.close()
        # The PACS jobs' module (~30 ms) is loaded at closing, not before the window shows.
        from rcdnet_desktop.gui.pacs.jobs import stop_all

        for dlg in list(self.pacs_dialogs):
            dlg.close()
        ok = stop_all(timeout_ms / 1000) and ok
        ok = self.loader.shutdown(timeout_ms) and ok
        ok = self.cine_timeline.shutdown(timeout_ms) and ok
        ok = self.analysis.shutdown(timeout_ms) and ok
        return ok

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._save_settings()
        self.shutdown(CLOSE_WAIT_MS)
        super().closeEvent(event)

