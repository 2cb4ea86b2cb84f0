"""Opening image files: regular files only, never a FIFO, a device or a socket.

Reading from a FIFO blocks until someone writes to it, and ``/dev/zero`` never ends, so a name
such as ``x.dcm`` that is (or links to) one of them would hang a folder review. Every reader
opens files through :func:`open_regular`, which looks at what the path is (following links)
before opening it, and opens it without blocking.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import UnreadableImageError
from ..files import kind_of

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
               | getattr(os, "O_CLOEXEC", 0))


def _kind(mode: int) -> str | None:
    """What a path that is not a regular file is, in words; None for a regular file."""
    return None if stat.S_ISREG(mode) else kind_of(mode)


def not_regular_reason(kind: str) -> str:
    """The reason given for a path that is not a regular file (``kind`` from ``kind_of``)."""
    if kind == "a folder":
        return "is a folder, not an image file"
    return f"it is {kind}, not a regular file: only image files are read"


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, _OPEN_FLAGS)


def open_regular(p: Path) -> BinaryIO:
    """Open ``p`` for reading in binary mode when it is a regular file (links followed).

    Raises
    ------
    UnreadableImageError
        Missing, not permitted, a folder, a FIFO, a device, a socket, or not openable, with the
        reason in words.
    """
    try:
        kind = _kind(os.stat(p).st_mode)
    except FileNotFoundError:
        raise UnreadableImageError(p, "file not found") from None
    except PermissionError:
        raise UnreadableImageError(p, "permission denied: the file cannot be opened") from None
    except (OSError, ValueError) as exc:
        raise UnreadableImageError(p, _cannot_open(exc)) from None
    if kind:
        raise UnreadableImageError(p, not_regular_reason(kind))
    try:
        # O_NONBLOCK: should the path have become a FIFO since stat(), open() does not wait.
        fh = open(p, "rb", opener=_nonblocking)  # noqa: SIM115 - returned to the caller
    except FileNotFoundError:
        raise UnreadableImageError(p, "file not found") from None
    except PermissionError:
        raise UnreadableImageError(p, "permission denied: the file cannot be opened") from None
    except OSError as exc:
        raise UnreadableImageError(p, _cannot_open(exc)) from None
    kind = _kind(os.fstat(fh.fileno()).st_mode)
    if kind:
        fh.close()
        raise UnreadableImageError(p, not_regular_reason(kind))
    return fh


def read_head(p: Path, n: int) -> bytes:
    """The first ``n`` bytes of a regular file (fewer when it is shorter)."""
    with open_regular(p) as fh:
        return fh.read(n)


def _cannot_open(exc: BaseException) -> str:
    why = getattr(exc, "strerror", None) or "the system refused"
    return f"the file cannot be opened ({why.lower()})"
