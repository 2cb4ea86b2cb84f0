"""Atomic, never-overwriting file writes: the only way the program writes a file.

Every export (:mod:`.formats`), the batch-review CSV (:mod:`.batch_csv`, for the CLI and the
viewer) and the model bundle's files (:func:`rcdnet_desktop.core.bundle.write_bytes`) go through
:func:`atomic_write`; a test keeps it so.

No Qt here. :func:`atomic_write` sends the bytes to a temporary file in the target's folder,
flushes and fsyncs it, and only then gives it the target's name. On any failure the temporary
file is removed and no partial target remains. An existing file is never replaced unless
``overwrite=True``; even a file that appears while the write runs is not replaced (the final
step is a hard link, which fails if the name is taken).

Failures are raised as :class:`~rcdnet_desktop.core.errors.ExportExistsError` (the target
exists) or :class:`~rcdnet_desktop.core.errors.ExportError` (anything else), whose message names
the file and the reason, ready to show to a user.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from rcdnet_desktop.core.errors import ExportError, ExportExistsError


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "the disk is full"
        if exc.errno == errno.EDQUOT:
            return "the disk quota is exceeded"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied (the folder is not writable)"
        if exc.errno == errno.EROFS:
            return "the disk is read-only"
        if exc.errno == errno.ENAMETOOLONG:
            return "the file name is too long"
        if exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable. Not possible on Windows (directories cannot be opened).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], *, overwrite: bool) -> Path:
    """Write a file atomically: temporary file in the same folder, fsync, then rename.

    Parameters
    ----------
    path : str or Path
        The target.
    write : callable
        Called with a binary file object; writes the whole content.
    overwrite : bool
        Replace an existing target. When False an existing target (even one created while
        ``write`` runs) is left alone and :class:`ExportExistsError` is raised.

    Returns
    -------
    Path
        The target path.

    Raises
    ------
    ExportExistsError
        The target exists and ``overwrite`` is False.
    ExportError
        The folder is missing or unwritable, the disk is full, or ``write`` failed. No
        temporary file and no partial target remain.
    """
    path = Path(path)
    if path.is_dir():
        raise ExportError(path, "this is a folder, not a file name")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise ExportExistsError(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ExportError(path, f"the folder {directory} does not exist")

    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise ExportError(path, f"cannot create a file in {directory}: {_reason(exc)}") from exc
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            # mkstemp makes the file private (0600); give the export the usual rw-r--r-- (reading
            # the umask would mean changing it, which is not thread-safe).
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o644)
            if overwrite:
                os.replace(tmp, path)
            else:
                _link_no_replace(tmp, path)
            _fsync_dir(directory)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(path, f"could not write the file: {_reason(exc)}") from exc
    finally:
        # After a successful os.replace the temporary name is gone; after a link it remains.
        with contextlib.suppress(FileNotFoundError, OSError):
            tmp.unlink()
    return path


def _link_no_replace(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` without ever replacing an existing ``path``."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError as exc:
        raise ExportExistsError(path) from exc
    except OSError:
        # No hard links here (FAT, some network shares, Windows without rights): check, then
        # rename. The window between the two is microseconds.
        pass
    if path.exists() or path.is_symlink():
        raise ExportExistsError(path)
    os.replace(tmp, path)


__all__: Sequence[str] = ("atomic_write",)
