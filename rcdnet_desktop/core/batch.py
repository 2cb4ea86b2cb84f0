"""Folder review: a generator of one :class:`BatchItem` per file.

Files are decoded and preprocessed on a background thread while the model runs on the previous
chunk, so the model is rarely left waiting for the disk. A file that fails yields an item with
the reason; the run goes on. Cancelling (``cancel.set()``) stops before the next file; every
item already yielded stays valid.

Only regular files are opened: a named pipe (which would block the run forever), a device (such
as ``/dev/zero``, which never ends) or a socket, named directly, found in a folder or reached
through a symbolic link, is checked with ``os.stat`` first and yields a *skipped* item with
the reason. So does a result this program exported (its Secondary Capture or Structured
Report, come back from a PACS) and any Structured Report: read, not classified
(:func:`rcdnet_desktop.core.io.own.not_classified` says why).

**Time budget.** Reading and preparing one file (decoding, intended-use checks, lesion
localiser) may take at most ``file_timeout`` seconds; a file that takes longer fails with the
reason and the run goes on with the next one. Python cannot stop a thread, so the overdue
file's loader thread is abandoned: it runs on in the background until its decoder returns
(it is a daemon thread, so it never keeps the program from exiting), and a fresh loader thread
takes the next files. At most :data:`MAX_ABANDONED` abandoned threads may be running at once;
while that many are, the next files fail at once rather than pile up more of them. The normal
path is unchanged: one loader thread ahead of the model. The budget does not cover the model's
batched forward pass, which runs on the caller's thread and takes a fixed, short time per
chunk; nor can it interrupt a decoder that holds Python's interpreter lock without letting go
(the readers' size budgets keep those short).

**Stopping.** When the generator is closed (the run ends, is cancelled, or the caller stops
iterating, e.g. on Ctrl+C), it waits up to :data:`STOP_GRACE` seconds for the loader thread to
finish the file it holds. A Python program must not end while one of its threads is inside a
native library that released the interpreter lock (onnxruntime, OpenCV): on Python before 3.14
that thread is torn down when it comes back for the lock, and the C++ runtime aborts the
process ("terminate called without an active exception"). :func:`loader_threads` names the
loader threads still running, so a program about to end can tell whether it is safe to.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rcdnet_desktop.core import audit
from rcdnet_desktop.core.bands import suspicious_threshold
from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.cine import clip_item
from rcdnet_desktop.core.errors import RcdNetError
from rcdnet_desktop.core.files import not_regular
from rcdnet_desktop.core.io import find_images, pick_frame, read_image
from rcdnet_desktop.core.io.own import not_classified
from rcdnet_desktop.core.types import Box, ImageRecord

if TYPE_CHECKING:
    from typing import TypeAlias

    from rcdnet_desktop.core.model.engine import InferenceEngine, Prepared

    Loaded: TypeAlias = tuple[ImageRecord, Prepared | "_Sweep"] | BatchItem
    """A file read and prepared (record and model input), or its failed or skipped item. A clip
    to be swept is read, not prepared: its frames are prepared as the sweep goes."""

DEFAULT_CHUNK = 8
"""Files sent through the model together: large enough to batch, small enough to cancel soon."""

DEFAULT_FILE_TIMEOUT = 60.0
"""Seconds one file may take to be read and prepared in a batch run (``rcdnet classify
--file-timeout``)."""

MAX_ABANDONED = 3
"""Loader threads left running on overdue files at most (see the module's time budget)."""

STOP_GRACE = 5.0
"""Seconds a closed review waits for its loader thread to finish the file it holds."""

LOADER_THREAD_NAME = "rcdnet-batch-load"


def loader_threads() -> list[threading.Thread]:
    """The loader threads still running: reading a file when their review was closed or past
    its time budget (see the module's notes on stopping)."""
    return [t for t in threading.enumerate()
            if t.name == LOADER_THREAD_NAME and t.is_alive()]

@dataclass(frozen=True)
class _Sweep:
    """A clip read on the loader thread, to be classified frame by frame (with this box)."""

    roi: Box | None


def _roi_for(path: Path, rois: Mapping[Path, Box] | None) -> Box | None:
    if not rois:
        return None
    return rois.get(path) or rois.get(path.resolve())


def _failed(path: Path, message: str) -> BatchItem:
    return BatchItem(path, error=message if str(path) in message else f"{path}: {message}")


def _roi_outside(roi: Box, shape: tuple[int, ...]) -> str | None:
    """Why a given lesion box cannot be used on an image of ``shape``, or None."""
    h, w = int(shape[0]), int(shape[1])
    if roi.x + roi.w <= w and roi.y + roi.h <= h:
        return None
    x, y, bw, bh = (str(v) if abs(v) < 10**9 else f"{float(v):.3g}" for v in roi.as_tuple())
    return (f"the lesion box given for it (x {x}, y {y}, width {bw}, height {bh}) does not lie "
            f"inside the image ({w} x {h} pixels); it was not classified")


def read_for_review(path: Path, roi: Box | None = None) -> ImageRecord | BatchItem:
    """Read one file as a review does, without the model: its record, or its item.

    What is not a regular file, this program's own result or a report is skipped, and a
    given lesion box that does not lie inside the image fails the file, as in :func:`review`.
    ``rcdnet archive`` reads files with it on one machine and classifies them
    (:func:`review_read`) on another.
    """
    other = not_regular(path)
    if other is not None and other != "a folder":  # a folder: read_image says why
        return BatchItem(path, skipped=True,
                         error=f"{path}: it is {other}, not a regular file; it was not opened")
    try:
        record = read_image(path)
        audit.opened(record)  # a DICOM study's image was opened: the audit trail says so
        if why := not_classified(record):  # this program's own result, or a report
            return BatchItem(path, skipped=True, error=f"{path}: {why}")
        if roi is not None and (outside := _roi_outside(roi, record.pixels.shape)):
            return _failed(path, outside)
        return record
    except RcdNetError as exc:
        return _failed(path, str(exc))
    except Exception as exc:  # a batch must outlive any one file, whatever it holds
        return _failed(path, f"unexpected {type(exc).__name__}: {exc}")


def _prepare(engine: InferenceEngine, record: ImageRecord, roi: Box | None, frame: int,
             auto_box: bool, sweep: int | str | None) -> Loaded:
    """The model input of a record read (the lesion localiser runs here), or its item."""
    try:
        if sweep is not None and record.frame_count > 1:
            return record, _Sweep(roi)
        return record, engine.prepare(record, roi=roi, frame=pick_frame(record, frame),
                                      auto_box=auto_box)
    except RcdNetError as exc:
        return _failed(record.path, str(exc))
    except Exception as exc:  # a batch must outlive any one file, whatever it holds
        return _failed(record.path, f"unexpected {type(exc).__name__}: {exc}")


def _load(engine: InferenceEngine, path: Path, roi: Box | None, frame: int,
          auto_box: bool = True, sweep: int | str | None = None) -> Loaded:
    """Read and prepare one file on the loader thread: record and input, or its item.

    With ``auto_box`` and no ``roi``, the engine's lesion localiser (if any) runs here too.
    With ``sweep``, a clip is only read (see :data:`Loaded`).
    """
    read = read_for_review(path, roi)
    if isinstance(read, BatchItem):
        return read
    return _prepare(engine, read, roi, frame, auto_box, sweep)


def review_read(engine: InferenceEngine,
                read: Sequence[tuple[ImageRecord | BatchItem, Box | None]], *,
                explain: bool = False, method: str = "fast", frame: int = 0,
                auto_box: bool = True, sweep: int | str | None = None) -> list[BatchItem]:
    """Classify files read by :func:`read_for_review` exactly as :func:`review` classifies
    one chunk: one item per entry, in order (an item read stays as it is).

    Each entry is what :func:`read_for_review` returned and the lesion box given for it (or
    None); the other parameters are :func:`review`'s. Records must have distinct paths.
    """
    loaded = [(r.path, r if isinstance(r, BatchItem)
               else _prepare(engine, r, roi, frame, auto_box, sweep)) for r, roi in read]
    return list(_run_chunk(engine, loaded, explain, method, lambda: False, auto_box, sweep))


class _Job:
    """One file for the loader: filled in by a loader thread, collected by the caller."""

    def __init__(self, path: Path, load: Callable[[], Loaded]) -> None:
        self.path, self.load = path, load
        self.started: float | None = None
        self.result: Loaded | None = None
        self.dropped = False
        self.done = threading.Event()


class _Loader:
    """Loads jobs in submission order on one daemon thread, with a time budget per job."""

    def __init__(self, budget: float | None) -> None:
        self._budget = budget
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._abandoned: list[threading.Thread] = []
        self._closed = False
        self._worker: threading.Thread | None = None
        self._start()

    def _start(self) -> None:
        self._worker = threading.Thread(target=self._work, name=LOADER_THREAD_NAME,
                                        daemon=True)
        self._worker.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while not self._closed and me is self._worker:
            job = self._jobs.get()
            if job is None:
                return
            if job.dropped:
                continue
            job.started = time.monotonic()
            try:
                job.result = job.load()
            except BaseException as exc:  # the loader thread must outlive any one file
                job.result = _failed(job.path, f"unexpected {type(exc).__name__}: {exc}")
            finally:
                job.done.set()

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)

    def result(self, job: _Job) -> Loaded:
        """The job's result, or a failed item when it overruns the budget."""
        if self._budget is None:
            job.done.wait()
        while not job.done.is_set():
            if not (self._worker and self._worker.is_alive()) and not self._restart():
                job.dropped = True
                return _failed(job.path, f"not read: {len(self._abandoned)} earlier files are "
                               "still being read past the time allowed per file")
            started = job.started if job.started is not None else time.monotonic()
            assert self._budget is not None
            if job.done.wait(max(0.0, started + self._budget - time.monotonic())):
                break
            if job.started is not None and not job.done.is_set():
                self._abandon()
                return _failed(job.path, f"not classified: reading and preparing it took more "
                               f"than {self._budget:g} s, the time allowed per file")
        assert job.result is not None
        return job.result

    def _abandon(self) -> None:
        if self._worker is not None:
            self._abandoned.append(self._worker)
        self._worker = None
        self._restart()

    def _restart(self) -> bool:
        """Start a fresh loader thread unless too many abandoned ones still run."""
        self._abandoned = [t for t in self._abandoned if t.is_alive()]
        if len(self._abandoned) >= MAX_ABANDONED:
            return False
        self._start()
        return True

    def close(self, wait: float = 0.0) -> None:
        """Stop after the file in hand, waiting up to ``wait`` seconds for it."""
        self._closed = True
        self._jobs.put(None)
        if self._worker is not None and wait > 0:
            self._worker.join(wait)


def review(paths: Iterable[str | Path], engine: InferenceEngine, *, recursive: bool = False,
           rois: Mapping[Path, Box] | None = None, explain: bool = False, method: str = "fast",
           frame: int = 0, cancel: threading.Event | None = None,
           chunk: int = DEFAULT_CHUNK, auto_box: bool = True,
           file_timeout: float | None = DEFAULT_FILE_TIMEOUT,
           sweep: int | str | None = None) -> Iterator[BatchItem]:
    """Classify every image under ``paths``, yielding one item per file in sorted order.

    Parameters
    ----------
    paths : iterable of str or Path
        Files and folders; folders are expanded with :func:`~rcdnet_desktop.core.io.find_images`.
    engine : InferenceEngine
        The engine to use. Only this generator's thread calls its model.
    recursive : bool
        Descend into sub-folders.
    rois : mapping of Path to Box, optional
        Lesion boxes by file (as given or resolved); files with a box are classified on it,
        whatever the localiser would find. A box that does not lie inside its image fails
        that file.
    explain : bool
        Also compute both heat maps (``method``) for every file.
    frame : int
        Frame of multi-frame files to classify; single-frame files use their only frame, and
        a clip without that frame fails with its frame count.
    cancel : threading.Event, optional
        Set it to stop before the next file.
    chunk : int
        Files per forward pass.
    auto_box : bool
        For files without a box in ``rois``, let the engine's lesion localiser (when it has
        one) find the box; False classifies them on the whole image.
    file_timeout : float, optional
        Seconds one file may take to be read and prepared; a slower file fails and the run
        goes on (see the module's notes). None: no limit.
    sweep : "all" or int, optional
        Classify each cine clip frame by frame instead of its one ``frame``: every frame
        ("all") or that many evenly spaced frames
        (:func:`~rcdnet_desktop.core.cine.sample_frames`). A clip is still one item, decided
        by :func:`~rcdnet_desktop.core.cine.clip_summary`: its most suspicious frame, with the
        clip's summary in ``clip`` (:func:`~rcdnet_desktop.core.cine.clip_item`); with
        ``explain``, that frame's heat maps. Single-frame images are classified as without
        it. The time budget covers reading the clip; its frames are then decoded one at a
        time on the caller's thread, each within the readers' per-frame budgets.

    Yields
    ------
    BatchItem
        With a prediction (and heat maps when asked), or with ``error`` naming the file and
        the reason; ``status`` ``skipped`` for a path that is not a regular file.
    """
    files = find_images(paths, recursive=recursive)
    cancelled = cancel.is_set if cancel is not None else (lambda: False)
    chunk = max(1, chunk)
    loader = _Loader(file_timeout if file_timeout and file_timeout > 0 else None)
    pending: deque[_Job] = deque()
    todo = iter(files)

    def top_up() -> None:
        # Keep two chunks in flight: one being decoded while the model runs the other.
        while len(pending) < 2 * chunk:
            path = next(todo, None)
            if path is None:
                return
            roi = _roi_for(path, rois)
            job = _Job(path, lambda p=path, r=roi: _load(engine, p, r, frame, auto_box, sweep))
            pending.append(job)
            loader.submit(job)

    try:
        top_up()
        while pending and not cancelled():
            batch = [pending.popleft() for _ in range(min(chunk, len(pending)))]
            top_up()
            loaded = [(job.path, loader.result(job)) for job in batch]
            yield from _run_chunk(engine, loaded, explain, method, cancelled, auto_box, sweep)
    finally:
        for job in pending:
            job.dropped = True
        loader.close(wait=STOP_GRACE)


def _run_chunk(engine: InferenceEngine, loaded: list[tuple[Path, Loaded]],
               explain: bool, method: str, cancelled, auto_box: bool = True,
               sweep: int | str | None = None) -> Iterator[BatchItem]:
    ok = [(p, *r) for p, r in loaded
          if not isinstance(r, BatchItem) and not isinstance(r[1], _Sweep)]
    prepared = [prep for _, _, prep in ok]
    results: dict[Path, BatchItem] = {}
    try:
        if prepared and explain:  # (none prepared: only failures and clips to sweep)
            maps = engine.explain_prepared(prepared, method=method)
            results = {p: BatchItem(p, m.prediction, m, record=rec)
                       for (p, rec, _), m in zip(ok, maps, strict=True)}
        elif prepared:
            # Records are dropped: a long review keeps only its small predictions.
            preds = engine.predict_prepared(prepared)
            results = {p: BatchItem(p, pr) for (p, _, _), pr in zip(ok, preds, strict=True)}
    except RcdNetError as exc:
        results = {p: BatchItem(p, error=f"{p}: {exc}") for p, _, _ in ok}
    for path, res in loaded:
        if cancelled():
            return
        if isinstance(res, BatchItem):
            yield res
        elif isinstance(res[1], _Sweep):
            item = _swept(engine, res[0], res[1].roi, sweep or "all", auto_box, explain,
                          method, cancelled)
            if item is None:  # cancelled during the sweep
                return
            yield item
        else:
            yield results[path]


def _swept(engine: InferenceEngine, record: ImageRecord, roi: Box | None, sweep: int | str,
           auto_box: bool, explain: bool, method: str, cancelled) -> BatchItem | None:
    """A clip swept frame by frame (:func:`~rcdnet_desktop.core.cine.clip_item`); with
    ``explain``, the heat maps of its most suspicious frame too. None when cancelled."""
    item = clip_item(engine, record, suspicious_threshold(engine.card), sweep, roi=roi,
                     auto_box=auto_box, cancelled=cancelled)
    if item is None or not explain or item.prediction is None or item.clip is None:
        return item
    frame = item.clip.max_frame
    try:
        prep = engine.prepare(record, roi=roi, frame=frame, auto_box=auto_box)
        maps = engine.explain_prepared([prep], method=method)[0]
    except RcdNetError as exc:
        note = f"heat maps of frame {frame} not computed: {exc}"
        return replace(item, prediction=replace(
            item.prediction, warnings=(*item.prediction.warnings, note)))
    # The maps' own prediction is the same frame's; the item keeps the clip's (its warnings
    # and checks cover every frame).
    return replace(item, heatmaps=replace(maps, prediction=item.prediction), record=record)
