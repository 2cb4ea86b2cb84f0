"""Outputs that must not be lost or misplaced: targets that are not regular files are refused,
output folders are checked before any work, and a file written as it goes keeps its rows when
interrupted."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from rcdnet_desktop.core import atomic
from rcdnet_desktop.core.atomic import (
    atomic_write,
    check_folder,
    check_target,
    partial_name,
    streaming_write,
)
from rcdnet_desktop.core.errors import ExportError, ExportExistsError
from rcdnet_desktop.core.files import kind_of, not_regular


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- targets that are never replaced ----------------------------------------------------------


def test_a_pipe_is_refused_and_kept(tmp_path):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    for write in (lambda: atomic_write(fifo, lambda fh: fh.write(b"x"), overwrite=True),
                  lambda: streaming_write(fifo, overwrite=True).__enter__()):
        with pytest.raises(ExportError, match="not a regular file but a named pipe"):
            write()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert names(tmp_path) == ["out.csv"]


def test_a_symbolic_link_is_refused_not_turned_into_a_file(tmp_path):
    target = tmp_path / "real.csv"
    target.write_bytes(b"kept")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with pytest.raises(ExportError, match="symbolic link; it is not replaced"):
        atomic_write(link, lambda fh: fh.write(b"x"), overwrite=True)
    with pytest.raises(ExportExistsError):  # without overwrite, as any existing name
        atomic_write(link, lambda fh: fh.write(b"x"), overwrite=False)
    assert link.is_symlink() and target.read_bytes() == b"kept"
    assert names(tmp_path) == ["link.csv", "real.csv"]


def test_a_device_is_refused_before_anything_is_written():
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("no /dev/full character device here")
    with pytest.raises(ExportError, match="a character device; it is never replaced"):
        check_target(Path("/dev/full"), overwrite=True)
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_kinds_in_words(tmp_path):
    assert kind_of(os.stat(tmp_path).st_mode) == "a folder"
    assert not_regular(tmp_path / "missing") is None
    (tmp_path / "f").write_bytes(b"")
    assert not_regular(tmp_path / "f") is None
    assert not_regular("/dev/null") == "a character device"


# --- output folders checked before any work ---------------------------------------------------


def test_check_folder_creates_and_probes(tmp_path):
    check_folder(tmp_path / "new" / "maps")
    assert names(tmp_path / "new" / "maps") == []  # the probe file is gone
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ExportError, match="this is a file, not a folder"):
        check_folder(tmp_path / "file")
    with pytest.raises(ExportError, match="a part of the path is a file, not a folder"):
        check_folder(tmp_path / "file" / "sub")


def test_check_folder_unwritable(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(ExportError, match="not writable") as info:
        check_folder(tmp_path)
    assert str(info.value) == (f"{tmp_path}: no file can be created in it: permission denied "
                               "(the folder is not writable)")


# --- written as it goes -----------------------------------------------------------------------


def test_streamed_file_takes_its_name_at_the_end(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"previous run")
    with streaming_write(target, overwrite=True) as stream:
        stream.write(b"header\n")
        stream.write(b"row 1\n")
        part, = (p for p in tmp_path.iterdir() if p.name.endswith(".part"))
        assert part.read_bytes() == b"header\nrow 1\n"  # on disk before the end
        assert target.read_bytes() == b"previous run"
    assert target.read_bytes() == b"header\nrow 1\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert names(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_interrupted_stream_keeps_the_rows_beside_the_target(tmp_path, stop):
    target = tmp_path / "out.csv"
    target.write_bytes(b"previous run")
    with pytest.raises(stop), streaming_write(target, overwrite=True) as stream:
        stream.write(b"header\nrow 1\n")
        stream.keep_partial = True
        raise stop
    assert stream.partial == partial_name(target) == tmp_path / "out.partial.csv"
    assert stream.partial.read_bytes() == b"header\nrow 1\n"
    assert target.read_bytes() == b"previous run"
    assert names(tmp_path) == ["out.csv", "out.partial.csv"]


def test_interrupted_before_any_row_leaves_nothing(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt), streaming_write(target, overwrite=False) as stream:
        stream.write(b"header\n")
        raise KeyboardInterrupt
    assert stream.partial is None and names(tmp_path) == []


def test_partial_name_taken_by_a_pipe_keeps_the_temporary_file(tmp_path):
    os.mkfifo(tmp_path / "out.partial.csv")
    target = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt), streaming_write(target, overwrite=True) as stream:
        stream.write(b"row\n")
        stream.keep_partial = True
        raise KeyboardInterrupt
    assert stream.partial.name.startswith(".out.csv.") and stream.partial.name.endswith(".part")
    assert stream.partial.read_bytes() == b"row\n"
    assert stat.S_ISFIFO((tmp_path / "out.partial.csv").lstat().st_mode)


def test_a_write_error_names_the_file(tmp_path):
    full = pytest.raises(ExportError, match="out.csv: could not write the file: the disk is full")
    with full, streaming_write(tmp_path / "out.csv", overwrite=True) as stream:
        stream._fh = _Full()
        stream.write(b"row\n")


class _Full:
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    flush = write
