"""Keeping the imaging libraries quiet while a file is decoded.

pydicom and Pillow report odd files with Python warnings, and libtiff (inside Pillow) writes
its complaints straight to the process's standard error, below Python. A reader says what is
wrong in its own words (:class:`~rcdnet_desktop.core.errors.UnreadableImageError`), so
:func:`captured_library_output` collects those warnings instead of printing them (they are
logged at debug level, for developers) and, when asked, points file descriptor 2 at the null
device for the duration.

Both are process-wide settings, so one lock serialises the decodes that change them: two
threads reading images at once would otherwise restore each other's settings in the wrong
order and leave warnings silenced for good. A thread waits for the lock at most
:data:`_WAIT_S` seconds and then decodes without capturing (a warning may then be printed),
so one slow decode never holds up every other read.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()
_WAIT_S = 2.0
_KEPT = 20  # warnings logged per decode; a damaged file can raise thousands
_log = logging.getLogger(__name__)


@contextmanager
def captured_library_output(stderr: bool = False) -> Iterator[list[str]]:
    """Collect the warnings raised inside the block (first :data:`_KEPT`), print none of them.

    Parameters
    ----------
    stderr : bool
        Also send what C libraries write to standard error (libtiff) to the null device.

    Yields
    ------
    list of str
        The warnings' messages, filled in as they are raised.
    """
    kept: list[str] = []

    def keep(message, category, filename, lineno, file=None, line=None) -> None:
        if len(kept) < _KEPT:
            kept.append(f"{category.__name__}: {message}")

    if not _LOCK.acquire(timeout=_WAIT_S):
        yield kept  # another thread has held the settings too long: decode as things are
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # "default" would remember every distinct message
            warnings.showwarning = keep
            saved = _silence_fd2() if stderr else None
            try:
                yield kept
            finally:
                if saved is not None:
                    _restore_fd2(saved)
                for text in kept:
                    _log.debug("library warning: %s", text)
    finally:
        _LOCK.release()


def _silence_fd2() -> int | None:
    """Point fd 2 at the null device; returns a copy of the old fd 2 (None when there is none)."""
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        return None  # no standard error (a windowed program): nothing to silence
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        os.close(saved)
        return None
    try:
        os.dup2(null, 2)
    except OSError:
        os.close(saved)
        return None
    finally:
        os.close(null)
    return saved


def _restore_fd2(saved: int) -> None:
    try:
        os.dup2(saved, 2)
    finally:
        os.close(saved)
