"""Runs the model for the viewer in the background: one inference worker, newest request first.

:class:`AnalysisRunner` owns the one inference worker (a one-thread pool). It

* loads the engine there (the window is up first; torch, when needed, is imported there);
* keeps at most one analysis running and at most one waiting: a new request *replaces* the
  waiting one, so flipping through 50 images computes the current one and the newest, not 50;
* numbers every request (a generation counter): a request that is no longer the newest is not
  started, and one running stops before its second step; what it did compute is still
  reported, tagged with its request, so the viewer can keep it for when the user comes back;
* when idle, predicts the other open images one by one (prediction only, no heat maps) so the
  image list fills with labels.

What to show is decided by :class:`~rcdnet_desktop.gui.window.viewer_controller.ViewerController`;
this module only schedules. Results are the typed messages of
:mod:`rcdnet_desktop.gui.session.messages`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal, Slot

from rcdnet_desktop.core.model.device import DEVICE_ENV
from rcdnet_desktop.core.types import ImageRecord
from rcdnet_desktop.gui.session.document import AnalysisKey
from rcdnet_desktop.gui.session.engine import (
    Engine,
    EngineFactory,
    FairLock,
    LockedEngine,
    default_engine_factory,
    engine_device_name,
    fast_method,
)
from rcdnet_desktop.gui.session.messages import (
    AnalysisFailed,
    AnalysisRequest,
    EngineLoaded,
    HeatmapsReady,
    PredictionReady,
)
from rcdnet_desktop.gui.session.workers import Job, JobKeeper, make_pool

Report = Callable[[object], None]


def _analyse(report: Report, engine: Engine, request: AnalysisRequest,
             is_current: Callable[[int], bool]) -> None:
    """Worker body: the prediction first (reported at once), then the heat maps.

    With the fast method one call gives both (the maps come from the same forward pass), so
    the prediction is reported together with the maps. A request that has gone stale is not
    started, and stops before its second step.
    """
    gen = request.generation
    if not is_current(gen):
        return
    record, frame, roi = request.record, request.frame, request.roi
    if not request.explain:
        report(PredictionReady(request, engine.predict(record, roi=roi, frame=frame)))
        return
    if request.method == fast_method(engine):
        maps = engine.explain(record, roi=roi, frame=frame, method=request.method)
        report(PredictionReady(request, maps.prediction))
        report(HeatmapsReady(request, maps))
        return
    report(PredictionReady(request, engine.predict(record, roi=roi, frame=frame)))
    if not is_current(gen):
        return
    report(HeatmapsReady(request, engine.explain(record, roi=roi, frame=frame,
                                                 method=request.method)))


def _load_engine(report: Report, factory: EngineFactory, device: str) -> Engine:
    t0 = time.perf_counter()
    engine = factory(device)
    report(EngineLoaded(time.perf_counter() - t0, engine_device_name(engine)))
    return engine


class AnalysisRunner(QObject):
    """Runs the model for the viewer, one job at a time, newest request first.

    Signals
    -------
    engine_loading(str)
        The device asked for; the model is being (re)loaded.
    engine_ready(object)
        The engine (a :class:`~rcdnet_desktop.gui.session.engine.LockedEngine`) is ready.
    engine_failed(str)
        The model could not be loaded; the message says why.
    prediction_ready(object)
        A :class:`~rcdnet_desktop.gui.session.messages.PredictionReady`, for any request of the
        engine now loaded (the newest or not).
    heatmaps_ready(object)
        A :class:`~rcdnet_desktop.gui.session.messages.HeatmapsReady`, likewise.
    analysis_failed(object)
        An :class:`~rcdnet_desktop.gui.session.messages.AnalysisFailed`, likewise.
    busy_changed(bool)
    """

    engine_loading = Signal(str)
    engine_ready = Signal(object)
    engine_failed = Signal(str)
    prediction_ready = Signal(object)
    heatmaps_ready = Signal(object)
    analysis_failed = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, engine_factory: EngineFactory | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = engine_factory or default_engine_factory
        self._pool = make_pool("rcdnet-inference", self)
        self._keeper = JobKeeper(self)
        self.lock = FairLock()
        self._engine: LockedEngine | None = None
        self._engine_error = ""
        self._generation = 0
        self._epoch = 0
        self._pending: AnalysisRequest | None = None
        self._running: AnalysisRequest | None = None
        self._load_running = False
        self._load_pending: str | None = None
        self._background: deque[AnalysisRequest] = deque()
        self._closed = False
        self.load_seconds: float | None = None
        self.device_name = ""

    # --- state -------------------------------------------------------------------------------

    @property
    def engine(self) -> LockedEngine | None:
        """The loaded engine (serialised by :attr:`lock`), or None while loading / on failure."""
        return self._engine

    @property
    def engine_error(self) -> str:
        return self._engine_error

    @property
    def generation(self) -> int:
        return self._generation

    def is_current(self, generation: int) -> bool:
        """True when ``generation`` is the newest request (safe to call from the worker)."""
        return generation == self._generation and not self._closed

    def is_busy(self) -> bool:
        """True while a job runs or one waits that can run (not while there is no model)."""
        if self._running is not None or self._load_running or self._load_pending is not None:
            return True
        return self._engine is not None and bool(self._pending or self._background)

    # --- engine ------------------------------------------------------------------------------

    def load_engine(self, device: str = "auto") -> None:
        """(Re)create the engine on ``device`` ("auto", "cpu", "cuda" or "mps") in the worker.

        Results of the engine it replaces are no longer reported.
        """
        if self._closed:
            return
        env = os.environ.get(DEVICE_ENV)
        if device == "auto" and env:
            device = env
        self._generation += 1
        self._epoch += 1
        self._background.clear()
        self._load_pending = device
        self._engine = None
        self._engine_error = ""
        self.engine_loading.emit(device)
        self._kick()

    # --- requests ----------------------------------------------------------------------------

    def request(self, key: AnalysisKey, record: ImageRecord, explain: bool = True) -> int:
        """Ask for the prediction (and heat maps) of ``key``; return the request's generation.

        Replaces any request still waiting; a running one stops before its next step.
        """
        self._generation += 1
        self._pending = AnalysisRequest(key, record, self._generation, explain, self._epoch)
        self._kick()
        return self._generation

    def cancel(self) -> None:
        """Forget the waiting request and make any running one stale."""
        self._generation += 1
        self._pending = None

    def queue_background(self, items: Sequence[tuple[AnalysisKey, ImageRecord]]) -> None:
        """Predict these (no heat maps) when there is nothing newer to do."""
        for key, record in items:
            self._background.append(AnalysisRequest(key, record, -1, False, self._epoch))
        self._kick()

    # --- scheduling --------------------------------------------------------------------------

    def _kick(self) -> None:
        if self._closed or self._running is not None or self._load_running:
            return
        if self._load_pending is not None:
            device, self._load_pending = self._load_pending, None
            self._load_running = True
            job = Job(_load_engine, self._factory, device)
            job.signals.result.connect(self._on_engine)
            job.signals.error.connect(self._on_engine_error)
            job.signals.progress.connect(self._on_load_progress)
            job.signals.done.connect(self._on_load_done)
            self.busy_changed.emit(True)
            self._keeper.start(self._pool, job)
            return
        if self._engine is None:
            return
        if self._pending is not None:
            request, self._pending = self._pending, None
        elif self._background:
            request = self._background.popleft()
        else:
            return
        self._running = request
        job = Job(_analyse, self._engine, request, self._is_wanted)
        job.signals.progress.connect(self._on_progress)
        job.signals.error.connect(self._on_error)
        job.signals.done.connect(self._on_done)
        self.busy_changed.emit(True)
        self._keeper.start(self._pool, job)

    def _is_wanted(self, generation: int) -> bool:
        # Background predictions carry generation -1: wanted unless a user request waits.
        if generation < 0:
            return self._pending is None and not self._closed
        return self.is_current(generation)

    def _reportable(self, request: AnalysisRequest) -> bool:
        return not self._closed and request.epoch == self._epoch

    # --- slots (GUI thread) ------------------------------------------------------------------

    @Slot(object)
    def _on_load_progress(self, message: object) -> None:
        if isinstance(message, EngineLoaded):
            self.load_seconds = message.seconds
            self.device_name = message.device_name

    @Slot(object)
    def _on_engine(self, engine: Engine) -> None:
        if self._closed:
            return
        self._engine = LockedEngine(engine, self.lock)
        self.engine_ready.emit(self._engine)

    @Slot(str)
    def _on_engine_error(self, message: str) -> None:
        self._engine_error = message
        self.engine_failed.emit(message)

    @Slot()
    def _on_load_done(self) -> None:
        self._load_running = False
        if self._engine is None and self._load_pending is None:
            # No engine: requests cannot run; keep the newest for a later successful load.
            self.busy_changed.emit(False)
        self._kick()
        if not self.is_busy():
            self.busy_changed.emit(False)

    @Slot(object)
    def _on_progress(self, message: object) -> None:
        if isinstance(message, PredictionReady) and self._reportable(message.request):
            self.prediction_ready.emit(message)
        elif isinstance(message, HeatmapsReady) and self._reportable(message.request):
            self.heatmaps_ready.emit(message)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        request = self._running
        if request is not None and self._reportable(request):
            self.analysis_failed.emit(AnalysisFailed(request, message))

    @Slot()
    def _on_done(self) -> None:
        self._running = None
        self._kick()
        if not self.is_busy():
            self.busy_changed.emit(False)

    # --- shutdown ----------------------------------------------------------------------------

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Drop everything waiting and wait for the running job; return True when idle."""
        self._closed = True
        self._generation += 1
        self._pending = None
        self._load_pending = None
        self._background.clear()
        self._pool.clear()
        return self._pool.waitForDone(timeout_ms)
