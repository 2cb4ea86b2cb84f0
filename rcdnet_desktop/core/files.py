"""Whether a path is a regular file, in words: the only kind of file the program reads or replaces.

A named pipe (FIFO) blocks whoever opens it until something writes to it, a device such as
``/dev/zero`` never ends, and replacing a device node or a socket with a regular file breaks
whatever used it. So a folder review reads, and an output replaces, only regular files; this
module says what else a path is, from ``os.stat`` alone (nothing is opened).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """The kind of file ``mode`` (an ``st_mode``) describes, in words: "a named pipe (FIFO)"."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((words for test, words in _KINDS if test(mode)), "a special file")


def not_regular(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a regular file, in words, or None when it is one (or cannot be stat'ed).

    Symbolic links are followed, and said so: "a symbolic link to a character device
    (/dev/zero)". A missing or unreadable path gives None: whoever opens it reports why.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    kind = kind_of(mode)
    if Path(path).is_symlink():
        return f"a symbolic link to {kind} ({os.path.realpath(path)})"
    return kind


__all__: Sequence[str] = ("kind_of", "not_regular")
