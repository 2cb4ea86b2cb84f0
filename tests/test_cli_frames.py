"""rcdnet classify on cine clips: --frames all|N sweeps each clip and reports it as one row, its
most suspicious frame with the clip's summary; --frame N picks one frame; not both."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from rcdnet_desktop import cli
from rcdnet_desktop.core.export.batch_csv import CSV_FIELDS


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    from pydicom.data import get_testdata_file

    d = tmp_path / "clips"
    d.mkdir()
    # pydicom's 30-frame echocardiography clip, its examination (Image Type value 3) said to
    # be of the breast, so that its frames are within intended use.
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    ds.ImageType = ["DERIVED", "PRIMARY", "BREAST", "0001"]
    ds.save_as(d / "cine.dcm")
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(20, 200, (120, 160), np.uint8)).save(d / "still.png")
    return d


def _json(capsys) -> dict[str, dict[str, str]]:
    return {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}


def test_frames_all_gives_each_clip_one_row_its_most_suspicious_frame(clips, tmp_path, capsys):
    out = tmp_path / "rows.csv"
    assert cli.main(["classify", str(clips), "--frames", "all", "--csv", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(fh)}
    assert list(next(iter(rows.values()))) == list(CSV_FIELDS)
    assert sorted(rows) == ["cine.dcm", "still.png"]  # one row per file, clips too
    cine, still = rows["cine.dcm"], rows["still.png"]
    assert cine["status"] == "ok" and cine["clip_frames"] == "30"
    worst = int(cine["frame"])
    assert 1 <= worst <= 30  # counted from 1
    median, share = float(cine["clip_median"]), float(cine["clip_suspicious_share"])
    assert median <= float(cine["p_malignant"]) and 0 <= share <= 1
    assert (share > 0) == (cine["suspicious"] == "yes")  # the maximum is suspicious iff any is
    assert still["frame"] == "1" and still["clip_frames"] == still["clip_median"] == ""
    assert capsys.readouterr().err.startswith("2 classified, 0 failed")  # per file

    # The clip's row is the row of that frame classified alone.
    assert cli.main(["classify", str(clips / "cine.dcm"), "--frame", str(worst), "--json"]) == 0
    alone = _json(capsys)["cine.dcm"]
    assert alone["p_malignant"] == cine["p_malignant"] and alone["decision"] == cine["decision"]


def test_an_echocardiography_clip_is_outside_intended_use_on_every_frame(tmp_path, capsys):
    from pydicom.data import get_testdata_file

    clip = shutil.copy(get_testdata_file("examples_ybr_color.dcm"), tmp_path / "echo.dcm")
    assert cli.main(["classify", str(clip), "--frames", "3", "--json"]) == 0
    row = _json(capsys)["echo.dcm"]
    assert row["clip_outside"] == "3" and row["clip_classifiable"] == "0"
    assert "a heart scan (Image Type EPICARDIAL)" in row["warnings"]


def test_frames_n_classifies_n_evenly_spaced_frames(clips, capsys):
    assert cli.main(["classify", str(clips / "cine.dcm"), "--frames", "3", "--json"]) == 0
    row = _json(capsys)["cine.dcm"]
    assert row["clip_frames"] == "3" and row["frame"] in {"6", "16", "26"}


def test_frames_all_exports_the_most_suspicious_frame(clips, tmp_path, capsys):
    out_dir = tmp_path / "exports"
    assert cli.main(["classify", str(clips / "cine.dcm"), "--frames", "2", "--json",
                     "--export", "png", "--export-dir", str(out_dir)]) == 0
    row = _json(capsys)["cine.dcm"]
    # File names count frames from 1, as the viewer does.
    assert [p.name for p in out_dir.iterdir()] == [f"cine_frame{row['frame']}_rcdnet.png"]


@pytest.mark.parametrize("args, words", [
    (["--frame", "2", "--frames", "all"], "give only one of them"),
    (["--frames", "0"], "expected all or a number of frames (1 or more), got 0"),
    (["--frames", "every"], "expected all or a number of frames (1 or more), got 'every'"),
])
def test_frame_and_frames_together_or_a_bad_count_are_usage_errors(clips, capsys, args, words):
    try:
        code = cli.main(["classify", str(clips), *args])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
