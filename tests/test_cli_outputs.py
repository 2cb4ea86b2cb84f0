"""Every output option of ``rcdnet classify``, alone and in pairs, through ``main([...])``: the
files each writes, read back (the PNG opens, the PDF is a PDF, the SC and SR are DICOM objects
of their SOP class), what goes to standard output, and the exit status. An option that can
produce nothing fails loudly. Sending to a PACS: tests/pacs/test_cli_pacs.py."""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import ComprehensiveSRStorage, SecondaryCaptureImageStorage

from rcdnet_desktop import cli
from rcdnet_desktop.core.export.report import SOURCE_WITHHELD
from tests.core.test_export import pdf_text


@pytest.fixture
def sources(tmp_path: Path) -> list[Path]:
    """A PNG and a DICOM ultrasound image (single frame, from pydicom's own test files)."""
    from pydicom.data import get_testdata_file

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.gamma(2.0, 30.0, (160, 200)).clip(0, 255).astype(np.uint8)).save(
        src / "a.png")
    shutil.copy(get_testdata_file("examples_rgb_color.dcm"), src / "us.dcm")
    return [src / "a.png", src / "us.dcm"]


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    """The current folder of the run (where --export writes without --export-dir), empty."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def check_file(path: Path) -> None:
    """The file is what its name says, read back."""
    name = path.name
    if name.endswith(".png"):
        with Image.open(path) as im:
            im.load()
            assert im.width > 200 and im.height > 100
    elif name.endswith(".pdf"):
        assert path.read_bytes().startswith(b"%PDF-")
    elif name.endswith("_rcdnet_sr.dcm"):
        assert pydicom.dcmread(path).SOPClassUID == ComprehensiveSRStorage
    elif name.endswith("_rcdnet.dcm"):
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == SecondaryCaptureImageStorage and ds.Modality == "US"
        assert ds.pixel_array.ndim == 3
    elif name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        assert [Path(r["file"]).name for r in rows] == ["a.png", "us.dcm"]
    else:
        raise AssertionError(f"unexpected file {path}")


@dataclass(frozen=True)
class Option:
    """One output option: its arguments, the files it writes (relative to the current
    folder) and what standard output then holds (csv, json or nothing)."""

    args: tuple[str, ...]
    files: frozenset[str] = field(default_factory=frozenset)
    stdout: str = "csv"


OPTIONS = {
    "csv": Option(("--csv", "rows.csv"), frozenset({"rows.csv"}), stdout=""),
    "json": Option(("--json",), stdout="json"),
    "export-png": Option(("--export", "png"), frozenset({"a_rcdnet.png", "us_rcdnet.png"})),
    "export-pdf": Option(("--export", "pdf"), frozenset({"a_rcdnet.pdf", "us_rcdnet.pdf"})),
    "export-dicom": Option(("--export", "dicom"), frozenset({"us_rcdnet.dcm"})),
    "export-sr": Option(("--export", "sr"), frozenset({"us_rcdnet_sr.dcm"})),
    "heatmaps": Option(("--heatmaps", "maps"),
                       frozenset({"maps/a_heatmaps.png", "maps/us_heatmaps.png"})),
    "sr": Option(("--sr", "sr"), frozenset({"sr/us_rcdnet_sr.dcm"})),
}
"""Every output option of classify but --send (a PACS; see tests/pacs)."""


def test_every_output_option_is_in_the_table():
    from rcdnet_desktop.core.export.formats import EXPORT_FORMATS

    exported = {o.args[1] for o in OPTIONS.values() if o.args[0] == "--export"}
    assert exported == {f.key for f in EXPORT_FORMATS}


def _run(sources: list[Path], work: Path, capsys, *args: str) -> tuple[int, str, str]:
    status = cli.main(["classify", *map(str, sources), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _written(work: Path) -> set[str]:
    return {p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()}


def _check_run(options: list[Option], sources, work, capsys) -> list[dict[str, str]]:
    """Run classify with the options; check the exit status, the files and standard output;
    the rows."""
    args = [a for o in options for a in o.args]
    status, out, err = _run(sources, work, capsys, *args)
    assert status == cli.EXIT_OK, err
    expected = frozenset().union(*(o.files for o in options))
    assert _written(work) == expected
    for name in expected:
        check_file(work / name)
    kinds = {o.stdout for o in options}
    stdout = "json" if "json" in kinds else "" if "" in kinds else "csv"
    if stdout == "json":
        rows = json.loads(out)
    elif stdout == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
    else:
        assert out == ""
        rows = list(csv.DictReader(io.StringIO((work / "rows.csv").read_text())))
    assert [Path(r["file"]).name for r in rows] == ["a.png", "us.dcm"]
    assert all(r["status"] == "ok" for r in rows)
    return rows


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_output_option_alone(name, sources, work, capsys):
    option = OPTIONS[name]
    a, us = _check_run([option], sources, work, capsys)
    if option.args[0] in ("--sr", "--export") and option.args[-1] in ("sr", "dicom"):
        # The SR and SC refer to a DICOM source: the PNG's row says why it has none.
        assert "not written" in a["warnings"] and "not a DICOM image" in a["warnings"]
    assert "not written" not in us["warnings"]
    if name in ("sr", "export-sr", "export-dicom"):  # de-identified without --with-patient
        (dcm,) = (p for p in option.files if p.endswith(".dcm"))
        # The SR has no pixels; the SC's source has no ultrasound regions, so text burned into
        # it may remain and the identity is not claimed removed.
        assert pydicom.dcmread(work / dcm).PatientIdentityRemoved == (
            "NO" if name == "export-dicom" else "YES")
    # A report written without the patient leaves out the source's file name (text and
    # metadata alike): a name may carry the patient's.
    for written in option.files:
        if written.endswith(".png"):
            with Image.open(work / written) as im:
                assert im.text["Source"] == SOURCE_WITHHELD
        elif written.endswith(".pdf"):
            text = pdf_text((work / written).read_bytes())
            # PDF text escapes the parentheses of "(de-identified)"
            assert SOURCE_WITHHELD.split(" (")[0] in text
            assert "a.png" not in text and "us.dcm" not in text


PAIRS = [
    ("csv", "json"),
    ("export-png", "export-pdf"),
    ("export-dicom", "export-sr"),
    ("sr", "export-sr"),
    ("sr", "export-dicom"),
    ("sr", "csv"),
    ("heatmaps", "export-png"),
    ("heatmaps", "sr"),
    ("export-pdf", "json"),
]


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_output_options_in_pairs(pair, sources, work, capsys):
    _check_run([OPTIONS[n] for n in pair], sources, work, capsys)


def test_two_options_naming_one_file_write_it_once(sources, work, capsys):
    """--sr DIR and --export sr into DIR are one SR, written once (not us_rcdnet_sr_2.dcm);
    --heatmaps and --export png into one folder are two reports of different names."""
    option = Option(("--sr", "out", "--export", "sr", "--export-dir", "out"),
                    frozenset({"out/us_rcdnet_sr.dcm"}))
    _check_run([option], sources, work, capsys)
    shutil.rmtree(work / "out")
    option = Option(("--heatmaps", "out", "--export", "png", "--export-dir", "out"),
                    frozenset(f"out/{s}_{t}.png" for s in ("a", "us")
                              for t in ("heatmaps", "rcdnet")))
    _check_run([option], sources, work, capsys)


@pytest.mark.parametrize("args", [["--sr", "sr"], ["--export", "sr", "--with-patient"],
                                  ["--export", "dicom", "--sr", "sr", "--with-patient"]])
def test_with_patient_keeps_the_patient_in_every_dicom_file(args, sources, work, capsys):
    source = pydicom.dcmread(sources[1], stop_before_pixels=True)
    status, _, err = _run(sources, work, capsys, *args)
    assert status == cli.EXIT_OK, err
    files = [work / f for f in _written(work)]
    assert files
    for f in files:
        check_file(f)
        ds = pydicom.dcmread(f)
        if "--with-patient" in args:
            assert ds.PatientID == source.PatientID
            assert ds.StudyInstanceUID == source.StudyInstanceUID
        else:
            assert ds.PatientIdentityRemoved == "YES" and ds.PatientID != source.PatientID


@pytest.mark.parametrize("args, option", [
    (["--sr", "sr"], "--sr"),
    (["--export", "sr"], "--export sr"),
    (["--export", "dicom"], "--export dicom"),
    (["--export", "dicom", "--export", "png"], "--export dicom"),
])
def test_an_option_that_writes_nothing_fails_loudly(args, option, sources, work, capsys):
    """Only a PNG: no SR or SC can be made. The run says so in one line and exits 1; the other
    outputs are still written and the rows printed."""
    status, out, err = _run(sources[:1], work, capsys, *args)
    assert status == cli.EXIT_FAILED
    assert (f"rcdnet: {option}: nothing written: the source is not a DICOM image (the SR and "
            f"SC need a DICOM source)") in err.splitlines()
    assert "Traceback" not in err
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["status"] == "ok" and "not written" in row["warnings"]
    assert _written(work) == ({"a_rcdnet.png"} if "png" in args else set())


@pytest.mark.parametrize("args, message", [
    (["--send-sc"], "--send-sc needs --send"),
    (["--aet", "ME"], "--aet is this program's AE title for --send"),
    (["--with-patient"], "--with-patient applies to the DICOM files written"),
    (["--with-patient", "--export", "png"], "--with-patient applies to the DICOM files written"),
    (["--export-dir", "out"], "--export-dir needs --export FORMAT"),
])
def test_an_option_that_would_do_nothing_is_a_usage_error(args, message, sources, work, capsys,
                                                          monkeypatch):
    def no_engine(device=None):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(cli, "load_engine", no_engine)
    status, out, err = _run(sources, work, capsys, *args)
    assert status == cli.EXIT_USAGE and out == ""
    assert err.startswith(f"rcdnet: error: {message}"), err
    assert _written(work) == set()


def test_every_option_says_what_it_does():
    """classify --help: each option has help text of its own (no bare option names)."""
    parser = cli.build_parser()
    classify = parser._subparsers._group_actions[0].choices["classify"]
    for action in classify._actions:
        if action.dest == "help":
            continue
        assert action.help and len(action.help) > 20, action.option_strings
    text = classify.format_help()
    for option in ("--sr", "--send", "--send-sc", "--export", "--heatmaps", "--csv", "--json",
                   "--with-patient", "--aet"):
        assert option in text
