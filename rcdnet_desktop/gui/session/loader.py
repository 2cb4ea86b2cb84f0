"""Reading image files for the viewer in the background, with a thumbnail for the image list.

:class:`ImageLoader` reads in a one-thread pool of its own (reading is not inference and must not
wait behind it) and reports :class:`~rcdnet_desktop.gui.session.messages.FileLoaded` or
:class:`~rcdnet_desktop.gui.session.messages.FileFailed` per file. It touches no widget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from rcdnet_desktop.core.types import ImageRecord
from rcdnet_desktop.gui.session.messages import FileFailed, FileLoaded
from rcdnet_desktop.gui.session.workers import Job, JobKeeper, make_pool

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
    """Read ``path`` with the core reader (the one place the GUI reads images); the open of a
    DICOM image is recorded in the audit trail (here, off the GUI thread: it is fsync'ed)."""
    # The readers (pydicom, Pillow: ~0.2 s) load with the first image, after the window shows.
    from rcdnet_desktop.core import audit, io

    record = io.read_image(path)
    audit.opened(record)
    return record


def _read_files(report: Callable[[object], None], paths: Sequence[Path],
                cancelled: Callable[[], bool]) -> None:
    for path in paths:
        if cancelled():
            return
        try:
            record = read_one(path)
            thumb = make_thumbnail(record.pixels)
        except Exception as exc:  # noqa: BLE001 - every unreadable file is reported, not raised
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            report(FileFailed(path, str(reason).splitlines()[0]))
        else:
            report(FileLoaded(path, record, thumb))


class ImageLoader(QObject):
    """Reads image files in a background thread, one file at a time.

    Signals
    -------
    loaded(object)
        A :class:`~rcdnet_desktop.gui.session.messages.FileLoaded`.
    failed(object)
        A :class:`~rcdnet_desktop.gui.session.messages.FileFailed` for a file that could not be
        read.
    finished()
        A :meth:`load` call has been worked through.
    """

    loaded = Signal(object)
    failed = Signal(object)
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
    def _on_progress(self, message: object) -> None:
        if self._closed:
            return
        if isinstance(message, FileLoaded):
            self.loaded.emit(message)
        elif isinstance(message, FileFailed):
            self.failed.emit(message)

    @Slot()
    def _on_done(self) -> None:
        self._active -= 1
        self.finished.emit()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        self._closed = True
        self._pool.clear()
        return self._pool.waitForDone(timeout_ms)
