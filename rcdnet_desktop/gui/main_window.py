"""The viewer's main window: open images, see the prediction beside both evidence maps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.types import Box, HeatMaps, Prediction
from rcdnet_desktop.gui.controller import (
    AnalysisController,
    AnalysisRequest,
    EngineFactory,
    ImageLoader,
    engine_methods,
    fast_method,
)
from rcdnet_desktop.gui.document import AnalysisKey, Document, FrameCache, LruCache
from rcdnet_desktop.gui.heatmap_panel import HeatmapPanel
from rcdnet_desktop.gui.image_view import ImagePane
from rcdnet_desktop.gui.notice_bar import NoticeBar
from rcdnet_desktop.gui.prediction_panel import PredictionPanel
from rcdnet_desktop.gui.settings import DEVICE_LABELS, DEVICES, Settings
from rcdnet_desktop.gui.thumbnails import ThumbnailList
from rcdnet_desktop.gui.window_actions import WindowActions
from rcdnet_desktop.gui.window_export import WindowExport
from rcdnet_desktop.gui.wording import pending_input_words

APP_TITLE = "RcdNet Desktop"
FILE_FILTER = ("Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.dcm *.dicom);;"
               "DICOM (*.dcm *.dicom);;All files (*)")


class MainWindow(WindowActions, WindowExport, QMainWindow):
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
        "auto", "cpu" or "cuda" for this session only (the saved choice otherwise).

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
        self.resize(1500, 900)
        self.settings = settings if settings is not None else Settings()
        self.controller = AnalysisController(engine_factory, self)
        self.loader = ImageLoader(self)
        self.docs: dict[int, Document] = {}
        self.current: Document | None = None
        self.heatmap_cache = LruCache(24)
        self.frames = FrameCache()
        self._batch_dialogs: list[Any] = []
        self._closing = False
        self._shown_record = None
        self.ask_open_files: Callable[[], list[str]] | None = None  # tests replace dialogs
        self.ask_folder: Callable[[], str] | None = None

        # --- widgets -----------------------------------------------------------------------
        self.pane = ImagePane(self)
        self.view = self.pane.view
        self.cine = self.pane.cine
        self.notice = NoticeBar(self)
        central = QWidget(self)
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.notice)
        cl.addWidget(self.pane, 1)
        self.setCentralWidget(central)

        self.thumbs = ThumbnailList(self)
        dock = QDockWidget("Open images", self)
        dock.setObjectName("thumbnails")
        dock.setWidget(self.thumbs)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.thumbs_dock = dock

        self.prediction = PredictionPanel(self)
        self.heatmaps = HeatmapPanel(self)
        self.heatmaps.set_display(self.settings.opacity, self.settings.colormap)
        # A layout, not a splitter: the prediction panel keeps the height its wrapped text
        # needs (splitters ignore height-for-width), the maps take the rest.
        analysis = QWidget(self)
        al = QVBoxLayout(analysis)
        al.setContentsMargins(0, 0, 0, 0)
        al.addWidget(self.prediction, 0)
        al.addWidget(self.heatmaps, 1)
        adock = QDockWidget("Prediction and evidence", self)
        adock.setObjectName("analysis")
        adock.setWidget(analysis)
        adock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                          | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        adock.setMinimumWidth(560)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, adock)
        self.analysis_dock = adock

        self.device_label = QLabel("Loading model...", self)
        self.model_label = QLabel("", self)
        self.image_label = QLabel("", self)
        self.busy_label = QLabel("", self)
        sb = self.statusBar()
        sb.addPermanentWidget(self.busy_label)
        sb.addPermanentWidget(self.image_label)
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.device_label)

        self._build_actions()
        self._connect()
        self._restore_settings()
        self.prediction.set_waiting("Loading model..." if load_model else "No model")
        self.heatmaps.set_status("Loading model...")
        if load_model:
            start_device = device if device in DEVICES else self.settings.device
            for d, a in self.device_actions.items():
                a.setChecked(d == start_device)
            QTimer.singleShot(0, lambda: self.controller.load_engine(start_device))

    def _connect(self) -> None:
        c = self.controller
        c.engine_loading.connect(self._on_engine_loading)
        c.engine_ready.connect(self._on_engine_ready)
        c.engine_failed.connect(self._on_engine_failed)
        c.prediction_ready.connect(self._on_prediction)
        c.heatmaps_ready.connect(self._on_heatmaps)
        c.analysis_failed.connect(self._on_analysis_failed)
        c.busy_changed.connect(self._on_busy)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.thumbs.document_activated.connect(self._on_thumb_activated)
        self.view.box_drawn.connect(self._on_box_drawn)
        self.view.hover.connect(self._on_hover)
        self.view.window_level_changed.connect(self._on_window_level)
        self.cine.frame_changed.connect(self._on_frame_changed)
        self.cine.playing_changed.connect(self._on_playing_changed)
        self.heatmaps.method_changed.connect(self._on_method_changed)
        self.heatmaps.display_changed.connect(self._on_display_changed)

    # --- settings ----------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        geo = self.settings.window_geometry()
        if geo is not None:
            self.restoreGeometry(geo)
        state = self.settings.window_state()
        if state is None or not self.restoreState(state):
            # First run: give the evidence maps about 45% of the width.
            self.resizeDocks([self.thumbs_dock, self.analysis_dock],
                             [240, int(self.width() * 0.45)], Qt.Orientation.Horizontal)

    def _save_settings(self) -> None:
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.opacity = self.heatmaps.alpha()
        self.settings.colormap = self.heatmaps.colormap_name()
        method = self.heatmaps.current_method()
        if method:
            self.settings.cam_method = self._method_key(method)
        self.settings.sync()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files()
        for p in recent:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _c=False, path=p: self.open_paths([path]))
        if recent:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear list")
            clear.triggered.connect(self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self._rebuild_recent()

    # --- opening -----------------------------------------------------------------------------

    def open_files_dialog(self) -> None:
        if self.ask_open_files is not None:
            paths = self.ask_open_files()
        else:
            paths, _ = QFileDialog.getOpenFileNames(self, "Open images",
                                                    self.settings.last_folder, FILE_FILTER)
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = self.ask_folder() if self.ask_folder is not None else \
            QFileDialog.getExistingDirectory(self, "Open folder", self.settings.last_folder)
        if folder:
            self.open_paths([folder])

    def open_paths(self, paths: Sequence[str | Path]) -> list[Document]:
        """Open files and folders (folders recursively); show the first new one.

        Returns the documents for the paths (already open ones are reused).
        """
        from rcdnet_desktop.core import io

        paths = [Path(p) for p in paths]
        if not paths:
            return []
        files = io.find_images(paths, recursive=True)
        folders = [p for p in paths if p.is_dir()]
        if folders and not files:
            self.notify(f"No images found in {folders[0]}")
        by_path = {d.path.absolute(): d for d in self.docs.values()}
        docs, new = [], []
        for f in files:
            existing = by_path.get(f.absolute())
            if existing is not None:
                docs.append(existing)
                continue
            d = Document(f)
            self.docs[d.doc_id] = d
            self.thumbs.add_document(d.doc_id, d.name, str(f))
            docs.append(d)
            new.append(d)
            by_path[f.absolute()] = d
        for p in paths:
            self.settings.add_recent(p.absolute())
        first = paths[0]
        self.settings.last_folder = str(first if first.is_dir() else first.parent)
        self._rebuild_recent()
        if new:
            self.loader.load([d.path for d in new])
        if docs:
            self.show_document(docs[0])
        self._update_actions()
        return docs

    def _doc_by_path(self, path: Path) -> Document | None:
        for d in self.docs.values():
            if d.path == path:
                return d
        return None

    def _on_loaded(self, path: Path, record, thumb: np.ndarray) -> None:
        doc = self._doc_by_path(path)
        if doc is None:
            return
        doc.record, doc.loading, doc.error = record, False, ""
        self.thumbs.set_thumbnail(doc.doc_id, thumb)
        if doc is self.current:
            self.show_document(doc)
        elif self.controller.engine is not None:
            # Label it in the list when the model is free (prediction only, no maps). While
            # the model loads, _on_engine_ready queues every image still without a label.
            self.controller.queue_background([(doc.key(), record)])

    def _on_load_failed(self, path: Path, reason: str) -> None:
        doc = self._doc_by_path(path)
        if doc is None:
            return
        doc.loading, doc.error = False, reason
        self.thumbs.set_failed(doc.doc_id, reason)
        self.notify(f"Cannot read {path.name}: {reason}")
        if doc is self.current:
            self.show_document(doc)

    def notify(self, text: str) -> None:
        """A non-modal notice: in the banner above the image and in the status bar."""
        self.notice.add(text)
        self.statusBar().showMessage(text, 10000)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    # --- navigation --------------------------------------------------------------------------

    def documents(self) -> list[Document]:
        """Open documents in list order."""
        return [self.docs[i] for i in self.thumbs.document_ids() if i in self.docs]

    def step(self, delta: int) -> None:
        docs = self.documents()
        if not docs:
            return
        i = docs.index(self.current) if self.current in docs else -1
        j = min(max(i + delta, 0), len(docs) - 1)
        if docs[j] is not self.current:
            self.show_document(docs[j])

    def close_current(self) -> None:
        doc = self.current
        if doc is None:
            return
        docs = self.documents()
        i = docs.index(doc)
        self.thumbs.remove_document(doc.doc_id)
        del self.docs[doc.doc_id]
        self.frames.drop(doc.doc_id)
        self.heatmap_cache.drop(lambda k: k.doc_id == doc.doc_id)
        self.current = None
        rest = self.documents()
        if rest:
            self.show_document(rest[min(i, len(rest) - 1)])
        else:
            self.controller.cancel()
            self.view.set_image(None)
            self.view.set_box(None)
            self.cine.set_frame_count(1)
            self.prediction.set_waiting("No image open")
            self.heatmaps.set_image(None)
            self.heatmaps.set_status("No image")
            self.image_label.setText("")
            self.setWindowTitle(APP_TITLE)
        self._update_actions()

    def _on_thumb_activated(self, doc_id: int) -> None:
        doc = self.docs.get(doc_id)
        if doc is not None and doc is not self.current:
            self.show_document(doc)

    def show_document(self, doc: Document) -> None:
        """Put ``doc`` on display and ask for its analysis (unless already known)."""
        changed = doc is not self.current or doc.record is not self._shown_record
        self.current = doc
        self._shown_record = doc.record
        self.thumbs.select_document(doc.doc_id)
        self.setWindowTitle(f"{doc.name} - {APP_TITLE}")
        if doc.record is None:
            self.controller.cancel()
            self.cine.set_frame_count(1)
            self.view.set_box(None)
            self.heatmaps.set_image(None)
            self.image_label.setText("")
            if doc.error:
                self.view.show_message(f"Cannot read {doc.name}\n\n{doc.error}")
                self.prediction.set_waiting("Unreadable file")
                self.heatmaps.set_status(f"Cannot read {doc.name}: {doc.error}")
            else:
                self.view.show_message(f"Loading {doc.name}...")
                self.prediction.set_waiting("Loading image...")
                self.heatmaps.set_status("Loading image...")
            self._update_actions()
            return
        rec = doc.record
        if changed:
            self.cine.set_frame_count(rec.frame_count, rec.frame_rate)
            self.cine.set_frame(min(doc.frame, rec.frame_count - 1), emit=False)
        self._show_frame(doc, keep_view=not changed)
        self._update_status_image()
        self._update_actions()

    def _show_frame(self, doc: Document, keep_view: bool) -> None:
        try:
            pixels = self.frames.get(doc, doc.frame)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not take the viewer down
            msg = getattr(exc, "reason", None) or str(exc)
            self.view.show_message(f"Cannot decode frame {doc.frame + 1}: {msg}")
            self.notify(f"{doc.name}: cannot decode frame {doc.frame + 1}: {msg}")
            return
        self.view.set_image(pixels, keep_view=keep_view)
        self.view.set_auto_finding(None)  # until this frame's result says otherwise
        self.view.set_box(doc.box())
        self.heatmaps.set_image(pixels)
        self._show_analysis(request=not self.cine.is_playing())

    def _show_analysis(self, request: bool = True) -> None:
        """Show what is known for the current frame/box; ask for the rest."""
        doc = self.current
        if doc is None or doc.record is None:
            return
        method = self.current_method_key()
        key = doc.key(method)
        pred = doc.predictions.get(key.prediction_key())
        maps = self.heatmap_cache.get(key)
        mode = self._pending_mode(key.roi)
        if pred is not None:
            self._present_prediction(doc, key, pred)
        else:
            self.view.set_auto_finding(None)
        if maps is not None:
            self.heatmaps.set_maps(maps, _lesion_box(maps.prediction, key.roi))
            self.heatmaps_shown.emit(key)
        if pred is not None and maps is not None:
            self.controller.cancel()
            return
        if self.controller.engine is None and self.controller.engine_error:
            self.prediction.set_waiting("No model", mode)
            self.heatmaps.set_status(f"The model could not be loaded: "
                                     f"{self.controller.engine_error}")
            return
        if not request:
            waiting = "Playing: pause to classify"
        elif self.controller.engine is None:
            waiting = "Loading model..."
        else:
            waiting = "Classifying..."
        if pred is None:
            self.prediction.set_waiting(waiting, mode)
        if not request:
            self.heatmaps.set_status("Pause playback to compute the heat maps")
            return
        self.heatmaps.set_status("Loading model..." if self.controller.engine is None
                                 else "Computing heat maps...")
        self.controller.request(key, doc.record)

    # --- cine --------------------------------------------------------------------------------

    def _on_frame_changed(self, frame: int) -> None:
        doc = self.current
        if doc is None or doc.record is None or frame == doc.frame:
            return
        doc.frame = frame
        self._show_frame(doc, keep_view=True)
        self._update_status_image()

    def _on_playing_changed(self, playing: bool) -> None:
        if not playing:
            self._show_analysis()
        else:
            self.controller.cancel()

    # --- lesion box --------------------------------------------------------------------------

    def set_box_mode(self, on: bool) -> None:
        self.act_box.setChecked(bool(on))
        self.view.set_box_mode(bool(on))
        if on:
            self.statusBar().showMessage("Drag a box around the lesion", 5000)

    def set_box(self, box: Box | None) -> None:
        """Set (or clear) the lesion box of the current frame and re-run the analysis."""
        doc = self.current
        if doc is None or doc.record is None:
            return
        if box is None:
            doc.boxes.pop(doc.frame, None)
        else:
            doc.boxes[doc.frame] = box
        self.view.set_box(box)
        self.prediction.set_mode(self._pending_mode(box))
        self.heatmaps.set_image(self.view.pixels())
        self._show_analysis()
        self._update_actions()

    def clear_box(self) -> None:
        self.set_box(None)

    def _on_box_drawn(self, box: Box) -> None:
        self.set_box(box)
        self.set_box_mode(False)

    def _pending_mode(self, user_box: Box | None) -> str:
        """The "Input:" words while a result for ``user_box`` (None: no box) is awaited."""
        return pending_input_words(user_box, self.has_localiser())

    def has_localiser(self) -> bool:
        """Whether the loaded model finds lesion boxes by itself (its bundle has a localiser)."""
        engine = self.controller.engine
        # has_localiser, not localiser: on the ONNX backend the latter loads torch's weights.
        return engine is not None and bool(engine.has_localiser)

    # --- lesion outline ----------------------------------------------------------------------

    def set_outline_visible(self, on: bool) -> None:
        """Show or hide the outline of the automatically found lesion (saved in the settings)."""
        on = bool(on)
        self.act_outline.setChecked(on)
        self.view.set_outline_visible(on)
        self.settings.show_outline = on
        if on and self.current is not None and self.current.record is not None \
                and not self.view.has_outline():
            self.statusBar().showMessage("No automatic lesion outline for this image", 5000)

    # --- analysis results --------------------------------------------------------------------

    def current_method_key(self) -> str:
        text = self.heatmaps.current_method()
        return self._method_key(text) if text else self._default_method

    _default_method = "fast"
    _method_labels: dict[str, str] = {}

    def _method_key(self, label: str) -> str:
        for k, v in self._method_labels.items():
            if v == label or k == label:
                return k
        return label

    def _current_key(self) -> AnalysisKey | None:
        doc = self.current
        if doc is None or doc.record is None:
            return None
        return doc.key(self.current_method_key())

    def _on_prediction(self, request: AnalysisRequest, pred: Prediction) -> None:
        doc = self.docs.get(request.key.doc_id)
        if doc is None:
            return
        pkey = request.key.prediction_key()
        doc.predictions[pkey] = pred
        current = self._current_key()
        if doc is self.current and current is not None and current.prediction_key() == pkey:
            self._present_prediction(doc, request.key, pred)
        elif doc.key().prediction_key() == pkey:
            # Another image: its list entry shows the result for its own frame and box.
            self.thumbs.set_prediction(doc.doc_id, pred)

    def _present_prediction(self, doc: Document, key: AnalysisKey, pred: Prediction) -> None:
        """Show ``pred`` (the result for what is on display): panel, list entry, image view."""
        self.prediction.set_prediction(pred)
        self.thumbs.set_prediction(doc.doc_id, pred)
        if doc.box() is None and pred.box_source == "auto" and pred.box is not None:
            outline = pred.finding.outline if pred.finding is not None else None
            self.view.set_auto_finding(pred.box, outline)
        else:
            self.view.set_auto_finding(None)
        self.prediction_shown.emit(key)

    def _on_heatmaps(self, request: AnalysisRequest, maps: HeatMaps) -> None:
        self.heatmap_cache.put(request.key, maps)
        if self._current_key() == request.key:
            self.heatmaps.set_maps(maps, _lesion_box(maps.prediction, request.key.roi))
            self.heatmaps_shown.emit(request.key)
            self._update_actions()

    def _on_analysis_failed(self, request: AnalysisRequest, message: str) -> None:
        doc = self.docs.get(request.key.doc_id)
        name = doc.name if doc else "image"
        if self._current_key() == request.key:
            self.prediction.set_waiting("Could not classify")
            self.heatmaps.set_status(f"Could not classify {name}: {message}")
            self.notify(f"Could not classify {name}: {message}")

    def _on_busy(self, busy: bool) -> None:
        self.busy_label.setText("working..." if busy else "")

    # --- engine ------------------------------------------------------------------------------

    def _on_engine_loading(self, device: str) -> None:
        self.device_label.setText(f"Loading model ({DEVICE_LABELS.get(device, device)})...")
        self.model_label.setText("")
        self._update_actions()
        for dlg in self._batch_dialogs:
            dlg.set_engine(None)

    def _on_engine_ready(self, engine: Any) -> None:
        self._method_labels = engine_methods(engine)
        self._default_method = fast_method(engine)
        wanted = self.settings.cam_method
        if wanted not in self._method_labels:
            wanted = self._default_method
        self.heatmaps.set_methods(list(self._method_labels.values()),
                                  self._method_labels[wanted])
        self.device_label.setText(f"Device: {self.controller.device_name or 'CPU'}")
        note = getattr(engine, "device_note", "")
        if note:
            self.statusBar().showMessage(note, 10000)
        version = getattr(engine, "model_version", "")
        untrained = bool(getattr(engine, "untrained", False))
        self.model_label.setText(f"Model {version}" + (" (UNTRAINED)" if untrained else ""))
        self.prediction.set_model_version(version)
        self.prediction.set_untrained(untrained)
        self._update_actions()
        for dlg in self._batch_dialogs:
            dlg.set_engine(engine)
        # Anything opened while the model loaded: classify the current one, then the rest.
        self._show_analysis()
        rest = [(d.key(), d.record) for d in self.documents()
                if d is not self.current and d.record is not None and d.latest_prediction() is None]
        self.controller.queue_background(rest)

    def _on_engine_failed(self, message: str) -> None:
        self.device_label.setText("No model")
        self.prediction.set_waiting("No model")
        self.heatmaps.set_status(f"The model could not be loaded: {message}")
        self.notify(f"The model could not be loaded: {message}")

    def set_device(self, device: str) -> None:
        """Re-create the engine on another device (auto, cpu, cuda)."""
        if device not in DEVICES:
            return
        self.settings.device = device
        for d, a in self.device_actions.items():
            a.setChecked(d == device)
        self.controller.load_engine(device)
        if self.current is not None:
            self._show_analysis()

    def _on_method_changed(self, label: str) -> None:
        self.settings.cam_method = self._method_key(label)
        if self.current is not None and self.current.record is not None:
            self.heatmaps.set_image(self.view.pixels())
            self._show_analysis()

    def _on_display_changed(self) -> None:
        self.settings.opacity = self.heatmaps.alpha()
        self.settings.colormap = self.heatmaps.colormap_name()

    # --- status bar --------------------------------------------------------------------------

    def _update_status_image(self, hover: str = "") -> None:
        doc = self.current
        if doc is None or doc.record is None:
            self.image_label.setText("")
            return
        rec = doc.record
        parts = [f"{rec.width} x {rec.height} px"]
        mm = rec.mm_per_pixel
        if mm is not None:
            if abs(mm[0] - mm[1]) < 1e-6:
                parts.append(f"{mm[0]:.3f} mm/pixel")
            else:
                parts.append(f"{mm[0]:.3f} x {mm[1]:.3f} mm/pixel")
        if rec.frame_count > 1:
            parts.append(f"frame {doc.frame + 1}/{rec.frame_count}")
        if hover:
            parts.append(hover)
        self.image_label.setText("  |  ".join(parts))

    def _on_hover(self, x: int, y: int) -> None:
        self._update_status_image(f"({x}, {y})" if x >= 0 else "")

    def _on_window_level(self, window: float, level: float) -> None:
        self.statusBar().showMessage(f"Display window {window:.0f}, level {level:.0f} "
                                     "(display only; press R to reset)", 3000)

    def _update_actions(self) -> None:
        doc = self.current
        ok = doc is not None and doc.record is not None
        key = self._current_key()
        has_maps = key is not None and self.heatmap_cache.get(key) is not None
        for a in (self.act_export_png, self.act_export_pdf):
            a.setEnabled(has_maps)
        self.act_export_dcm.setEnabled(has_maps and ok and doc.record.is_dicom)
        self.act_box.setEnabled(ok)
        self.act_outline.setEnabled(self.has_localiser())
        self.act_clear_box.setEnabled(ok and doc.box() is not None)
        self.act_close.setEnabled(doc is not None)
        n = len(self.docs)
        self.act_next.setEnabled(n > 1)
        self.act_prev.setEnabled(n > 1)

    # --- batch -------------------------------------------------------------------------------

    def batch_dialog(self, folder: str | Path | None = None):
        """Open a batch review of ``folder`` (asks when None); returns the dialog."""
        from rcdnet_desktop.gui.batch_dialog import BatchDialog

        if folder is None:
            folder = self.ask_folder() if self.ask_folder is not None else \
                QFileDialog.getExistingDirectory(self, "Batch review of a folder",
                                                 self.settings.last_folder)
            if not folder:
                return None
        rois = {d.path: d.boxes[0] for d in self.docs.values() if 0 in d.boxes}
        dlg = BatchDialog(folder, self.controller.engine, rois, self)
        dlg.open_requested.connect(lambda p: self.open_paths([p]))
        dlg.finished.connect(lambda _r, d=dlg: self._forget_batch(d))
        self._batch_dialogs.append(dlg)
        dlg.show()
        return dlg

    def _forget_batch(self, dlg) -> None:
        dlg.shutdown()
        if dlg in self._batch_dialogs:
            self._batch_dialogs.remove(dlg)

    # --- dialogs -----------------------------------------------------------------------------

    def show_model_card(self) -> None:
        from rcdnet_desktop.gui.dialogs import ModelCardDialog

        engine = self.controller.engine
        ModelCardDialog(getattr(engine, "card", None) if engine else None, self).exec()

    def show_shortcuts(self) -> None:
        from rcdnet_desktop.gui.dialogs import ShortcutsDialog

        ShortcutsDialog(self.shortcut_list(), self).exec()

    def show_about(self) -> None:
        from rcdnet_desktop.gui.dialogs import AboutDialog

        engine = self.controller.engine
        AboutDialog(getattr(engine, "model_version", "") if engine else "",
                    self.controller.device_name, self).exec()

    # --- closing -----------------------------------------------------------------------------

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop every background job and wait for them; True when all threads are idle."""
        if self._closing:
            return True
        self._closing = True
        self.cine.set_playing(False)
        ok = True
        for dlg in list(self._batch_dialogs):
            ok = dlg.shutdown(timeout_ms) and ok
            dlg.close()
        ok = self.loader.shutdown(timeout_ms) and ok
        ok = self.controller.shutdown(timeout_ms) and ok
        return ok

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._save_settings()
        self.shutdown()
        super().closeEvent(event)


def _lesion_box(pred: Prediction, roi: Box | None) -> Box | None:
    """The lesion box to mark on the evidence maps: the one drawn or found, else the key's."""
    return pred.box if pred.box is not None else roi
