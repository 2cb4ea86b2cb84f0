"""``rcdnet classify`` on hostile input: outputs checked before any work, any file name written
as it is, pipes and devices skipped, a time budget per file, and ROI files checked row by row
(a run stopped by a signal: test_cli_signals.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rcdnet_desktop import cli
from rcdnet_desktop.core import batch
from tests.cli_helpers import csv_rows, speckle_png

ROOT = Path(__file__).resolve().parents[1]




@pytest.fixture
def image(tmp_path: Path) -> Path:
    return speckle_png(tmp_path / "a.png")


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the model is loaded: the checks must come first."""
    def engine(device=None):
        raise AssertionError("work started before the outputs were checked")

    monkeypatch.setattr(cli, "load_engine", engine)


def _usage_error(capsys, *args: str) -> str:
    assert cli.main(["classify", *args]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("rcdnet: error: ") and "Traceback" not in err
    return err


# --- outputs checked before any work ----------------------------------------------------------


def test_csv_targets_refused_before_any_work(image, tmp_path, capsys, no_work):
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "real.csv").write_bytes(b"kept")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    cases = {
        tmp_path / "missing" / "out.csv": f"the folder {tmp_path / 'missing'} does not exist",
        tmp_path: "this is a folder",
        tmp_path / "pipe.csv": "not a regular file but a named pipe (FIFO)",
        tmp_path / "link.csv": "this is a symbolic link; it is not replaced",
    }
    for target, reason in cases.items():
        err = _usage_error(capsys, str(image), "--csv", str(target))
        assert f"--csv: {target}: {reason}" in err
    assert stat.S_ISFIFO((tmp_path / "pipe.csv").lstat().st_mode)
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "link.csv", "pipe.csv",
                                                           "real.csv"]


def test_a_device_as_csv_is_refused_not_replaced(image, capsys, no_work):
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("no /dev/full character device here")
    err = _usage_error(capsys, str(image), "--csv", "/dev/full")
    assert "/dev/full: not a regular file but a character device" in err
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_an_unwritable_csv_folder_is_refused(image, tmp_path, capsys, no_work, monkeypatch):
    import errno

    from rcdnet_desktop.core import atomic

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    err = _usage_error(capsys, str(image), "--csv", str(tmp_path / "out.csv"))
    assert "out.csv: cannot create a file in" in err and "not writable" in err


@pytest.mark.parametrize("option", ["--heatmaps", "--export-dir"])
def test_export_folders_refused_before_any_work(image, tmp_path, capsys, no_work, option):
    extra = ["--export", "png"] if option == "--export-dir" else []
    err = _usage_error(capsys, str(image), option, str(image), *extra)
    assert f"{option}: {image}: this is a file, not a folder" in err
    err = _usage_error(capsys, str(image), option, str(image / "maps"), *extra)
    assert f"{option}: {image / 'maps'}: the folder cannot be created" in err


def test_csv_dash_is_standard_output(image, capsys):
    assert cli.main(["classify", str(image), "--csv", "-", "--no-auto-box"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["status"] for r in rows] == ["ok"]
    assert not Path("-").exists()
    err = _usage_error(capsys, str(image), "--csv", "-", "--json")
    assert "standard output" in err


def test_json_array_is_closed_when_the_run_stops():
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt), cli._stdout_rows(out, as_json=True) as write:
        write({"file": "a"})
        raise KeyboardInterrupt
    assert json.loads(out.getvalue()) == [{"file": "a"}]
    out = io.StringIO()
    with cli._stdout_rows(out, as_json=True):
        pass
    assert json.loads(out.getvalue()) == []


def test_nothing_is_printed_when_the_model_cannot_be_loaded(image, capsys, monkeypatch):
    def engine(device=None):
        raise cli.UsageError("cannot load the model: simulated")

    monkeypatch.setattr(cli, "load_engine", engine)
    for extra in ([], ["--json"]):
        assert "simulated" in _usage_error(capsys, str(image), *extra)
        assert capsys.readouterr().out == ""


# --- file names, pipes and devices ------------------------------------------------------------


@pytest.fixture
def odd_names(tmp_path: Path) -> Path:
    folder = tmp_path / "odd"
    folder.mkdir()
    for name in (b"\xff.png", b"c\rr.png", b"n\nl.png"):
        speckle_png(Path(os.fsdecode(os.path.join(os.fsencode(folder), name))))
    return folder


def test_any_file_name_is_written_as_it_is(odd_names, tmp_path):
    out = tmp_path / "out.csv"
    assert cli.main(["classify", str(odd_names), "--csv", str(out), "--no-auto-box"]) == 0
    rows = csv_rows(out)
    assert sorted(os.fsencode(r["file"]) for r in rows) == sorted(
        os.path.join(os.fsencode(odd_names), n) for n in (b"\xff.png", b"c\rr.png", b"n\nl.png"))
    assert all(r["status"] == "ok" for r in rows)
    assert b'"' + os.fsencode(str(odd_names)) + b'/c\rr.png"' in out.read_bytes()


def test_undecodable_names_reach_standard_output_as_bytes(odd_names):
    res = subprocess.run([sys.executable, "-m", "rcdnet_desktop.cli", "classify",
                          str(odd_names / os.fsdecode(b"\xff.png")), "--no-auto-box"],
                         cwd=ROOT, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert os.path.join(os.fsencode(odd_names), b"\xff.png,") in res.stdout


@pytest.mark.timeout(120)  # opening the pipe would block forever
def test_pipes_and_devices_are_listed_as_skipped(image, tmp_path, capsys):
    sub = tmp_path / "sub"
    sub.mkdir()
    os.mkfifo(sub / "x.dcm")
    (tmp_path / "zero.dcm").symlink_to("/dev/zero")
    out = tmp_path / "out.csv"
    assert cli.main(["classify", str(tmp_path), "--recursive", "--csv", str(out),
                     "--no-auto-box"]) == 0
    by_name = {Path(r["file"]).name: r for r in csv_rows(out)}
    assert by_name["a.png"]["status"] == "ok"
    assert by_name["x.dcm"]["status"] == by_name["zero.dcm"]["status"] == "skipped"
    assert "named pipe (FIFO), not a regular file" in by_name["x.dcm"]["error"]
    assert "1 classified, 0 failed, 2 skipped" in capsys.readouterr().err
    assert cli.main(["classify", str(sub / "x.dcm")]) == cli.EXIT_FAILED


def test_file_timeout(image, tmp_path, capsys, monkeypatch):
    real = batch.read_image
    monkeypatch.setattr(batch, "read_image",
                        lambda p, *a, **k: (time.sleep(1.5) if p.name == "slow.png" else None)
                        or real(p, *a, **k))
    speckle_png(tmp_path / "slow.png")
    assert cli.main(["classify", str(tmp_path), "--json", "--file-timeout", "0.3",
                     "--no-auto-box"]) == 0
    a, slow = json.loads(capsys.readouterr().out)
    assert a["status"] == "ok" and slow["status"] == "failed"
    assert "took more than 0.3 s, the time allowed per file" in slow["error"]
    for bad in ("-1", "nan", "inf", "soon"):
        with pytest.raises(SystemExit) as exc:
            cli.main(["classify", str(image), "--file-timeout", bad])
        assert exc.value.code == 2
    assert "--file-timeout" in capsys.readouterr().err


# --- ROI files --------------------------------------------------------------------------------


@pytest.mark.parametrize("values, message", [
    ("10,10,inf,20", "box values must be finite numbers, not inf"),
    ("10,10,nan,20", "box values must be finite numbers, not nan"),
    ("10,10,-5,20", "box must have x, y >= 0 and w, h > 0"),
    ("-1,10,5,20", "box must have x, y >= 0 and w, h > 0"),
])
def test_roi_values_refused_with_their_line(image, tmp_path, capsys, values, message):
    rois = tmp_path / "rois.csv"
    rois.write_text(f"file,x,y,w,h\na.png,1,1,5,5\na.png,{values}\n")
    err = _usage_error(capsys, str(image), "--rois", str(rois))
    assert f"{rois}:3: {message}" in err


@pytest.mark.parametrize("content, message", [
    (b"file,x,y,w,h\n\xe9.png,1,1,5,5\n", "not UTF-8 text"),
    (b",1,1,5,5\n", "the file name is empty"),
])
def test_unreadable_roi_files(image, tmp_path, capsys, content, message):
    rois = tmp_path / "rois.csv"
    rois.write_bytes(content)
    assert message in _usage_error(capsys, str(image), "--rois", str(rois))


@pytest.mark.timeout(60)
def test_a_pipe_as_roi_file_is_refused(image, tmp_path, capsys):
    os.mkfifo(tmp_path / "rois.csv")
    err = _usage_error(capsys, str(image), "--rois", str(tmp_path / "rois.csv"))
    assert "named pipe (FIFO), not a regular file" in err


def test_roi_boxes_used_outside_or_unmatched(image, tmp_path, capsys):
    speckle_png(tmp_path / "b.png", 1)
    rois = tmp_path / "rois.csv"
    rois.write_text("file,x,y,w,h\na.png,60,40,50,45\nb.png,0,0,1e300,10\n"
                    "gone.png,1,1,5,5\nsub/c.png,1,1,5,5\n")
    assert cli.main(["classify", str(image), str(tmp_path / "b.png"), "--json",
                     "--rois", str(rois)]) == 0
    captured = capsys.readouterr()
    a, b = json.loads(captured.out)
    assert a["box_source"] == "user"
    assert [a[k] for k in ("box_x", "box_y", "box_w", "box_h")] == ["60", "40", "50", "45"]
    assert b["status"] == "failed" and b["box_source"] == ""
    assert "width 1e+300" in b["error"] and "does not lie inside the image (150 x 120" in b["error"]
    assert (f"2 row(s) of {rois} match no file being classified, their boxes are not used: "
            f"line 4 ({tmp_path / 'gone.png'}), line 5 ({tmp_path / 'sub' / 'c.png'})"
            ) in captured.err
    assert "2 row(s) of the ROI file matched no file" in captured.err
