"""``rcdnet classify`` stopped by SIGTERM (what schedulers send) or Ctrl+C (SIGINT): the rows
done are kept, the process ends with 128 + the signal's number after one plain line on standard
error, and never aborts in the native libraries' threads. Real processes, real signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rcdnet_desktop import cli
from rcdnet_desktop.core import batch
from tests.cli_helpers import csv_rows, speckle_png

ROOT = Path(__file__).resolve().parents[1]




def _stop_midway(cmd: list[str], tmp_path: Path, sig: int, rows: int) -> tuple[int, str]:
    """Start ``cmd``, send ``sig`` once its hidden CSV holds more than ``rows`` rows; its exit
    status and standard error."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            parts = list(tmp_path.glob(".out.csv.*.part"))
            if parts and parts[0].read_bytes().count(b"\n") > rows:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


def _check_stopped(status: int, err: str, sig: int, tmp_path: Path) -> list[str]:
    """The exit status, the one line and the files; the names of the rows kept."""
    out, partial = tmp_path / "out.csv", tmp_path / "out.partial.csv"
    assert status == 128 + sig, err  # not 134: no abort in a native thread
    (line,) = err.splitlines()
    what = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert line.startswith(f"rcdnet: {what} after "), line
    assert f"row(s) done are kept in {partial}; {out} was left as it was" in line
    assert out.read_bytes() == b"previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.partial.csv", "study"]
    rows = csv_rows(partial)
    assert rows and all(r["status"] == "ok" for r in rows)
    n_done = int(line.split(" after ")[1].split(" of ")[0])
    assert len(rows) == n_done
    return [Path(r["file"]).name for r in rows]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_real_run_stopped_by_a_signal_keeps_its_rows_and_exits_cleanly(tmp_path, sig):
    """The command as installed (python -m), on a folder long enough to be stopped while the
    model and the reader thread (decoding, intended-use checks, onnxruntime) are busy."""
    folder = tmp_path / "study"
    folder.mkdir()
    n = 40 * batch.DEFAULT_CHUNK
    for i in range(n):
        speckle_png(folder / f"a{i:03d}.png", i)
    out = tmp_path / "out.csv"
    out.write_bytes(b"previous run\n")
    status, err = _stop_midway([sys.executable, "-m", "rcdnet_desktop.cli", "classify",
                                str(folder), "--csv", str(out)], tmp_path, sig,
                               rows=batch.DEFAULT_CHUNK)
    names = _check_stopped(status, err, sig, tmp_path)
    assert names == [f"a{i:03d}.png" for i in range(len(names))]  # the first ones, in order
    assert batch.DEFAULT_CHUNK <= len(names) < n


HUNG_READER = """
import sys, time
from rcdnet_desktop.core import batch
real = batch.read_image
def read(path, *args, **kwargs):
    if path.name.startswith("z"):
        time.sleep(120)
    return real(path, *args, **kwargs)
batch.read_image = read
from rcdnet_desktop import cli
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_run_waiting_on_a_hung_reader_stops_within_the_grace(tmp_path, sig):
    folder = tmp_path / "study"
    folder.mkdir()
    for i in range(batch.DEFAULT_CHUNK):  # one chunk classified, then a file that hangs
        speckle_png(folder / f"a{i}.png", i)
    speckle_png(folder / "z.png")
    out = tmp_path / "out.csv"
    out.write_bytes(b"previous run\n")
    started = time.monotonic()
    status, err = _stop_midway([sys.executable, "-c", HUNG_READER, "classify", str(folder),
                                "--csv", str(out), "--no-auto-box"], tmp_path, sig,
                               rows=batch.DEFAULT_CHUNK)
    assert time.monotonic() - started < 60 + batch.STOP_GRACE
    names = _check_stopped(status, err, sig, tmp_path)
    assert names == [f"a{i}.png" for i in range(batch.DEFAULT_CHUNK)]


def test_the_stop_line_without_a_csv_file():
    stop = cli.Stopped(signal.SIGTERM)
    stop.progress = "after 3 of 9 file(s)"
    assert stop.line() == "stopped by SIGTERM after 3 of 9 file(s)" and stop.status == 143
    assert cli.Stopped(signal.SIGINT).line() == "interrupted"


def test_a_reader_still_running_ends_the_process_without_the_shutdown(monkeypatch):
    """A reader left on an overdue file may sit in native code: the command then leaves with
    os._exit (the interpreter's shutdown would abort under it), and only then."""
    import threading

    left = []
    monkeypatch.setattr(cli.os, "_exit", left.append)
    cli._leave_if_busy(0)
    assert left == []
    release = threading.Event()
    reader = threading.Thread(target=release.wait, name=batch.LOADER_THREAD_NAME, daemon=True)
    reader.start()
    try:
        cli._leave_if_busy(143)
    finally:
        release.set()
        reader.join()
    assert left == [143]


def test_a_closed_review_waits_for_its_reader(tmp_path, engine, monkeypatch):
    """Stopping a run (the generator closed after its first item) leaves no reader thread
    running: the one reading the next file finishes it first, within the grace."""
    real = batch.read_image
    reading = []

    def slow_read(path, *args, **kwargs):
        reading.append(path.name)
        time.sleep(0.5)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(batch, "read_image", slow_read)
    for i in range(6):
        speckle_png(tmp_path / f"a{i}.png", i)
    earlier = set(batch.loader_threads())  # readers other tests left past their budget
    items = batch.review([tmp_path], engine, chunk=1, auto_box=False)
    first = next(items)
    assert first.status == "ok"
    assert set(batch.loader_threads()) - earlier  # the next file is being read
    items.close()
    assert set(batch.loader_threads()) - earlier == set()
    time.sleep(0.6)
    assert len(reading) <= 3 < 6  # the first, and at most the two read ahead
