"""The engine as the viewer sees it: a typed protocol, its lock, and a few readings of it.

Plain Python (no Qt). :class:`Engine` lists exactly what the viewer and the batch review use of
:class:`~rcdnet_desktop.core.model.engine.InferenceEngine`. :class:`LockedEngine` implements that
protocol member by member, each model call under a shared :class:`FairLock`: it has no
``__getattr__``, so a method the protocol does not list cannot be reached through it, and a
method added to the protocol must be added here too (a test checks that every method is
locked).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, Prediction


class Engine(Protocol):
    """What the GUI uses of an inference engine (the real one, or a test's fake)."""

    @property
    def device(self) -> str:
        """torch's device ("cpu", "cuda", "cuda:1", "mps") or "cpu-onnx"."""

    @property
    def device_name(self) -> str:
        """The device in words when it is not torch's, else ""."""

    @property
    def device_note(self) -> str:
        """Why the device differs from the one asked for ("" when it does not)."""

    @property
    def model_version(self) -> str: ...

    @property
    def untrained(self) -> bool: ...

    @property
    def card(self) -> Any:
        """The model card (``to_dict()``, ``roi_margin``...)."""

    @property
    def has_localiser(self) -> bool:
        """Whether the engine finds lesion boxes by itself."""

    @property
    def methods(self) -> dict[str, str]:
        """Heat-map method keys with display labels, the fast closed-form one first."""

    @property
    def operating_point(self) -> OperatingPoint:
        """The operating point results are decided at (the card's, or a site profile's)."""

    @property
    def profile(self) -> Any:
        """The site profile in use (:mod:`rcdnet_desktop.core.site_profile`), or None."""

    def prepare(self, image: ImageRecord, roi: Box | None = None, frame: int = 0,
                auto_box: bool = True) -> Any: ...

    def predict(self, image: ImageRecord, roi: Box | None = None, frame: int = 0,
                auto_box: bool = True) -> Prediction: ...

    def explain(self, image: ImageRecord, roi: Box | None = None, frame: int = 0,
                method: str = "fast", auto_box: bool = True) -> HeatMaps: ...

    def predict_prepared(self, items: Sequence[Any]) -> list[Prediction]: ...

    def explain_prepared(self, items: Sequence[Any], method: str = "fast") -> list[HeatMaps]: ...


EngineFactory = Callable[[str], Engine]
"""``factory(device) -> engine``; the device is one of :data:`~.settings.DEVICES`."""


def protocol_members(protocol: type) -> tuple[list[str], list[str]]:
    """(methods, properties) a protocol class declares itself, by name."""
    methods, properties = [], []
    for name, value in vars(protocol).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            properties.append(name)
        elif callable(value):
            methods.append(name)
    return methods, properties


def default_engine_factory(device: str) -> Engine:
    """Create the real :class:`~rcdnet_desktop.core.model.engine.InferenceEngine` (on the ONNX
    backend torch stays out until a method needs it)."""
    # The engine (~0.2 s, more with ONNX Runtime) loads in the worker, after the window shows.
    from rcdnet_desktop.core.model.engine import InferenceEngine

    return InferenceEngine(model_dir=None, device=device)  # the bundled model


def engine_operating_point(engine: Any) -> OperatingPoint:
    """The operating point the engine decides at (its site profile's, or its card's); the
    default one without an engine."""
    op = getattr(engine, "operating_point", None) if engine is not None else None
    if isinstance(op, OperatingPoint):
        return op
    return OperatingPoint.from_card(engine.card if engine is not None else None)


def engine_methods(engine: Engine) -> dict[str, str]:
    """Heat-map method keys the engine accepts, with display labels; the fast default first."""
    out = {str(k): str(v) for k, v in dict(engine.methods or {}).items()}
    return out or {"fast": "fast"}


def fast_method(engine: Engine) -> str:
    """The engine's default (fast, closed-form) heat-map method: the first one it lists."""
    return next(iter(engine_methods(engine)))


def engine_device_name(engine: Engine) -> str:
    """The device in words: the engine's own name for it, the GPU's name, or "CPU"."""
    name = engine.device_name
    if isinstance(name, str) and name:
        return name
    device = str(engine.device)
    if device.startswith("cuda"):
        try:
            import torch  # already imported by the engine on a GPU: no start-up cost here

            index = int(device.split(":")[1]) if ":" in device else 0
            return f"GPU {torch.cuda.get_device_name(index)}"
        except Exception:  # noqa: BLE001 - a name is nice to have, never required
            return "GPU (CUDA)"
    if device == "mps":
        return "GPU (Apple MPS)"
    return "CPU"


class FairLock:
    """A first-come, first-served lock.

    ``threading.Lock`` is not fair: a thread that releases it and at once asks again (a batch
    loop) usually gets it back, starving the viewer. Tickets keep the order of arrival.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[object] = deque()
        self._held = False

    def acquire(self) -> None:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            while self._held or self._queue[0] is not ticket:
                self._cond.wait()
            self._queue.popleft()
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def locked(self) -> bool:
        return self._held

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


UNLOCKED_METHODS = frozenset({"prepare"})
"""Protocol methods deliberately run without the lock: ``prepare`` decodes, checks and crops,
and runs the lesion localiser, which is only read (no hooks) and is not the classifier the
locked methods run, so the batch review prepares the next files while the model works (see
:meth:`~rcdnet_desktop.core.model.engine.InferenceEngine.prepare`)."""


class LockedEngine:
    """:class:`Engine` whose model calls are serialised by a shared :class:`FairLock`.

    Inference never runs twice at once: the heat-map hooks change the model while they run. The
    lock is fair, so the viewer's worker and the batch review's worker take turns call by call.
    Properties are read through unchanged.
    """

    def __init__(self, engine: Engine, lock: FairLock) -> None:
        self._engine = engine
        self._lock = lock

    # --- properties (read through) -------------------------------------------------------

    @property
    def device(self) -> str:
        return self._engine.device

    @property
    def device_name(self) -> str:
        return self._engine.device_name

    @property
    def device_note(self) -> str:
        return self._engine.device_note

    @property
    def model_version(self) -> str:
        return self._engine.model_version

    @property
    def untrained(self) -> bool:
        return self._engine.untrained

    @property
    def card(self) -> Any:
        return self._engine.card

    @property
    def has_localiser(self) -> bool:
        return self._engine.has_localiser

    @property
    def operating_point(self) -> OperatingPoint:
        return self._engine.operating_point

    @property
    def profile(self) -> Any:
        return self._engine.profile

    @property
    def methods(self) -> dict[str, str]:
        return self._engine.methods

    # --- model calls (locked, except those in UNLOCKED_METHODS) ----------------------------

    def prepare(self, image: ImageRecord, roi: Box | None = None, frame: int = 0,
                auto_box: bool = True) -> Any:
        return self._engine.prepare(image, roi=roi, frame=frame, auto_box=auto_box)

    def predict(self, image: ImageRecord, roi: Box | None = None, frame: int = 0,
                auto_box: bool = True) -> Prediction:
        with self._lock:
            return self._engine.predict(image, roi=roi, frame=frame, auto_box=auto_box)

    def explain(self, image: ImageRecord, roi: Box | None = None, frame: int = 0,
                method: str = "fast", auto_box: bool = True) -> HeatMaps:
        with self._lock:
            return self._engine.explain(image, roi=roi, frame=frame, method=method,
                                        auto_box=auto_box)

    def predict_prepared(self, items: Sequence[Any]) -> list[Prediction]:
        with self._lock:
            return self._engine.predict_prepared(items)

    def explain_prepared(self, items: Sequence[Any], method: str = "fast") -> list[HeatMaps]:
        with self._lock:
            return self._engine.explain_prepared(items, method=method)
