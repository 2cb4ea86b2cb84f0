"""The viewer's cine sweep: every frame of the clip on display classified in the background.

:class:`CineSweeper` runs :func:`~rcdnet_desktop.core.cine.classify_frames` in a one-thread
pool of its own, a chunk of frames per forward pass, through the viewer's
:class:`~rcdnet_desktop.gui.session.engine.LockedEngine`: the lock is fair, so the viewer's own
analysis (the frame on display, its heat maps) waits at most one chunk and the window stays
responsive. Each chunk's results come back to the GUI thread as they are done.

One sweep at a time: starting another (another clip put on display) or :meth:`cancel` stops
the running one before its next chunk; what it had done is still reported, so a clip the user
comes back to only needs its missing frames.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from rcdnet_desktop.core.cine import DEFAULT_SWEEP_CHUNK, FrameResult, classify_frames
from rcdnet_desktop.core.types import ImageRecord
from rcdnet_desktop.gui.session.engine import Engine
from rcdnet_desktop.gui.session.workers import Job, JobKeeper, make_pool


@dataclass(frozen=True)
class _Chunk:
    job: int
    doc_id: int
    results: list[FrameResult]


@dataclass(frozen=True)
class _End:
    job: int
    doc_id: int
    complete: bool


def _sweep(report: Callable[[object], None], job: int, doc_id: int, engine: Engine,
           record: ImageRecord, frames: Sequence[int], chunk: int,
           cancel: threading.Event) -> _End:
    """Worker body: report each chunk's results; the end says whether every frame was done."""
    done = 0
    for results in classify_frames(engine, record, frames, chunk=chunk,
                                   cancelled=cancel.is_set):
        report(_Chunk(job, doc_id, results))
        done += len(results)
    return _End(job, doc_id, done == len(frames) and not cancel.is_set())


class CineSweeper(QObject):
    """Classifies a clip's frames in the background, one clip at a time.

    Signals
    -------
    frames_ready(int, object)
        A document id and a list of :class:`~rcdnet_desktop.core.cine.FrameResult` for it.
    finished(int, bool)
        A document id's sweep ended: True when all its frames asked for were done, False
        when it was cancelled (or stopped by an error).
    """

    frames_ready = Signal(int, object)
    finished = Signal(int, bool)

    def __init__(self, parent: QObject | None = None,
                 chunk: int = DEFAULT_SWEEP_CHUNK) -> None:
        super().__init__(parent)
        self._pool = make_pool("rcdnet-cine-sweep", self)
        self._keeper = JobKeeper(self)
        self._chunk = chunk
        self._cancel = threading.Event()
        self._running: int | None = None
        self._job = 0
        self._valid_from = 0
        self._jobs = itertools.count(1)
        self._closed = False

    @property
    def running(self) -> int | None:
        """The document id being swept, or None."""
        return self._running

    def start(self, doc_id: int, record: ImageRecord, engine: Engine,
              frames: Sequence[int]) -> None:
        """Sweep ``frames`` of ``record`` (document ``doc_id``), stopping any other sweep."""
        if self._closed:
            return
        self.cancel()
        cancel = self._cancel = threading.Event()
        self._running = doc_id
        self._job = next(self._jobs)
        job = Job(_sweep, self._job, doc_id, engine, record, list(frames), self._chunk, cancel)
        job.signals.progress.connect(self._on_chunk)
        job.signals.result.connect(self._on_end)
        job.signals.error.connect(self._on_error)
        self._keeper.start(self._pool, job)

    def cancel(self) -> None:
        """Stop the running sweep before its next chunk."""
        self._cancel.set()
        self._running = None

    def forget(self) -> None:
        """Stop the running sweep and drop whatever any sweep started so far still reports
        (the engine changed: those results are another model's)."""
        self.cancel()
        self._valid_from = self._job + 1

    @Slot(object)
    def _on_chunk(self, chunk: _Chunk) -> None:
        if not self._closed and chunk.job >= self._valid_from:
            self.frames_ready.emit(chunk.doc_id, chunk.results)

    @Slot(object)
    def _on_end(self, end: _End) -> None:
        if end.job == self._job:
            self._running = None
        if not self._closed:
            self.finished.emit(end.doc_id, end.complete)

    @Slot(str)
    def _on_error(self, _message: str) -> None:
        # classify_frames reports each frame's own failure; only an unexpected error of the
        # sweep itself gets here (its traceback went to stderr): the sweep stops there.
        doc_id, self._running = self._running, None
        if doc_id is not None and not self._closed:
            self.finished.emit(doc_id, False)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop and wait for the running sweep; True when idle."""
        self._closed = True
        self.cancel()
        self._pool.clear()
        return self._pool.waitForDone(timeout_ms)
