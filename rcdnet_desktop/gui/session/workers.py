"""Background work for the viewer: thread pools and runnables.

Rules:

* Inference runs off the GUI thread, and never two model calls at once: the heat-map hooks
  change the model. Every model call goes through
  :class:`~rcdnet_desktop.gui.session.engine.LockedEngine`, whose fair lock serialises the viewer's
  worker and the batch review's worker call by call, so a long batch does not freeze the
  viewer and the viewer never runs beside the batch.
* Workers never touch widgets. A :class:`Job` runs a plain function in a pool thread and hands
  its outcome back through the signals of a :class:`JobSignals` object that lives in the GUI
  thread, so the connected slots run there (queued connections).
  What they report are the typed messages of :mod:`rcdnet_desktop.gui.session.messages`.
* Every pool the GUI creates is registered in :data:`POOLS` so shutdown and the tests can wait
  for all of them.
"""

from __future__ import annotations

import traceback
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

POOLS: weakref.WeakSet[QThreadPool] = weakref.WeakSet()
"""Every thread pool created by :func:`make_pool` (weakly held)."""


def make_pool(name: str, parent: QObject | None = None) -> QThreadPool:
    """Return a new registered thread pool with exactly one thread.

    One thread per pool keeps the work of each kind strictly sequential; idle threads expire
    quickly so an idle viewer holds no threads.
    """
    pool = QThreadPool(parent)
    pool.setObjectName(name)
    pool.setMaxThreadCount(1)
    pool.setExpiryTimeout(2000)
    POOLS.add(pool)
    return pool


def live_pools() -> list[QThreadPool]:
    """Registered pools whose C++ object still exists (a deleted pool has no threads)."""
    import shiboken6

    return [p for p in list(POOLS) if shiboken6.isValid(p)]


def wait_for_pools(timeout_ms: int = 10000) -> bool:
    """Wait until every registered pool is idle; return True when all are."""
    ok = True
    for pool in live_pools():
        ok = pool.waitForDone(timeout_ms) and ok
    return ok


class JobSignals(QObject):
    """Signals of one :class:`Job`; created in the GUI thread so slots run there."""

    progress = Signal(object)
    result = Signal(object)
    error = Signal(str)
    done = Signal()


class Job(QRunnable):
    """Run ``fn(report, *args, **kwargs)`` in a pool thread.

    ``report(value)`` emits :attr:`JobSignals.progress`; the return value is emitted by
    :attr:`JobSignals.result`; an exception by :attr:`JobSignals.error` with a one-line
    message (the traceback goes to stderr). :attr:`JobSignals.done` always comes last.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.signals = JobSignals()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs

    def run(self) -> None:  # noqa: D102 - runs in the pool thread
        signals = self.signals
        try:
            value = self._fn(signals.progress.emit, *self._args, **self._kwargs)
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, never lost
            traceback.print_exc()
            signals.error.emit(error_text(exc))
        else:
            signals.result.emit(value)
        finally:
            signals.done.emit()


def error_text(exc: BaseException) -> str:
    """A one-line message for the user: the exception's text, or its type when empty."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


class JobKeeper(QObject):
    """Keeps Python references to running jobs' signal objects until each job is done.

    Without it the :class:`JobSignals` of a job could be garbage-collected while its queued
    signals are still on their way to the GUI thread, and the results would be lost. The
    release is a slot of this GUI-thread object, so it runs after the job's other queued
    signals have been delivered.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._live: set[JobSignals] = set()

    def start(self, pool: QThreadPool, job: Job) -> None:
        signals = job.signals
        self._live.add(signals)
        signals.done.connect(self._release)
        pool.start(job)

    @Slot()
    def _release(self) -> None:
        self._live.discard(self.sender())

    def __len__(self) -> int:
        return len(self._live)
