"""The viewer's control logic, in plain Python: what is open, what is on display, what to ask for.

:class:`ViewerController` owns the open documents, the image/frame/box on display, the heat-map
method in use and the results by key (predictions in each document, heat maps in a small LRU
cache). It decides what the window shows, through the :class:`~.viewer_protocols.ViewerView`
the window implements, and what to ask of the background inference
(:class:`~.viewer_protocols.AnalysisService`) and file reader
(:class:`~.viewer_protocols.ImageSource`). It imports no Qt; its tests use recording fakes.

Every result is kept by the key it was computed for (image, frame, box, method), whether or not
that key is still on display: going back to an image, frame or box shows what is known at once,
without computing it again. The image list and the panels show the result for the same key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rcdnet_desktop.core.context import image_context
from rcdnet_desktop.core.io.own import not_classified
from rcdnet_desktop.core.io.sr import over_source
from rcdnet_desktop.core.measure import Measured, Measurement, measure_all
from rcdnet_desktop.core.types import Box, HeatMaps, Prediction
from rcdnet_desktop.gui.session.document import AnalysisKey, Document, FrameCache, LruCache
from rcdnet_desktop.gui.session.engine import Engine, engine_methods, fast_method
from rcdnet_desktop.gui.session.grouping import Section, group_documents, ordered_ids
from rcdnet_desktop.gui.session.messages import (
    AnalysisFailed,
    FileFailed,
    FileLoaded,
    HeatmapsReady,
    PredictionReady,
)
from rcdnet_desktop.gui.window.viewer_protocols import (
    ActionState,
    AnalysisService,
    EngineInfo,
    ImageSource,
    ViewerView,
)
from rcdnet_desktop.gui.wording import pending_input_words

MAPS_CACHE_SIZE = 24
"""Heat maps kept (each pair is megabytes); predictions are small and kept for the session."""

DEFAULT_METHOD = "fast"


class ViewerController:
    """Open images, the one on display, and its analysis.

    Parameters
    ----------
    view : ViewerView
        What shows things (the main window).
    analysis : AnalysisService
        Runs the model in the background; its results come back through :meth:`on_prediction`,
        :meth:`on_heatmaps` and :meth:`on_analysis_failed`, its engine through
        :meth:`on_engine_loading`, :meth:`on_engine_ready` and :meth:`on_engine_failed`.
    loader : ImageSource
        Reads files in the background; they come back through :meth:`on_file_loaded` and
        :meth:`on_file_failed`.
    preferred_method : str
        The heat-map method to use once the engine says which it has (the saved choice).
    """

    def __init__(self, view: ViewerView, analysis: AnalysisService, loader: ImageSource,
                 preferred_method: str = "") -> None:
        self.view = view
        self.analysis = analysis
        self.loader = loader
        self.docs: dict[int, Document] = {}
        self.current: Document | None = None
        self.maps_cache = LruCache(MAPS_CACHE_SIZE)
        self.frames = FrameCache()
        self.method = DEFAULT_METHOD
        self.preferred_method = preferred_method
        self._labels: dict[str, str] = {}
        self._shown_record = None
        self._playing = False
        self._sections: list[Section] = []

    # --- the engine ----------------------------------------------------------------------------

    @property
    def engine(self) -> Engine | None:
        return self.analysis.engine

    @property
    def engine_error(self) -> str:
        return self.analysis.engine_error

    @property
    def device_name(self) -> str:
        return self.analysis.device_name

    def is_busy(self) -> bool:
        return self.analysis.is_busy()

    def has_localiser(self) -> bool:
        """Whether the loaded model finds lesion boxes by itself (its bundle has a localiser)."""
        engine = self.engine
        return engine is not None and bool(engine.has_localiser)

    def load_engine(self, device: str) -> None:
        """Re-create the engine on ``device``; what is on display is asked for again."""
        self.analysis.load_engine(device)
        if self.current is not None:
            self._show_analysis()

    # --- documents -----------------------------------------------------------------------------

    def documents(self) -> list[Document]:
        """Open documents in list order: by patient and study, each in the order opened
        (:mod:`~rcdnet_desktop.gui.session.grouping`)."""
        return [self.docs[i] for i in ordered_ids(group_documents(list(self.docs.values())))]

    def _arrange(self) -> None:
        """Group the image list anew when a file's patient and study become known."""
        sections = group_documents(list(self.docs.values()))
        if sections != self._sections:
            self._sections = sections
            self.view.arrange_documents(sections)

    def document_for(self, path: Path) -> Document | None:
        return next((d for d in self.docs.values() if d.path == path), None)

    def open_paths(self, paths: Sequence[str | Path]) -> list[Document]:
        """Open files and folders (folders recursively); show the first of them.

        A DICOMDIR (a CD or USB study), or a folder with one at its top, opens the images it
        lists; references it cannot find are skipped with a notice.
        Returns the documents for the paths (already open ones are reused).
        """
        # The readers (pydicom, Pillow: ~0.2 s) load with the first image, after the window shows.
        from rcdnet_desktop.core import io

        paths = [Path(p) for p in paths]
        if not paths:
            return []
        notices: list[str] = []
        files = io.find_images(paths, recursive=True, notices=notices)
        for notice in notices:
            self.view.show_notice(notice)
        folders = [p for p in paths if p.is_dir()]
        if folders and not files:
            self.view.show_notice(f"No images found in {folders[0]}")
        by_path = {d.path.absolute(): d for d in self.docs.values()}
        docs, new = [], []
        for f in files:
            doc = by_path.get(f.absolute())
            if doc is None:
                doc = Document(f)
                self.docs[doc.doc_id] = doc
                self.view.add_document(doc.doc_id, doc.name, str(f))
                new.append(doc)
                by_path[f.absolute()] = doc
            docs.append(doc)
        if new:
            self._arrange()
            self.loader.load([d.path for d in new])
        if docs:
            self.show_document(docs[0])
        self._update_actions()
        return docs

    def select(self, doc_id: int) -> None:
        """The user picked an image in the list."""
        doc = self.docs.get(doc_id)
        if doc is not None and doc is not self.current:
            self.show_document(doc)

    def step(self, delta: int) -> None:
        """Show the image ``delta`` places down the list (clamped to its ends)."""
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
        i = self.documents().index(doc)
        self.view.remove_document(doc.doc_id)
        del self.docs[doc.doc_id]
        self.frames.drop(doc.doc_id)
        self.maps_cache.drop(lambda k: k.doc_id == doc.doc_id)
        self.current = None
        self._arrange()
        rest = self.documents()
        if rest:
            self.show_document(rest[min(i, len(rest) - 1)])
        else:
            self.analysis.cancel()
            self.view.show_empty()
        self._update_actions()

    def show_document(self, doc: Document) -> None:
        """Put ``doc`` on display and ask for its analysis (unless already known)."""
        self._find_source(doc)
        previous = self.current
        changed = doc is not previous or doc.record is not self._shown_record
        if previous is not None and previous is not doc and previous.record is not None \
                and previous.doc_id in self.docs and not _why(previous):
            # The entry it leaves shows its own result again, not a pending one.
            self.view.set_list_prediction(previous.doc_id,
                                          previous.predictions.get(previous.key()))
        self.current = doc
        self._shown_record = doc.record
        self.view.select_document(doc.doc_id, doc.name)
        self.view.show_image_context(image_context(doc.record) if doc.record else None)
        if doc.record is None:
            self.analysis.cancel()
            if doc.error:
                self.view.show_placeholder(f"Cannot read {doc.name}\n\n{doc.error}",
                                           "Unreadable file",
                                           f"Cannot read {doc.name}: {doc.error}")
            else:
                self.view.show_placeholder(f"Loading {doc.name}...", "Loading image...",
                                           "Loading image...")
            self._update_actions()
            return
        rec = doc.record
        if changed:
            self._playing = False  # a new frame count stops playback
            self.view.set_frame_count(rec.frame_count, rec.frame_rate,
                                      min(doc.frame, rec.frame_count - 1))
        self._show_frame(doc, keep_view=not changed)
        self.view.show_image_info(self.image_info())
        self._update_actions()

    # --- frame, playback, box, method --------------------------------------------------------

    def set_frame(self, frame: int) -> None:
        doc = self.current
        if doc is None or doc.record is None or frame == doc.frame:
            return
        doc.frame = frame
        self._show_frame(doc, keep_view=True)
        self.view.show_image_info(self.image_info())
        self._update_actions()

    def set_playing(self, playing: bool) -> None:
        """Cine playback started or stopped: nothing is computed while it plays."""
        playing = bool(playing)
        if playing == self._playing:
            return
        self._playing = playing
        if playing:
            self.analysis.cancel()
        else:
            self._show_analysis()

    def set_box(self, box: Box | None) -> None:
        """Set (or clear) the lesion box of the frame on display and analyse again."""
        doc = self.current
        if doc is None or doc.record is None:
            return
        if box is None:
            doc.boxes.pop(doc.frame, None)
        else:
            doc.boxes[doc.frame] = box
        self.view.show_box(box)
        self.view.show_pending_mode(self._pending_mode(box))
        self.view.clear_maps()
        self._show_analysis()
        self._update_actions()

    def clear_box(self) -> None:
        self.set_box(None)

    # --- measurements ------------------------------------------------------------------------

    def add_measurement(self, m: Measurement) -> None:
        """Keep a caliper line drawn on the frame on display."""
        doc = self.current
        if doc is None or doc.record is None:
            return
        doc.measurements.setdefault(doc.frame, []).append(m)
        self._show_measurements()

    def delete_measurement(self, index: int) -> None:
        """Delete measurement ``index`` (0-based) of the frame on display."""
        doc = self.current
        items = doc.measurements.get(doc.frame, []) if doc is not None else []
        if 0 <= index < len(items):
            del items[index]
            self._show_measurements()

    def clear_measurements(self) -> None:
        """Delete every measurement of the frame on display."""
        doc = self.current
        if doc is not None and doc.measurements.pop(doc.frame, None):
            self._show_measurements()

    def measured(self) -> tuple[Measured, ...]:
        """The measurements of the frame on display, numbered, with their lengths."""
        doc = self.current
        if doc is None or doc.record is None:
            return ()
        return measure_all(doc.calibration(), doc.measurements.get(doc.frame, []))

    def _show_measurements(self) -> None:
        self.view.show_measurements(self.measured())
        self._update_actions()

    def method_key(self, label: str) -> str:
        """The method key for a label (or a key) of the method list."""
        for k, v in self._labels.items():
            if label in (k, v):
                return k
        return label

    def set_method(self, label: str) -> None:
        """The user chose another heat-map method (by its label)."""
        self.method = self.preferred_method = self.method_key(label)
        if self.current is not None and self.current.record is not None:
            self.view.clear_maps()
            self._show_analysis()

    # --- what is on display ------------------------------------------------------------------

    def current_key(self) -> AnalysisKey | None:
        doc = self.current
        if doc is None or doc.record is None:
            return None
        return doc.key(self.method)

    def forget_results(self) -> None:
        """Forget every prediction and heat map made so far: the model is being loaded again
        at another operating point (a site profile chosen or cleared), and the next engine
        makes them again. A stored result (an opened report) is kept as it was."""
        self.maps_cache.clear()
        for doc in self.docs.values():
            if doc.record is None or doc.record.stored is None:
                doc.predictions.clear()

    def current_maps(self) -> HeatMaps | None:
        """The heat maps of what is on display, once known."""
        key = self.current_key()
        return self.maps_cache.get(key) if key is not None else None

    def batch_boxes(self) -> dict[Path, Box]:
        """The lesion boxes drawn on the first frame of open images, by file (batch review)."""
        return {d.path: d.boxes[0] for d in self.docs.values() if 0 in d.boxes}

    def action_state(self) -> ActionState:
        doc = self.current
        ok = doc is not None and doc.record is not None
        return ActionState(has_document=doc is not None, has_image=ok,
                           has_maps=self.current_maps() is not None,
                           is_dicom=ok and doc.record.is_dicom,
                           has_box=ok and doc.box() is not None,
                           document_count=len(self.docs), has_localiser=self.has_localiser(),
                           has_measurements=bool(self.measured()))

    def image_info(self, hover: str = "") -> str:
        """Size, spacing and frame of the image on display (and ``hover``), for the status bar."""
        doc = self.current
        return doc.status_text(hover) if doc is not None else ""

    def _pending_mode(self, user_box: Box | None) -> str:
        doc = self.current
        calibration = doc.calibration() if doc is not None else None
        return pending_input_words(user_box, self.has_localiser(), calibration)

    def _update_actions(self) -> None:
        self.view.update_actions(self.action_state())

    def _show_frame(self, doc: Document, keep_view: bool) -> None:
        if doc.record is not None and not doc.record.has_image:
            # A stored result whose image is not at hand: its words in place of the image.
            why = _why(doc)
            stored = doc.record.stored
            self.view.show_placeholder("\n".join(stored.lines()) if stored else why, why, why)
            self._show_analysis()
            return
        try:
            pixels = self.frames.get(doc, doc.frame)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not take the viewer down
            msg = getattr(exc, "reason", None) or str(exc)
            self.view.show_frame_error(f"Cannot decode frame {doc.frame + 1}: {msg}")
            self.view.show_notice(f"{doc.name}: cannot decode frame {doc.frame + 1}: {msg}")
            return
        self.view.show_frame(pixels, keep_view, doc.box())
        self.view.show_measurements(self.measured())
        self._show_analysis(request=not self._playing)

    def _show_analysis(self, request: bool = True) -> None:
        """Show what is known for the key on display; ask for the rest."""
        doc = self.current
        key = self.current_key()
        if doc is None or key is None:
            return
        if why := _why(doc):
            self._show_not_classified(doc, why)
            return
        self.view.clear_not_classified()
        pred = doc.predictions.get(key.prediction_key())
        maps = self.maps_cache.get(key)
        mode = self._pending_mode(key.roi)
        if pred is not None:
            self._present_prediction(doc, key, pred)
        else:
            self.view.show_auto_finding(None, None)
        if maps is not None:
            self.view.show_maps(key, maps)
        if pred is not None and maps is not None:
            self.analysis.cancel()
            return
        if self.engine is None and self.engine_error:
            self.view.show_waiting(doc.doc_id, "No model", mode)
            self.view.show_maps_status(f"The model could not be loaded: {self.engine_error}")
            return
        if not request:
            waiting = "Playing: pause to classify"
        elif self.engine is None:
            waiting = "Loading model..."
        else:
            waiting = "Classifying..."
        if pred is None:
            self.view.show_waiting(doc.doc_id, waiting, mode)
        if not request:
            self.view.show_maps_status("Pause playback to compute the heat maps")
            return
        self.view.show_maps_status("Loading model..." if self.engine is None
                                   else "Computing heat maps...")
        self.analysis.request(key, doc.record)

    def _find_source(self, doc: Document) -> None:
        """A report read without its image is shown over it when another open file is it."""
        if doc.record is None or doc.record.has_image or doc.record.stored is None:
            return
        for other in self.documents():
            if other is not doc and other.record is not None:
                found = over_source(doc.record, other.record)
                if found is not None:
                    doc.record, doc.frame = found, found.pixels_frame
                    return

    def _show_not_classified(self, doc: Document, why: str) -> None:
        """A file shown, not classified: this program's own export, or a structured report
        (its stored lesion box and calipers drawn over its image when it is at hand)."""
        self.analysis.cancel()
        record = doc.record
        stored = record.stored
        result = stored.result if stored is not None else None
        if result is not None and record.has_image:
            self.view.show_box(result.box)
            self.view.show_measurements(result.measured())
        self.view.show_not_classified(doc.doc_id, doc.name, why, stored, record.has_image)

    def _present_prediction(self, doc: Document, key: AnalysisKey, pred: Prediction) -> None:
        """Show ``pred``, the result for what is on display, and the box it found."""
        self.view.show_prediction(doc.doc_id, key, pred)
        if doc.box() is None and pred.box_source == "auto" and pred.box is not None:
            outline = pred.finding.outline if pred.finding is not None else None
            self.view.show_auto_finding(pred.box, outline)
        else:
            self.view.show_auto_finding(None, None)

    # --- files coming in -----------------------------------------------------------------------

    def on_file_loaded(self, message: FileLoaded) -> None:
        doc = self.document_for(message.path)
        if doc is None:
            return
        doc.record, doc.loading, doc.error = message.record, False, ""
        if doc.record.stored is not None:
            doc.frame = doc.record.pixels_frame  # a report is shown on the frame it refers to
        self.view.set_thumbnail(doc.doc_id, message.thumbnail)
        self._arrange()
        if doc is self.current:
            self.show_document(doc)
        elif self.engine is not None and not _why(doc):
            # Label it in the list when the model is free (prediction only, no maps). While
            # the model loads, on_engine_ready queues every image still without a label.
            self.analysis.queue_background([(doc.key(), doc.record)])

    def on_file_failed(self, message: FileFailed) -> None:
        doc = self.document_for(message.path)
        if doc is None:
            return
        doc.loading, doc.error = False, message.reason
        self.view.set_document_failed(doc.doc_id, message.reason)
        self._arrange()
        self.view.show_notice(f"Cannot read {message.path.name}: {message.reason}")
        if doc is self.current:
            self.show_document(doc)

    # --- results coming in ---------------------------------------------------------------------

    def on_prediction(self, message: PredictionReady) -> None:
        """Keep the prediction by its key; show it where that key is on display."""
        key, pred = message.request.key, message.prediction
        doc = self.docs.get(key.doc_id)
        if doc is None:
            return
        pkey = key.prediction_key()
        doc.predictions[pkey] = pred
        current = self.current_key()
        if doc is self.current:
            if current is not None and current.prediction_key() == pkey:
                self._present_prediction(doc, key, pred)
        elif doc.key().prediction_key() == pkey:
            self.view.set_list_prediction(doc.doc_id, pred)

    def on_heatmaps(self, message: HeatmapsReady) -> None:
        """Keep the maps by their key; show them when that key is on display."""
        key, maps = message.request.key, message.maps
        doc = self.docs.get(key.doc_id)
        if doc is None:
            return
        self.maps_cache.put(key, maps)
        doc.predictions.setdefault(key.prediction_key(), maps.prediction)
        if self.current_key() == key:
            self.view.show_maps(key, maps)
            self._update_actions()

    def on_analysis_failed(self, message: AnalysisFailed) -> None:
        key = message.request.key
        if self.current_key() != key:
            return
        doc = self.docs[key.doc_id]
        text = f"Could not classify {doc.name}: {message.message}"
        self.view.show_waiting(doc.doc_id, "Could not classify", "")
        self.view.show_maps_status(text)
        self.view.show_notice(text)

    def on_busy(self, busy: bool) -> None:
        self.view.set_busy(busy)

    # --- the engine coming in ------------------------------------------------------------------

    def on_engine_loading(self, device: str) -> None:
        self.view.show_engine_loading(device)
        self._update_actions()

    def on_engine_ready(self, engine: Engine) -> None:
        self._labels = engine_methods(engine)
        wanted = self.preferred_method
        if wanted not in self._labels:
            wanted = fast_method(engine)
        self.method = wanted
        self.view.set_methods(list(self._labels.values()), self._labels[wanted])
        self.view.show_engine_ready(EngineInfo(self.device_name or "CPU", engine.device_note,
                                               engine.model_version, bool(engine.untrained)),
                                    engine)
        self._update_actions()
        # Anything opened while the model loaded: classify the current one, then the rest.
        self._show_analysis()
        rest = [(d.key(), d.record) for d in self.documents()
                if d is not self.current and d.record is not None and d.latest_prediction() is None
                and not _why(d)]
        self.analysis.queue_background(rest)

    def on_engine_failed(self, message: str) -> None:
        self.view.show_engine_failed(message)
        doc = self.current
        self.view.show_waiting(doc.doc_id if doc is not None else None, "No model", "")
        self.view.show_maps_status(f"The model could not be loaded: {message}")


def _why(doc: Document) -> str:
    """Why ``doc`` is shown but not classified ("" for an image to classify, or not read)."""
    return not_classified(doc.record) if doc.record is not None else ""
