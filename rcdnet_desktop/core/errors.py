"""Typed errors raised by the core package.

Every error that concerns a file names that file and the reason, so the message can be shown
to the user as it is.
"""

from __future__ import annotations

import errno
from pathlib import Path


class RcdNetError(Exception):
    """Base class of every error the core raises on purpose."""


class FileError(RcdNetError):
    """Something went wrong with one file; the message is ``"<path>: <reason>"``.

    Parameters
    ----------
    path : str or Path
        The file that failed.
    reason : str
        Why, in words a user can act on.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnreadableImageError(FileError):
    """An image file could not be read."""


class ExportError(FileError):
    """A file could not be exported: ``path`` is the target, ``reason`` says why."""


class ExportExistsError(ExportError, FileExistsError):
    """The target file exists and overwriting was not asked for (also a FileExistsError)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "a file with this name already exists; it was not overwritten")
        self.errno = errno.EEXIST
        self.filename = str(path)


class WeightsError(RcdNetError):
    """Model weights or their model card are missing, corrupt or do not match each other."""


class InferenceError(RcdNetError):
    """The model could not be run on an image (for example a bad region of interest)."""
