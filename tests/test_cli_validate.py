"""``rcdnet validate`` through ``main``: class folders and CSV, options alone and combined, the
report's files and figures, too few cases, exit statuses, Ctrl+C, and no torch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop import cli
from rcdnet_desktop.core.validation.report import REPORT_FILES

REPO = Path(__file__).resolve().parents[1]
N_PER_CLASS, N_PATIENTS = 12, 6


def _write_cases(root: Path, n: int, patients: int | None = None, seed: int = 0) -> Path:
    """``n`` darker "malignant" and ``n`` brighter "benign" images with lesion masks, in class
    folders, and a CSV ``path,label,mask,patient`` over them; returns the CSV."""
    rng = np.random.default_rng(seed)
    rows = ["path,label,mask,patient"]
    yy, xx = np.mgrid[:96, :128]
    lesion = (yy - 48) ** 2 / 300 + (xx - 64) ** 2 / 500 < 1
    for label, name in enumerate(("benign", "malignant")):
        folder = root / name / "sub"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.gamma(2.0, 30.0, (96, 128)).clip(0, 255)
            img[lesion] *= 0.3 if label else 0.8
            Image.fromarray((img * (0.6 if label else 1.0)).astype(np.uint8)).save(
                folder / f"{name}{i}.png")
            Image.fromarray((lesion * 255).astype(np.uint8)).save(folder / f"{name}{i}_mask.png")
            patient = f"P{i % patients}" if patients else ""
            rows.append(f"{name}/sub/{name}{i}.png,{name},{name}/sub/{name}{i}_mask.png,"
                        f"{patient}")
    csv = root / "cases.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def _figures(out: Path) -> dict:
    return json.loads((out / REPORT_FILES["json"]).read_text())


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """One full run on the CSV (patients and masks), default options."""
    root = tmp_path_factory.mktemp("cases")
    csv = _write_cases(root, N_PER_CLASS, N_PATIENTS)
    out = root / "report"
    status = cli.main(["validate", str(csv), "--out", str(out)])
    return csv, out, status


def test_csv_run_writes_html_pdf_and_consistent_json(csv_run):
    _csv, out, status = csv_run
    assert status == 0
    html = (out / REPORT_FILES["html"]).read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64,") == 2
    assert "Summary" in html and "At the model card&#x27;s cut-off" in html
    assert (out / REPORT_FILES["pdf"]).read_bytes().startswith(b"%PDF")
    fig = _figures(out)
    c = fig["cases"]
    assert (c["files"], c["classified"], c["patients"]) == (24, 24, N_PATIENTS)
    assert c["patient_sources"] == {"csv": 24, "dicom": 0, "file": 0}
    assert fig["bootstrap"] == {"n": 2000, "seed": 0, "unit": "patient", "level": 0.95}
    conf = fig["at_cutoff"]["confusion"]
    assert conf["tp"] + conf["fn"] == N_PER_CLASS and conf["tn"] + conf["fp"] == N_PER_CLASS
    for f in (fig["at_cutoff"]["sensitivity"], fig["at_cutoff"]["specificity"], fig["auc"]):
        assert f["ci95"][0] <= f["value"] <= f["ci95"][1]
    assert sum(b["n"] for b in fig["bands"]) == 24
    assert sum(b["malignant"] for b in fig["bands"]) == N_PER_CLASS
    assert fig["guard"]["n"] == 24
    loc = fig["localiser"]
    assert loc["masked"] == 24 and loc["with_auto_box"] + loc["no_box"] == 24
    assert "IoU" not in loc["rule"] and "centre lies inside the mask" in loc["rule"]
    assert fig["card_external"]["sensitivity"]["value"] > 0  # the bundled card's figure


def test_results_are_those_of_rcdnet_classify(csv_run, capsys):
    csv, out, _ = csv_run
    files = [str(csv.parent / r.split(",")[0]) for r in csv.read_text().splitlines()[1:4]]
    capsys.readouterr()
    assert cli.main(["classify", *files, "--json"]) == 0
    rows = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}
    cases = {Path(r["path"]).name: r for r in _figures(out)["per_case"]}
    for name, row in rows.items():
        assert cases[name]["p_malignant"] == pytest.approx(float(row["p_malignant"]), abs=1e-4)
        assert cases[name]["decision"] == row["decision"]
        assert cases[name]["box_source"] == row["box_source"]


def test_an_existing_report_is_kept_unless_overwrite(csv_run, capsys):
    csv, out, _ = csv_run
    before = (out / REPORT_FILES["json"]).read_bytes()
    assert cli.main(["validate", str(csv), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / REPORT_FILES["json"]).read_bytes() == before
    assert cli.main(["validate", str(csv), "--out", str(out), "--overwrite",
                     "--bootstrap", "50", "--seed", "4", "--device", "cpu"]) == 0
    assert _figures(out)["bootstrap"]["n"] == 50 and _figures(out)["bootstrap"]["seed"] == 4


def test_class_folders_each_file_its_own_patient_without_auto_box(tmp_path, capsys):
    _write_cases(tmp_path, N_PER_CLASS)
    out = tmp_path / "r"
    assert cli.main(["validate", str(tmp_path), "--out", str(out), "--no-auto-box",
                     "--bootstrap", "100"]) == 0
    fig = _figures(out)
    assert fig["cases"]["classified"] == 24  # the masks are not cases
    assert fig["cases"]["patient_sources"]["file"] == 24 and fig["cases"]["patients"] == 24
    assert fig["localiser"]["used"] is False and fig["localiser"]["masked"] == 24
    assert {r["box_source"] for r in fig["per_case"]} == {"none"}
    assert fig["bootstrap"]["n"] == 100
    html = (out / REPORT_FILES["html"]).read_text()
    assert "each counts as its own patient" in html


def test_too_few_cases_are_said_with_how_many_more(tmp_path):
    _write_cases(tmp_path, 3)
    out = tmp_path / "r"
    assert cli.main(["validate", str(tmp_path), "--out", str(out), "--bootstrap", "20"]) == 0
    fig = _figures(out)
    assert "too_few" in fig["at_cutoff"]["sensitivity"] and "too_few" in fig["auc"]
    html = (out / REPORT_FILES["html"]).read_text()
    assert "Too few cases to estimate the sensitivity here" in html
    assert "7 more cancer(s)" in html and "1.96\u00b2 p(1-p)" in html
    assert html.count("data:image/png;base64,") == 0  # ROC and calibration replaced


def test_unreadable_files_are_listed_with_their_reason(tmp_path, capsys):
    csv = _write_cases(tmp_path, 3, 3)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with open(csv, "a") as fh:
        fh.write("broken.png,malignant,,P9\nmissing.png,benign,,P9\n")
    out = tmp_path / "r"
    assert cli.main(["validate", str(csv), "--out", str(out), "--bootstrap", "0"]) == 0
    err = capsys.readouterr().err
    assert "not classified: " in err and "broken.png" in err and "missing.png" in err
    failed = _figures(out)["cases"]["not_classified"]
    assert {Path(f["path"]).name for f in failed} == {"broken.png", "missing.png"}
    assert all(f["reason"] for f in failed)
    assert "Files not classified" in (out / REPORT_FILES["html"]).read_text()


def test_nothing_classifiable_exits_1_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "c.csv").write_text("a.png,1\nb.png,0\n")
    out = tmp_path / "r"
    assert cli.main(["validate", str(tmp_path / "c.csv"), "--out", str(out)]) == 1
    assert "no report written" in capsys.readouterr().err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("files, argv, match", [
    ({"benign/a.png": None}, ["validate", ".", "--out", "r"], "missing: malignant/"),
    ({"c.csv": "a.png,perhaps\n"}, ["validate", "c.csv", "--out", "r"], "c.csv:1: the label"),
    ({"c.csv": "a.png,1\n", "f": ""}, ["validate", "c.csv", "--out", "f"],
     "--out: f: this is a file, not a folder"),
    ({}, ["validate", "nowhere", "--out", "r"], "nowhere: no such file or folder"),
])
def test_usage_errors_exit_2_before_any_work(tmp_path, capsys, monkeypatch, files, argv, match):
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            _png_file(tmp_path / name)
        else:
            (tmp_path / name).write_text(text)
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


def _png_file(path: Path) -> None:
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(path)


def test_bad_option_values_are_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["validate", str(tmp_path), "--out", str(tmp_path), "--bootstrap", "-1"])
    assert exc.value.code == 2 and "expected 0 or more" in capsys.readouterr().err


def test_ctrl_c_during_the_review_writes_nothing(tmp_path, monkeypatch, capsys):
    from rcdnet_desktop import cli_validate

    _write_cases(tmp_path, 3)
    real, calls = cli_validate.outcome, []

    def interrupted(case, item):
        calls.append(case)
        if len(calls) == 3:
            raise cli.Stopped(signal.SIGINT)
        return real(case, item)

    monkeypatch.setattr(cli_validate, "outcome", interrupted)
    out = tmp_path / "r"
    assert cli.main(["validate", str(tmp_path), "--out", str(out)]) == 130
    assert "interrupted after 2 of 6 case(s); no report written" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_ctrl_c_while_writing_removes_the_files_already_written(tmp_path, monkeypatch):
    from rcdnet_desktop.core.validation import report

    _write_cases(tmp_path, 3)
    real, calls = report.atomic_write, []

    def interrupted(path, write, *, overwrite):
        calls.append(path)
        if len(calls) == 2:
            raise cli.Stopped(signal.SIGINT)
        return real(path, write, overwrite=overwrite)

    monkeypatch.setattr(report, "atomic_write", interrupted)  # the report's one writer
    out = tmp_path / "r"
    assert cli.main(["validate", str(tmp_path), "--out", str(out), "--bootstrap", "0"]) == 130
    assert len(calls) == 2 and list(out.iterdir()) == []


def test_validate_does_not_import_torch(tmp_path):
    csv = _write_cases(tmp_path, 2, 2)
    script = textwrap.dedent(f"""
        import sys
        from rcdnet_desktop.cli import main
        rc = main(["validate", {str(csv)!r}, "--out", {str(tmp_path / "r")!r},
                   "--bootstrap", "10"])
        print("RC", rc, "TORCH", "torch" in sys.modules)
    """)
    env = {"RCDNET_DEVICE": "cpu", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == "RC 0 TORCH False", proc.stderr[-2000:]


def test_help_says_what_the_report_holds(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["validate", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "95% CIs resampled by patient" in out
    assert all(name in out.replace("\n", " ") for name in REPORT_FILES.values())
