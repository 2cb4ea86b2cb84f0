"""Site profiles through ``main``: ``rcdnet validate --profile-out`` (from unlabelled images,
from labelled cases with ``--sensitivity``, with a report), ``--site`` on classify and validate,
and the refusals."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from rcdnet_desktop import cli
from rcdnet_desktop.core import site_profile as sp
from rcdnet_desktop.core.model.card import load_card
from rcdnet_desktop.core.resources import sample_path
from rcdnet_desktop.core.validation.report import REPORT_FILES
from tests.test_cli_validate import N_PATIENTS, N_PER_CLASS, _write_cases

SAMPLES = Path(sample_path()).parent
BENIGN = SAMPLES / "busi_benign_sample.png"  # P(malignant) about 0.08, below the card's 0.16


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site_cases")
    return _write_cases(root, N_PER_CLASS, N_PATIENTS)


@pytest.fixture
def low_cutoff(tmp_path) -> Path:
    """A profile of the bundled model whose cut-off (0.05) lies under the benign sample's P."""
    prof = sp.make_profile("Hospital X", load_card(), 212, 40, created="2026-12-07",
                           cutoff=0.05, target_sensitivity=0.9, sensitivity=0.9,
                           sensitivity_ci=(0.82, 0.95), specificity=0.4,
                           specificity_ci=(0.3, 0.5))
    return sp.write_profile(tmp_path / "x.json", prof)


def test_classify_site_decides_at_the_profile_cut_off(low_cutoff, capsys):
    assert cli.main(["classify", str(BENIGN)]) == 0
    card_row = _rows(capsys.readouterr().out)[0]
    assert card_row["decision"] == "below_cutoff" and card_row["site"] == ""
    assert 0.05 < float(card_row["p_malignant"]) < 0.158
    assert cli.main(["classify", str(BENIGN), "--site", str(low_cutoff)]) == 0
    out, err = capsys.readouterr()
    row = _rows(out)[0]
    assert row["decision"] == "suspicious" and row["suspicious"] == "yes"
    assert row["site"] == "Hospital X"
    assert row["p_malignant"] == card_row["p_malignant"]  # no temperature in this profile
    assert ("Site profile 'Hospital X' (2026-12-07, 212 cases of 40 patients): cut-off 0.05, "
            "sensitivity 0.90 [0.82, 0.95]") in err


def test_classify_site_with_json_and_a_report(low_cutoff, tmp_path, capsys):
    out_dir = tmp_path / "png"
    assert cli.main(["classify", str(BENIGN), "--site", str(low_cutoff), "--json",
                     "--heatmaps", str(out_dir)]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["decision"] == "suspicious" and row["site"] == "Hospital X"
    assert len(list(out_dir.glob("*_heatmaps.png"))) == 1


def test_a_changed_or_foreign_profile_is_a_usage_error(low_cutoff, tmp_path, capsys):
    low_cutoff.write_text(low_cutoff.read_text().replace("0.05", "0.04"))
    assert cli.main(["classify", str(BENIGN), "--site", str(low_cutoff)]) == 2
    err = capsys.readouterr().err
    assert f"--site: {low_cutoff}: the site profile was changed after it was written" in err
    card = load_card()
    other = sp.SiteProfile("Y", "2026-12-07", "0.9.9", card.weights["sha256"], 30,
                           cutoff=0.3)
    path = sp.write_profile(tmp_path / "other.json", other)
    assert cli.main(["classify", str(BENIGN), "--site", str(path)]) == 2
    assert f"made for model 0.9.9, not the model running ({card.version})" in \
        capsys.readouterr().err


def test_unlabelled_profile_out_gives_the_guard_limit(cases, tmp_path, capsys):
    """The synthetic images lie beyond the card's guard limit: the site's limit takes them in."""
    profile, folder = tmp_path / "guard.json", tmp_path / "unlabelled"
    folder.mkdir()
    images = [f for f in cases.parent.rglob("*.png") if not f.stem.endswith("_mask")]
    for f in images[:N_PER_CLASS]:
        shutil.copy(f, folder / f.name)
    argv = ["validate", "--unlabelled", str(folder), "--profile-out", str(profile),
            "--site-name", "Site B"]
    assert cli.main(argv) == 2 and not profile.exists()
    assert f"at least 20 images of the site, got {N_PER_CLASS}" in capsys.readouterr().err
    for f in images[N_PER_CLASS:]:
        shutil.copy(f, folder / f.name)
    n = len(images)
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    prof = sp.read_profile(profile, load_card())
    assert prof.site == "Site B" and prof.cases == n and prof.patients == 0
    assert prof.cutoff is None and prof.temperature is None
    limit = load_card().guard["threshold"]
    assert limit < prof.guard_limit <= sp.GUARD_MAX_RAISE * limit
    assert prof.guard_flagged == 0.0  # 24 images: none above the 98th percentile
    assert f"flags {n} of {n} image(s) here" in err
    assert "Site profile 'Site B'" in err and "input guard limit" in err
    image = str(folder / images[0].name)
    assert cli.main(["classify", image]) == 0
    assert "not_breast_ultrasound" in _rows(capsys.readouterr().out)[0]["checks"]
    assert cli.main(["classify", image, "--site", str(profile)]) == 0
    row = _rows(capsys.readouterr().out)[0]
    assert "not_breast_ultrasound" not in row["checks"] and row["site"] == "Site B"
    # The file is kept unless --overwrite.
    assert cli.main(["validate", "--unlabelled", str(folder),
                     "--profile-out", str(profile)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cases_with_sensitivity_give_temperature_and_cut_off(cases, tmp_path, capsys):
    profile, out = tmp_path / "p.json", tmp_path / "report"
    assert cli.main(["validate", str(cases), "--profile-out", str(profile),
                     "--sensitivity", "0.9", "--bootstrap", "100", "--out", str(out)]) == 0
    prof = sp.read_profile(profile, load_card())
    assert prof.site == "cases"  # the CSV's name without --site-name
    assert (prof.cases, prof.patients) == (2 * N_PER_CLASS, N_PATIENTS)
    assert prof.temperature > 0 and 0 < prof.cutoff < 1 and prof.target_sensitivity == 0.9
    assert prof.sensitivity >= 0.9
    lo, hi = prof.sensitivity_ci
    assert lo <= prof.sensitivity <= hi
    assert prof.guard_limit is not None
    assert (out / REPORT_FILES["json"]).exists()  # the report too, at the card's cut-off
    fig = json.loads((out / REPORT_FILES["json"]).read_text())
    assert "site_profile" not in fig
    assert f"site profile written to {profile}" in capsys.readouterr().err
    # Validated under the profile: its cut-off decides, and the report says so.
    out2 = tmp_path / "report2"
    assert cli.main(["validate", str(cases), "--site", str(profile), "--out", str(out2),
                     "--bootstrap", "100"]) == 0
    fig = json.loads((out2 / REPORT_FILES["json"]).read_text())
    assert fig["site_profile"]["site"] == "cases"
    assert fig["at_cutoff"]["threshold"] == pytest.approx(prof.cutoff)
    assert fig["at_cutoff"]["sensitivity"]["value"] == pytest.approx(prof.sensitivity)
    html = (out2 / REPORT_FILES["html"]).read_text()
    assert "At the site profile&#x27;s cut-off" in html and "Site profile &#x27;cases&#x27;" in html


def test_profile_from_cases_alone_without_sensitivity(cases, tmp_path):
    profile = tmp_path / "g.json"
    assert cli.main(["validate", str(cases), "--profile-out", str(profile),
                     "--site-name", "H"]) == 0
    prof = sp.read_profile(profile)
    assert prof.guard_limit is not None and prof.cutoff is None and prof.temperature is None


@pytest.mark.parametrize("argv, words", [
    (["validate", "--unlabelled", "D"], "give --profile-out FILE"),
    (["validate", "C", "--unlabelled", "D", "--profile-out", "p.json"], "not both"),
    (["validate", "C", "--sensitivity", "0.9", "--out", "o"], "--sensitivity chooses"),
    (["validate", "C", "--site", "s.json", "--profile-out", "p.json"], "not both"),
    (["validate", "C", "--site-name", "H", "--out", "o"], "--site-name names"),
    (["validate", "C"], "give --out DIR"),
])
def test_options_that_do_not_go_together(argv, words, capsys):
    assert cli.main(argv) == 2
    assert words in capsys.readouterr().err


def test_sensitivity_must_be_a_share(capsys):
    with pytest.raises(SystemExit):
        cli.main(["validate", "C", "--profile-out", "p.json", "--sensitivity", "90"])
    assert "at most 1" in capsys.readouterr().err
