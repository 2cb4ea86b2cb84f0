"""Atomic, never-overwriting file writes: the only way the program writes a file.

Every export (:mod:`rcdnet_desktop.core.export.formats`), the batch-review CSV
(:mod:`rcdnet_desktop.core.export.batch_csv`, for the CLI and the viewer) and, in the training
package, the model bundle's files (:func:`replace_file`, from :mod:`training.bundle_write` and
:mod:`training.onnx_export`) go through :func:`atomic_write`; a test keeps it so.

No Qt here. :func:`atomic_write` sends the bytes to a temporary file in the target's folder,
flushes and fsyncs it, and only then gives it the target's name. On any failure the temporary
file is removed and no partial target remains. An existing file is never replaced unless
``overwrite=True``; even a file that appears while the write runs is not replaced (the final
step is a hard link, which fails if the name is taken). A symbolic link, a device, a named pipe
or a socket is never replaced (:func:`check_target`), even with ``overwrite=True``.

:func:`streaming_write` is the same for a file written as it goes (the rows of a long batch
run): each piece is on disk at once, the target gets its name at the end, and an interrupted
run keeps what was written as ``<stem>.partial<suffix>``. :func:`check_folder` makes sure an
output folder can be written before any work starts.

:func:`append_record` is the one other way: a record appended whole and fsync'ed to a log
(the audit trail), which grows and cannot be replaced at each write.

:func:`staging_folder` and :func:`move_file` are for files that arrive over the network (the
PACS cache, :mod:`rcdnet_desktop.core.pacs.cache`): each one is written with
:func:`atomic_write` into a private folder, checked, then moved to its final name in one rename;
the staging folder goes, with anything left in it, however the transfer ends.

Failures are raised as :class:`~rcdnet_desktop.core.errors.ExportExistsError` (the target
exists) or :class:`~rcdnet_desktop.core.errors.ExportError` (anything else), whose message names
the file and the reason, ready to show to a user.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from rcdnet_desktop.core.errors import ExportError, ExportExistsError
from rcdnet_desktop.core.files import not_regular


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
        if exc.errno == errno.ENOTDIR:
            return "a part of the path is a file, not a folder"
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
        Replace an existing regular file. When False an existing target (even one created
        while ``write`` runs) is left alone and :class:`ExportExistsError` is raised. A
        symbolic link, a device, a named pipe or a socket is never replaced.

    Returns
    -------
    Path
        The target path.

    Raises
    ------
    ExportExistsError
        The target exists and ``overwrite`` is False.
    ExportError
        The target is not a regular file, the folder is missing or unwritable, the disk is
        full, or ``write`` failed. No temporary file and no partial target remain.
    """
    path = Path(path)
    directory = check_target(path, overwrite=overwrite)
    fd, tmp = _temporary(path, directory)
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            _give_name(tmp, path, directory, overwrite)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(path, f"could not write the file: {_reason(exc)}") from exc
    finally:
        # After a successful os.replace the temporary name is gone; after a link it remains.
        with contextlib.suppress(FileNotFoundError, OSError):
            tmp.unlink()
    return path


def replace_file(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically (readers see the old file or the new one,
    whole); :func:`atomic_write` with ``overwrite=True``. Returns the path."""
    return atomic_write(path, lambda fh: fh.write(data), overwrite=True)


def check_target(path: str | Path, *, overwrite: bool) -> Path:
    """Refuse a target that must not be written, before any work; returns its folder.

    Raises
    ------
    ExportExistsError
        The target exists and ``overwrite`` is False.
    ExportError
        The target is a folder, a symbolic link or not a regular file (device, named pipe,
        socket), or its folder does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise ExportError(path, "this is a folder, not a file name")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise ExportExistsError(path)
    if path.is_symlink():
        raise ExportError(path, "this is a symbolic link; it is not replaced (give the file it "
                                "points to, or another name)")
    other = not_regular(path)
    if other is not None:
        raise ExportError(path, f"not a regular file but {other}; it is never replaced")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ExportError(path, f"the folder {directory} does not exist")
    return directory


def check_folder(folder: str | Path) -> None:
    """Make sure files can be written into ``folder`` (creating it and its parents if needed).

    Raises
    ------
    ExportError
        Naming the folder: it is a file, it cannot be created, or no file can be created in
        it (read-only, no permission, disk full).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExportError(folder, "this is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(folder, f"the folder cannot be created: {_reason(exc)}") from exc
    try:
        fd, name = tempfile.mkstemp(prefix=".rcdnet-probe.", dir=folder)
    except OSError as exc:
        raise ExportError(folder, f"no file can be created in it: {_reason(exc)}") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def partial_name(path: str | Path) -> Path:
    """Where :func:`streaming_write` keeps an interrupted file: out.csv -> out.partial.csv."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


class StreamedFile:
    """What :func:`streaming_write` yields: ``write`` sends the bytes to the disk at once."""

    def __init__(self, path: Path, fh: BinaryIO) -> None:
        self._path, self._fh = path, fh
        self.keep_partial = False
        """Set it once what was written is worth keeping should the write be interrupted."""
        self.partial: Path | None = None
        """Where what was written was kept after an interruption (None until then)."""

    def write(self, data: bytes) -> None:
        """Write and flush to the operating system (the file survives a crash of the program).

        Raises
        ------
        ExportError
            The disk is full or failing; the message names the target.
        """
        try:
            self._fh.write(data)
            self._fh.flush()
        except OSError as exc:
            raise ExportError(self._path, f"could not write the file: {_reason(exc)}") from exc


@contextlib.contextmanager
def streaming_write(path: str | Path, *, overwrite: bool) -> Iterator[StreamedFile]:
    """Write a file piece by piece, each piece on disk at once, named ``path`` only at the end.

    On entry the target is checked (:func:`check_target`) and a temporary file
    ``.<name>.<random>.part`` is created in its folder, so a bad target or an unwritable folder
    fails before any work. On a normal exit the file is fsynced and renamed onto ``path``, as
    :func:`atomic_write` does. When the block raises (Ctrl+C included) the target is left as it
    was, and what was written is kept as :func:`partial_name` (``out.partial.csv``, replacing
    an earlier one) if the block set ``keep_partial``, else removed; ``partial`` says where it
    is and the exception goes on. When the program is killed outright, the temporary file
    stays with everything written up to then.

    Raises
    ------
    ExportExistsError, ExportError
        As :func:`atomic_write`, on entry or when renaming at the end.
    """
    path = Path(path)
    directory = check_target(path, overwrite=overwrite)
    fd, tmp = _temporary(path, directory)
    stream: StreamedFile | None = None
    try:
        with os.fdopen(fd, "wb") as fh:
            stream = StreamedFile(path, fh)
            yield stream
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise ExportError(path, f"could not write the file: {_reason(exc)}") from exc
        try:
            _give_name(tmp, path, directory, overwrite)
        except ExportError:
            raise
        except OSError as exc:
            raise ExportError(path, f"could not write the file: {_reason(exc)}") from exc
    except BaseException:
        if stream is not None and stream.keep_partial:
            stream.partial = _keep(tmp, path)
        raise
    finally:
        if stream is None or stream.partial != tmp:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _temporary(path: Path, directory: Path) -> tuple[int, Path]:
    """A new private file next to the target: its descriptor and name."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise ExportError(path, f"cannot create a file in {directory}: {_reason(exc)}") from exc
    return fd, Path(name)


def _give_name(tmp: Path, path: Path, directory: Path, overwrite: bool) -> None:
    """Rename the finished temporary file onto the target, durably."""
    # mkstemp makes the file private (0600); give the export the usual rw-r--r-- (reading the
    # umask would mean changing it, which is not thread-safe).
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o644)
    if overwrite:
        os.replace(tmp, path)
    else:
        _link_no_replace(tmp, path)
    _fsync_dir(directory)


def _keep(tmp: Path, path: Path) -> Path:
    """Move an interrupted temporary file to the target's partial name; where it ends up (the
    temporary name when the partial name is taken by anything but a regular file)."""
    partial = partial_name(path)
    try:
        if partial.is_symlink() or not_regular(partial) is not None:
            return tmp
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o644)
        os.replace(tmp, partial)
    except OSError:
        return tmp
    return partial


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


STAGING_PREFIX = ".incoming-"
"""Name prefix of the folders :func:`staging_folder` makes (and removes)."""


@contextlib.contextmanager
def staging_folder(parent: str | Path) -> Iterator[Path]:
    """A new private folder ``<parent>/.incoming-<random>`` for files being received.

    Files are written into it with :func:`atomic_write` and moved out with :func:`move_file`
    once complete. On exit -- normal, an exception or Ctrl+C -- the folder is removed with
    whatever is still in it, so an interrupted transfer leaves nothing behind.

    Raises
    ------
    ExportError
        The folder cannot be created (the message names it and why).
    """
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))
    except OSError as exc:
        raise ExportError(parent, f"cannot create a folder for incoming files: "
                                  f"{_reason(exc)}") from exc
    try:
        yield folder
    finally:
        remove_tree(folder)


def move_file(source: str | Path, target: str | Path) -> Path:
    """Give the complete file ``source`` the name ``target`` in one rename (same disk).

    The target's folders are created; an existing regular file of that name is replaced (the
    same DICOM instance received again). Returns the target.

    Raises
    ------
    ExportError
        The target is not a regular file, or the rename failed; ``source`` is left as it was.
    """
    source, target = Path(source), Path(target)
    if target.is_symlink() or not_regular(target) is not None:
        raise ExportError(target, "not a regular file; it is never replaced")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(source, 0o644)
        os.replace(source, target)
    except OSError as exc:
        raise ExportError(target, f"could not move the received file into place: "
                                  f"{_reason(exc)}") from exc
    _fsync_dir(target.parent)
    return target


def remove_tree(folder: str | Path) -> None:
    """Remove ``folder`` and everything in it; never follows symbolic links, never raises."""
    import shutil

    folder = Path(folder)
    with contextlib.suppress(OSError):
        if folder.is_symlink():
            folder.unlink()
            return
    shutil.rmtree(folder, ignore_errors=True)


def remove_file(path: str | Path) -> None:
    """Remove one file if it is there; never raises."""
    with contextlib.suppress(OSError):
        Path(path).unlink()


def append_record(path: str | Path, record: bytes) -> None:
    """Append one record (a line) to a log file, whole and durably: one ``write`` to a file
    opened with ``O_APPEND`` (so records from several processes never interleave), finished if
    the system wrote it short, then ``fsync`` before returning. The file and a missing folder
    are made private to the user (modes 600 and 700).

    A log grows one record at a time, so it cannot be replaced as a whole like the files of
    :func:`atomic_write`; this is its counterpart for :mod:`rcdnet_desktop.core.audit`.

    Raises
    ------
    OSError
        The folder or the file cannot be made or written.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _fsync_dir(folder.parent)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        written = os.write(fd, record)
        while written < len(record):
            written += os.write(fd, record[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


__all__: Sequence[str] = ("STAGING_PREFIX", "StreamedFile", "append_record", "atomic_write",
                          "check_folder", "check_target", "move_file", "partial_name",
                          "remove_file", "remove_tree", "staging_folder", "streaming_write")
