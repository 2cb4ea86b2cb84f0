"""Fakes behind the viewer controller's three boundaries: a view that records what it is told to
show, an analysis service that runs requests only when the test says so, and a file reader
that reads at once. Plain Python: no Qt."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.types import Box, HeatMaps, Prediction
from rcdnet_desktop.gui.session.document import AnalysisKey
from rcdnet_desktop.gui.session.engine import Engine, fast_method
from rcdnet_desktop.gui.session.messages import (
    AnalysisRequest,
    FileFailed,
    FileLoaded,
    HeatmapsReady,
    PredictionReady,
)
from rcdnet_desktop.gui.window.viewer_controller import ViewerController
from rcdnet_desktop.gui.window.viewer_protocols import ActionState, EngineInfo
from tests.gui.gui_helpers import FakeEngine


@dataclass
class FakeView:
    """Records every call, and keeps what would be on screen.

    ``panel`` and ``entries[doc_id]`` are ``("prediction", Prediction)``, ``("waiting", text)``,
    ``("not classified", why)`` or, for a list entry, ``("none", "")`` (not yet classified);
    ``stored`` is the stored result on display.
    """

    calls: list[tuple[str, tuple]] = field(default_factory=list)
    entries: dict[int, tuple[str, object]] = field(default_factory=dict)
    panel: tuple[str, object] = ("waiting", "")
    maps: tuple[AnalysisKey, HeatMaps] | None = None
    maps_status: str = ""
    box: Box | None = None
    auto_box: Box | None = None
    selected: int | None = None
    notices: list[str] = field(default_factory=list)
    actions: ActionState = field(default_factory=ActionState)
    methods: tuple[list[str], str] = ([], "")
    engine_info: EngineInfo | None = None
    sections: list = field(default_factory=list)
    context: object = None
    measured: tuple = ()
    stored: object = None

    def _record(self, name: str, *args) -> None:
        self.calls.append((name, args))

    def called(self, name: str) -> list[tuple]:
        return [args for n, args in self.calls if n == name]

    # --- the image list
    def add_document(self, doc_id, name, path):
        self._record("add_document", doc_id, name, path)
        self.entries[doc_id] = ("none", "")

    def remove_document(self, doc_id):
        self._record("remove_document", doc_id)
        self.entries.pop(doc_id, None)

    def set_thumbnail(self, doc_id, thumbnail):
        self._record("set_thumbnail", doc_id)
        self.entries[doc_id] = ("none", "")

    def set_document_failed(self, doc_id, reason):
        self._record("set_document_failed", doc_id, reason)
        self.entries[doc_id] = ("failed", reason)

    def set_list_prediction(self, doc_id, prediction):
        self._record("set_list_prediction", doc_id, prediction)
        self.entries[doc_id] = ("prediction", prediction) if prediction else ("none", "")

    def select_document(self, doc_id, name):
        self._record("select_document", doc_id, name)
        self.selected = doc_id

    def arrange_documents(self, sections):
        self._record("arrange_documents", sections)
        self.sections = list(sections)

    # --- the image on display
    def show_empty(self):
        self._record("show_empty")
        self.selected, self.maps, self.panel = None, None, ("waiting", "No image open")

    def show_placeholder(self, message, waiting, status):
        self._record("show_placeholder", message, waiting, status)
        self.panel, self.maps, self.maps_status = ("waiting", waiting), None, status

    def set_frame_count(self, count, fps, frame):
        self._record("set_frame_count", count, fps, frame)

    def show_frame(self, pixels, keep_view, box):
        self._record("show_frame", pixels.shape, keep_view, box)
        self.box, self.auto_box, self.maps = box, None, None

    def show_frame_error(self, message):
        self._record("show_frame_error", message)

    def show_image_info(self, text):
        self._record("show_image_info", text)

    def show_image_context(self, context):
        self._record("show_image_context", context)
        self.context = context

    def show_measurements(self, measured):
        self._record("show_measurements", measured)
        self.measured = tuple(measured)

    def show_box(self, box):
        self._record("show_box", box)
        self.box = box

    def show_auto_finding(self, box, outline):
        self._record("show_auto_finding", box)
        self.auto_box = box

    def show_pending_mode(self, mode):
        self._record("show_pending_mode", mode)

    def clear_maps(self):
        self._record("clear_maps")
        self.maps = None

    # --- results
    def show_prediction(self, doc_id, key, prediction):
        self._record("show_prediction", doc_id, key, prediction)
        self.panel = self.entries[doc_id] = ("prediction", prediction)

    def show_waiting(self, doc_id, text, mode):
        self._record("show_waiting", doc_id, text, mode)
        self.panel = ("waiting", text)
        if doc_id is not None:
            self.entries[doc_id] = ("waiting", text)

    def show_maps(self, key, maps):
        self._record("show_maps", key, maps)
        self.maps = (key, maps)

    def show_not_classified(self, doc_id, name, note, document, has_image):
        self._record("show_not_classified", doc_id, name, note, document, has_image)
        self.panel = self.entries[doc_id] = ("not classified", note)
        self.stored = document

    def clear_not_classified(self):
        self._record("clear_not_classified")
        self.stored = None

    def show_maps_status(self, text):
        self._record("show_maps_status", text)
        self.maps_status = text

    def show_notice(self, text):
        self._record("show_notice", text)
        self.notices.append(text)

    # --- the model
    def show_engine_loading(self, device):
        self._record("show_engine_loading", device)

    def show_engine_ready(self, info, engine):
        self._record("show_engine_ready", info)
        self.engine_info = info

    def show_engine_failed(self, message):
        self._record("show_engine_failed", message)

    def set_methods(self, labels, current):
        self._record("set_methods", labels, current)
        self.methods = (labels, current)

    def set_busy(self, busy):
        self._record("set_busy", busy)

    def update_actions(self, state):
        self.actions = state


class FakeAnalysis:
    """Keeps the requests; the test runs them (or not) with :meth:`Harness.run`."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.engine_error = ""
        self.device_name = ""
        self.requests: list[AnalysisRequest] = []
        self.background: list[tuple[AnalysisKey, object]] = []
        self.cancels = 0
        self.loads: list[str] = []

    def load_engine(self, device: str = "auto") -> None:
        self.loads.append(device)
        self.engine = None

    def request(self, key, record, explain=True) -> int:
        self.requests.append(AnalysisRequest(key, record, len(self.requests) + 1, explain))
        return len(self.requests)

    def cancel(self) -> None:
        self.cancels += 1

    def queue_background(self, items) -> None:
        self.background.extend(items)

    def is_busy(self) -> bool:
        return False


class FakeLoader:
    def __init__(self) -> None:
        self.loads: list[list[Path]] = []

    def load(self, paths) -> None:
        self.loads.append(list(paths))


class Harness:
    """A controller between the fakes, with the steps a test needs."""

    def __init__(self, engine: FakeEngine | None = None, preferred_method: str = "") -> None:
        self.view = FakeView()
        self.analysis = FakeAnalysis()
        self.loader = FakeLoader()
        self.engine = engine or FakeEngine()
        self.c = ViewerController(self.view, self.analysis, self.loader, preferred_method)

    def ready(self) -> None:
        """The engine has loaded."""
        self.analysis.engine = self.engine
        self.analysis.device_name = "CPU"
        self.c.on_engine_ready(self.engine)

    def read_all(self) -> None:
        """The reader reads every file it was given."""
        for paths in self.loader.loads:
            for p in paths:
                try:
                    record = read_image(p)
                except Exception as exc:  # noqa: BLE001 - the controller is told why
                    self.c.on_file_failed(FileFailed(p, str(exc)))
                else:
                    self.c.on_file_loaded(FileLoaded(p, record, np.zeros((4, 4), np.uint8)))
        self.loader.loads.clear()

    def run(self, request: AnalysisRequest) -> tuple[Prediction, HeatMaps | None]:
        """Run one request as the worker would, and deliver its results."""
        e, rec, k = self.engine, request.record, request.key
        if not request.explain:
            pred = e.predict(rec, roi=k.roi, frame=k.frame)
            self.c.on_prediction(PredictionReady(request, pred))
            return pred, None
        maps = e.explain(rec, roi=k.roi, frame=k.frame, method=k.method)
        if k.method != fast_method(e):
            self.c.on_prediction(PredictionReady(request, e.predict(rec, roi=k.roi,
                                                                    frame=k.frame)))
        else:
            self.c.on_prediction(PredictionReady(request, maps.prediction))
        self.c.on_heatmaps(HeatmapsReady(request, maps))
        return maps.prediction, maps

    def run_last(self) -> tuple[Prediction, HeatMaps | None]:
        return self.run(self.analysis.requests[-1])

    def list_matches_panel(self) -> bool:
        """The list entry of the image on display says what the panel says."""
        doc = self.c.current
        return doc is not None and self.view.entries[doc.doc_id] == self.view.panel
