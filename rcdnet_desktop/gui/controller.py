"""The viewer's controller: loads the model and images in the background, runs the analysis.

:class:`AnalysisController` owns the one inference worker (a one-thread pool). It

* loads the engine there (torch is imported in the worker, so the window is up first);
* keeps at most one analysis running and at most one waiting: a new request *replaces* the
  waiting one, so flipping through 50 images computes the current one and the newest, not 50;
* numbers every request (a generation counter) and drops any result whose number is not the
  newest: a result that comes back after the user has moved on is never shown;
* when idle, predicts the other open images one by one (prediction only, no heat maps) so the
  thumbnail list fills with labels.

:class:`ImageLoader` reads files in a second one-thread pool (reading is not inference and
must not wait behind it). Neither touches a widget: the window listens to their signals.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, Prediction
from rcdnet_desktop.gui.document import AnalysisKey
from rcdnet_desktop.gui.workers import FairLock, Job, JobKeeper, LockedEngine, make_pool

DEVICE_ENV = "RCDNET_DEVICE"

EngineFactory = Callable[[str], Any]


def default_engine_factory(device: str) -> Any:
    """Create the real :class:`~rcdnet_desktop.core.inference.InferenceEngine` (imports torch)."""
    from rcdnet_desktop.core.inference import InferenceEngine

    return InferenceEngine(device=device)


def engine_methods(engine: Any) -> dict[str, str]:
    """CAM method keys the engine accepts, with display labels; the fast default first."""
    methods = getattr(engine, "explain_methods", None)
    if methods is None:
        methods = getattr(engine, "methods", None)
    if isinstance(methods, dict):
        out = {str(k): str(v) for k, v in methods.items()}
    else:
        out = {str(k): str(k) for k in (methods or ())}
    return out or {"fast": "fast"}


def fast_method(engine: Any) -> str:
    """The engine's default (fast, closed-form) CAM method: the first one it lists."""
    return next(iter(engine_methods(engine)))


def engine_device_name(engine: Any) -> str:
    """The device in words: the GPU's name, or "CPU"."""
    name = getattr(engine, "device_name", None)
    if isinstance(name, str) and name:
        return name
    device = str(getattr(engine, "device", "cpu"))
    if device.startswith("cuda"):
        try:
            import torch  # already imported by the engine: no start-up cost here

            index = int(device.split(":")[1]) if ":" in device else 0
            return f"GPU {torch.cuda.get_device_name(index)}"
        except Exception:  # noqa: BLE001 - a name is nice to have, never required
            return "GPU (CUDA)"
    if device == "mps":
        return "GPU (Apple MPS)"
    return "CPU"


@dataclass(frozen=True)
class AnalysisRequest:
    """One request for a prediction and both heat maps of one frame of one image."""

    key: AnalysisKey
    record: ImageRecord
    generation: int
    explain: bool = True

    @property
    def frame(self) -> int:
        return self.key.frame

    @property
    def roi(self) -> Box | None:
        return self.key.roi

    @property
    def method(self) -> str:
        return self.key.method


def run_predict(engine: Any, record: ImageRecord, frame: int, roi: Box | None) -> Prediction:
    """Classify one frame (the call the GUI makes; one place to adapt to the engine)."""
    return engine.predict(record, roi=roi, frame=frame)


def run_explain(engine: Any, record: ImageRecord, frame: int, roi: Box | None,
                method: str) -> HeatMaps:
    """Both heat maps of one frame (the call the GUI makes; one place to adapt to the engine)."""
    return engine.explain(record, method=method, roi=roi, frame=frame)


def _analyse(report: Callable[[Any], None], engine: Any, request: AnalysisRequest,
             is_current: Callable[[int], bool]) -> None:
    """Worker body: prediction first (reported at once), then the heat maps.

    With the fast method one call gives both (the maps come from the same forward pass), so
    the prediction is reported together with the maps. Stops early when the request has gone
    stale in the meantime.
    """
    gen = request.generation
    if not is_current(gen):
        return
    record, frame, roi = request.record, request.frame, request.roi
    if not request.explain:
        report(("prediction", request, run_predict(engine, record, frame, roi)))
        return
    if request.method == fast_method(engine):
        maps = run_explain(engine, record, frame, roi, request.method)
        report(("prediction", request, maps.prediction))
        report(("heatmaps", request, maps))
        return
    report(("prediction", request, run_predict(engine, record, frame, roi)))
    if not is_current(gen):
        return
    report(("heatmaps", request, run_explain(engine, record, frame, roi, request.method)))


def _load_engine(report: Callable[[Any], None], factory: EngineFactory, device: str) -> Any:
    t0 = time.perf_counter()
    engine = factory(device)
    report(("loaded", time.perf_counter() - t0, engine_device_name(engine)))
    return engine


class AnalysisController(QObject):
    """Runs the model for the viewer, one job at a time, newest request first.

    Signals
    -------
    engine_loading(str)
        The device asked for; the model is being (re)loaded.
    engine_ready(object)
        The engine (wrapped in a :class:`LockedEngine`) is ready.
    engine_failed(str)
        The model could not be loaded; the message says why.
    prediction_ready(object, object)
        (AnalysisRequest, Prediction) for the newest request, or for a background prediction.
    heatmaps_ready(object, object)
        (AnalysisRequest, HeatMaps) for the newest request.
    analysis_failed(object, str)
        (AnalysisRequest, message).
    busy_changed(bool)
    """

    engine_loading = Signal(str)
    engine_ready = Signal(object)
    engine_failed = Signal(str)
    prediction_ready = Signal(object, object)
    heatmaps_ready = Signal(object, object)
    analysis_failed = Signal(object, str)
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
        """(Re)create the engine on ``device`` ("auto", "cpu" or "cuda") in the worker."""
        if self._closed:
            return
        env = os.environ.get(DEVICE_ENV)
        if device == "auto" and env:
            device = env
        self._generation += 1  # results of the old engine are no longer wanted
        self._background.clear()
        self._load_pending = device
        self._engine = None
        self._engine_error = ""
        self.engine_loading.emit(device)
        self._kick()

    # --- requests ----------------------------------------------------------------------------

    def request(self, key: AnalysisKey, record: ImageRecord, explain: bool = True) -> int:
        """Ask for the prediction (and heat maps) of ``key``; return the request's generation.

        Replaces any request still waiting; a running one finishes but its result is dropped.
        """
        self._generation += 1
        self._pending = AnalysisRequest(key, record, self._generation, explain)
        self._kick()
        return self._generation

    def cancel(self) -> None:
        """Forget the waiting request and make any running one stale."""
        self._generation += 1
        self._pending = None

    def queue_background(self, items: Sequence[tuple[AnalysisKey, ImageRecord]]) -> None:
        """Predict these (no heat maps) when there is nothing newer to do."""
        for key, record in items:
            self._background.append(AnalysisRequest(key, record, -1, explain=False))
        self._kick()

    def clear_background(self) -> None:
        self._background.clear()

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

    # --- slots (GUI thread) ------------------------------------------------------------------

    @Slot(object)
    def _on_load_progress(self, value: Any) -> None:
        if isinstance(value, tuple) and value and value[0] == "loaded":
            self.load_seconds = float(value[1])
            self.device_name = str(value[2])

    @Slot(object)
    def _on_engine(self, engine: Any) -> None:
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
    def _on_progress(self, value: Any) -> None:
        kind, request, payload = value
        if request.generation >= 0 and not self.is_current(request.generation):
            return  # stale: the user has moved on
        if self._closed:
            return
        if kind == "prediction":
            self.prediction_ready.emit(request, payload)
        elif kind == "heatmaps":
            self.heatmaps_ready.emit(request, payload)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        request = self._running
        if request is None or self._closed:
            return
        if request.generation < 0 or self.is_current(request.generation):
            self.analysis_failed.emit(request, message)

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


# --- image loading -------------------------------------------------------------------------


THUMB_SIZE = 96


def make_thumbnail(pixels: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """A small uint8 copy of ``pixels`` whose longer side is ``size`` (aspect kept)."""
    h, w = pixels.shape[:2]
    scale = size / max(h, w, 1)
    if scale >= 1:
        return np.ascontiguousarray(pixels)
    ys = (np.arange(max(1, round(h * scale))) / scale).astype(int).clip(0, h - 1)
    xs = (np.arange(max(1, round(w * scale))) / scale).astype(int).clip(0, w - 1)
    return np.ascontiguousarray(pixels[ys][:, xs])


def read_one(path: Path) -> ImageRecord:
    """Read ``path`` with the core reader (the one place the GUI reads images)."""
    from rcdnet_desktop.core import io

    return io.read_image(path)


def _read_files(report: Callable[[Any], None], paths: Sequence[Path],
                cancelled: Callable[[], bool]) -> None:
    for path in paths:
        if cancelled():
            return
        try:
            record = read_one(path)
            thumb = make_thumbnail(record.pixels)
        except Exception as exc:  # noqa: BLE001 - every unreadable file is reported, not raised
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            report(("failed", path, str(reason).splitlines()[0]))
        else:
            report(("loaded", path, (record, thumb)))


def expand_paths(paths: Sequence[str | Path], recursive: bool = True) -> list[Path]:
    """Files to open from files and folders given by the user, in a stable order."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(find_images(p, recursive=recursive))
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def find_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (the core's notion of an image file)."""
    from rcdnet_desktop.core import io

    return list(io.find_images(folder, recursive=recursive))


class ImageLoader(QObject):
    """Reads image files in a background thread, one file at a time.

    Signals
    -------
    loaded(object, object, object)
        (path, ImageRecord, thumbnail uint8 array).
    failed(object, str)
        (path, reason) for a file that could not be read.
    finished()
        A :meth:`load` call has been worked through.
    """

    loaded = Signal(object, object, object)
    failed = Signal(object, str)
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = make_pool("rcdnet-reader", self)
        self._keeper = JobKeeper(self)
        self._closed = False
        self._active = 0

    def load(self, paths: Sequence[Path]) -> None:
        if self._closed or not paths:
            return
        self._active += 1
        job = Job(_read_files, list(paths), lambda: self._closed)
        job.signals.progress.connect(self._on_progress)
        job.signals.done.connect(self._on_done)
        self._keeper.start(self._pool, job)

    def is_busy(self) -> bool:
        return self._active > 0

    @Slot(object)
    def _on_progress(self, value: Any) -> None:
        if self._closed:
            return
        kind, path, payload = value
        if kind == "loaded":
            record, thumb = payload
            self.loaded.emit(path, record, thumb)
        else:
            self.failed.emit(path, payload)

    @Slot()
    def _on_done(self) -> None:
        self._active -= 1
        self.finished.emit()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        self._closed = True
        self._pool.clear()
        return self._pool.waitForDone(timeout_ms)
