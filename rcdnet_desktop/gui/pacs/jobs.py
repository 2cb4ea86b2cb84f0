"""PACS work off the GUI thread: one :class:`PacsJob` per operation, cancellable.

A job runs a plain function of :mod:`rcdnet_desktop.core.pacs` in a Python thread (networking
waits on sockets, not on the GIL) and reports through Qt signals of an object that lives in the
GUI thread, so the connected slots run there. ``cancel()`` sets the event the core functions
watch: an association is aborted, an HTTP session closed, within a fraction of a second. The
window keeps every live job in :data:`JOBS` and cancels and joins them when it closes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDialog, QLabel

JOBS: weakref.WeakSet[PacsJob] = weakref.WeakSet()


class PacsJob(QObject):
    """``fn(cancel, progress)`` in a thread; ``done(result)``, ``failed(message)``,
    ``progress(value)`` in the GUI thread. A PacsCancelled ends as ``cancelled()``."""

    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    progress = Signal(object)

    def __init__(self, fn: Callable[[threading.Event, Callable[[Any], None]], Any],
                 parent: QObject | None = None, name: str = "pacs") -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self._fn = fn
        self._outcome_sent = False
        self._thread = threading.Thread(target=self._run, name=f"pacs-{name}", daemon=True)
        JOBS.add(self)

    def start(self) -> PacsJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def busy(self) -> bool:
        """Running and its outcome not yet sent: a dialog may start the next job once the
        outcome came, even while the thread is still winding down."""
        return self.running and not self._outcome_sent

    def wait(self, timeout_s: float = 10.0) -> bool:
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        from rcdnet_desktop.core.pacs import PacsCancelled

        try:
            result = self._fn(self.cancel_event, self.progress.emit)
        except PacsCancelled:
            self._outcome_sent = True
            self.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user in words
            self._outcome_sent = True
            self.failed.emit(str(exc) or type(exc).__name__)
        else:
            self._outcome_sent = True
            if self.cancel_event.is_set() and result is None:
                self.cancelled.emit()
            else:
                self.done.emit(result)


def stop_all(timeout_s: float = 10.0) -> bool:
    """Cancel every live job and wait for it; True when none is left running."""
    jobs = [j for j in list(JOBS) if j.running]
    for job in jobs:
        job.cancel()
    return all(job.wait(timeout_s) for job in jobs)


ERROR_STYLE = "color: #b00020;"
"""How a PACS dialog's status line shows a failure."""


class JobDialog(QDialog):
    """A dialog that runs one :class:`PacsJob` at a time (``job``) and says how it went in its
    ``status`` label; closing it cancels the job and waits for it."""

    job: PacsJob | None = None
    status: QLabel

    def show_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(ERROR_STYLE if error else "")
        self.status.setText(text)

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Cancel the running job, if any; True when it has ended within ``timeout_s``."""
        if self.job is None:
            return True
        self.job.cancel()
        return self.job.wait(timeout_s)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)
