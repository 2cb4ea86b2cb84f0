"""Local validation's core: cases, patients, masks, the patient bootstrap and the figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop.core.metrics import auc_score, bootstrap_ci, roc_points, wilson
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.types import Box, Prediction
from rcdnet_desktop.core.validation.cases import Case, CasesError, read_cases, with_patients
from rcdnet_desktop.core.validation.figures import (
    MIN_PER_CLASS,
    cases_needed,
    validation_figures,
)
from rcdnet_desktop.core.validation.localisation import BoxOnMask, box_on_mask
from rcdnet_desktop.core.validation.outcomes import Outcome
from rcdnet_desktop.core.validation.summary import summary

OP = OperatingPoint(threshold=0.3)


def _png(path: Path, value: int = 100, size=(40, 50)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8)).save(path)
    return path


# -- cases -----------------------------------------------------------------------------------

def test_class_folders_nested_with_masks_beside_their_image(tmp_path):
    _png(tmp_path / "benign" / "a.png")
    _png(tmp_path / "benign" / "a_mask.png")
    _png(tmp_path / "Malignant" / "deep" / "b.png")
    _png(tmp_path / "Malignant" / "deep" / "b_mask_1.png")
    _png(tmp_path / "malignant_other.png")  # not in a class folder
    _png(tmp_path / "benign" / "lonely_mask.png")  # no image "lonely": a case of its own
    cases = {c.path.name: c for c in read_cases(tmp_path)}
    assert set(cases) == {"a.png", "b.png", "lonely_mask.png"}
    assert cases["a.png"].label == 0 and [m.name for m in cases["a.png"].masks] == ["a_mask.png"]
    assert cases["b.png"].label == 1 and [m.name for m in cases["b.png"].masks] == ["b_mask_1.png"]


def test_a_folder_without_class_folders_says_what_it_expects(tmp_path):
    _png(tmp_path / "benign" / "a.png")
    with pytest.raises(CasesError, match="malignant/"):
        read_cases(tmp_path)


def test_csv_with_header_without_header_and_relative_paths(tmp_path):
    (tmp_path / "h.csv").write_text("file,cls,extra,patient\nx/a.png,Malignant,?,P1\n"
                                    "b.png,0,?,\n")
    a, b = read_cases(tmp_path / "h.csv")
    assert a.path == tmp_path / "x" / "a.png" and a.label == 1 and a.patient == "P1"
    assert b.label == 0 and b.patient == "" and b.masks == ()
    (tmp_path / "n.csv").write_text("# a comment\n/abs/c.png,benign,m.png,7\n")
    (c,) = read_cases(tmp_path / "n.csv")
    assert c.path == Path("/abs/c.png") and c.masks == (tmp_path / "m.png",)
    assert c.patient == "7" and c.patient_source == "csv"


@pytest.mark.parametrize("text, match", [
    ("a.png,maybe\n", r"n.csv:1: the label must be benign or malignant"),
    ("a.png,1\na.png,0\n", r"n.csv:2: a.png is listed twice"),
    ("a.png\n", r"expected path,label"),
    ("path,mask\na.png,m.png\n", r"names no label column"),
])
def test_bad_csv_rows_are_named_by_line(tmp_path, text, match):
    (tmp_path / "n.csv").write_text(text)
    with pytest.raises(CasesError, match=match):
        read_cases(tmp_path / "n.csv")


def test_patients_from_csv_then_dicom_then_the_file(tmp_path):
    from tests.dicom_samples import patient_dicom

    dcm = patient_dicom(tmp_path / "d.dcm", patient_id="PID-9")
    png = _png(tmp_path / "p.png")
    cases = with_patients([Case(png, 0, patient="9", patient_source="csv"), Case(dcm, 1),
                           Case(png, 1)])
    assert [(c.patient, c.patient_source) for c in cases] == [
        ("csv:9", "csv"), ("dicom:PID-9", "dicom"), (f"file:{png}", "file")]


# -- box against mask ------------------------------------------------------------------------

def test_box_on_mask_by_overlap_or_centre():
    mask = np.zeros((100, 100), bool)
    mask[40:60, 40:60] = True  # 400 pixels
    exact = box_on_mask(Box(40, 40, 20, 20), mask)
    assert exact.iou == pytest.approx(1.0) and exact.centre_inside and exact.hit
    big = box_on_mask(Box(0, 0, 100, 100), mask)  # IoU 0.04, centre inside
    assert big.iou == pytest.approx(0.04) and big.centre_inside and big.hit
    beside = box_on_mask(Box(55, 55, 30, 30), mask)  # 25 px inside, centre outside
    assert beside.iou == pytest.approx(25 / (900 + 400 - 25)) and not beside.hit
    far = box_on_mask(Box(0, 0, 10, 10), mask)
    assert far.iou == 0 and not far.centre_inside and not far.hit


# -- metrics ---------------------------------------------------------------------------------

def test_patient_bootstrap_resamples_whole_patients():
    """Every resample takes each drawn patient with all of its images: within a patient, every
    image is drawn the same number of times."""
    patients = np.array(["A", "A", "A", "B", "C", "C", "D"])
    y = np.array([1, 1, 1, 0, 0, 1, 0])
    idx = np.arange(len(y))
    seen = []

    def record(yb, ib):
        counts = np.bincount(ib, minlength=len(y))
        for p in np.unique(patients):
            assert len(set(counts[patients == p])) == 1, counts
        seen.append(counts)
        return {"n": float(len(ib))}

    bootstrap_ci(y, idx, record, groups=patients, n_boot=200, seed=3)
    assert len(seen) > 150  # resamples with one class only are skipped
    sizes = {int(c.sum()) for c in seen}
    assert len(sizes) > 1  # patients of 3, 1 and 2 images: sizes vary, so whole patients go
    # With images resampled one by one, patient A's images would be drawn unequally.
    per_image = []
    bootstrap_ci(y, idx, lambda yb, ib: per_image.append(np.bincount(ib, minlength=7)) or {},
                 n_boot=50, seed=3)
    assert any(len(set(c[:3])) > 1 for c in per_image)


def test_roc_points_and_wilson():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    p = np.round(rng.random(60), 1)  # ties
    fpr, tpr = roc_points(y, p)
    ref_fpr, ref_tpr, _ = roc_curve(y, p, drop_intermediate=False)
    assert np.allclose(fpr, ref_fpr) and np.allclose(tpr, ref_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc_score(y, p))
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_a_bands_share_is_printed_on_the_right_side_of_its_limits():
    from rcdnet_desktop.core.validation.summary import pct

    assert pct(14 / 134, [0.02, 0.10]) == "10.4%" and pct(0.35, [0.1, 0.5]) == "35%"


def test_cases_needed_follows_the_normal_approximation():
    assert cases_needed(0.75) == math.ceil(1.959964 ** 2 * 0.75 * 0.25 / 0.01)  # 73
    assert cases_needed(0.5) == 97
    assert cases_needed(0.999) == cases_needed(0.95) >= MIN_PER_CLASS


# -- figures ---------------------------------------------------------------------------------

def _outcomes(n_per_class: int, n_patients: int, seed: int = 0) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(2 * n_per_class):
        label = i % 2
        p = float(np.clip(0.15 + 0.5 * label + rng.normal(0, 0.2), 0.001, 0.999))
        pred = Prediction(1 - p, p, "cpu", "t", threshold=OP.threshold, band=OP.band(p),
                          suspicious=p >= OP.threshold, box_source="auto", roi=Box(1, 1, 5, 5),
                          checks=("colour",) if i == 0 else ())
        case = Case(Path(f"/x/{i}.png"), label, patient=f"csv:P{i % n_patients}",
                    patient_source="csv")
        out.append(Outcome(case, pred, has_mask=i < 12,
                           box_on_mask=BoxOnMask(0.5 if i % 3 else 0.0, i % 3 != 0)
                           if i < 12 and i != 5 else None))
    out.append(Outcome(Case(Path("/x/bad.png"), 1, patient="csv:P0", patient_source="csv"),
                       error="/x/bad.png: file not found"))
    return out


def _check_ci(fig):
    lo, hi = fig["ci95"]
    assert lo <= fig["value"] <= hi


def test_figures_add_up_and_intervals_hold_their_point():
    outcomes = _outcomes(20, 8)
    fig = validation_figures(outcomes, OP, n_boot=300, seed=1)
    c, at = fig["cases"], fig["at_cutoff"]
    assert c["files"] == 41 and c["classified"] == 40 and c["malignant"] == c["benign"] == 20
    assert c["patients"] == 8 and c["not_classified"][0]["reason"].endswith("file not found")
    conf = at["confusion"]
    assert conf["tp"] + conf["fn"] == 20 and conf["tn"] + conf["fp"] == 20
    assert at["sensitivity"]["value"] == pytest.approx(conf["tp"] / 20)
    assert at["ppv"]["value"] == pytest.approx(conf["tp"] / (conf["tp"] + conf["fp"]))
    for f in (at["sensitivity"], at["specificity"], at["ppv"], at["npv"], fig["auc"],
              fig["calibration"]["ece"]):
        _check_ci(f)
    # At the site's own share of cancer, PPV from sensitivity and specificity is the observed.
    from rcdnet_desktop.core.card_summary import ppv
    assert ppv(at["sensitivity"]["value"], at["specificity"]["value"], 0.5) == pytest.approx(
        at["ppv"]["value"], abs=1e-5)
    for row in fig["predictive_values"]["fixed"]:
        _check_ci(row["ppv"])
        _check_ci(row["npv"])
    bands = fig["bands"]
    assert sum(b["n"] for b in bands) == 40 and sum(b["malignant"] for b in bands) == 20
    for b in bands:
        if b["n"]:
            assert b["ci95"][0] <= b["rate"] <= b["ci95"][1]
        if b["status"] == "within":
            assert b["range"][0] <= b["rate"] <= b["range"][1]
    assert sum(b["n"] for b in fig["calibration"]["bins"]) == 40
    assert fig["guard"]["flagged"] == 1 and fig["guard"]["by_check"] == {"colour": 1}
    loc = fig["localiser"]
    assert loc["masked"] == 12 and loc["with_auto_box"] == 11 and loc["no_box"] == 1
    assert loc["hits"] == loc["hits_iou"] == loc["hits_centre"] == 7
    assert loc["rate"] == pytest.approx(7 / 12)
    assert fig["roc"]["fpr"][0] == 0 and fig["roc"]["tpr"][-1] == 1
    assert len(fig["per_case"]) == 41
    assert fig["per_case"][0]["decision"] in ("suspicious", "below_cutoff")
    # Seeded: the same cases give the same intervals.
    assert validation_figures(outcomes, OP, n_boot=300, seed=1)["auc"] == fig["auc"]


def test_too_few_cases_replace_figures_with_how_many_more():
    fig = validation_figures(_outcomes(4, 3), OP, n_boot=100)
    sens = fig["at_cutoff"]["sensitivity"]
    assert "value" not in sens and sens["n"] == 4
    text = sens["too_few"]
    assert "Too few cases to estimate the sensitivity" in text
    assert "4 cancer(s) and 4 benign lesion(s) from 3 patient(s)" in text
    assert "6 more cancer(s)" in text and "2 more patient(s)" in text
    assert "\u00b10.10" in text and "1.96\u00b2 p(1-p)" in text
    assert "too_few" in fig["auc"] and "too_few" in fig["calibration"]["ece"]
    assert all(b["status"] == "too_few" for b in fig["bands"])
    assert "too_few" in fig["localiser"]
    words = " ".join(summary(fig))
    assert "Too few cases to estimate the sensitivity" in words
    assert "Too few images in every likelihood band" in words


def test_an_empty_denominator_is_not_defined_rather_than_too_few():
    outcomes = [Outcome(o.case, Prediction(0.95, 0.05, "cpu", "t", threshold=0.3,
                                           suspicious=False), )
                for o in _outcomes(10, 6) if o.prediction is not None]
    fig = validation_figures(outcomes, OP, n_boot=50)
    ppv = fig["at_cutoff"]["ppv"]
    assert ppv["value"] is None and ppv["undefined"] == "no suspicious result here"
    assert fig["at_cutoff"]["sensitivity"]["value"] == 0.0


def test_box_stability_counts_the_boxed_results_that_depend_on_the_box():
    from dataclasses import replace

    outcomes = _outcomes(10, 6)
    cut = OP.threshold
    for i, o in enumerate(outcomes[:4]):  # their box's views straddle the cut-off
        outcomes[i] = replace(o, prediction=replace(o.prediction,
                                                    box_p_range=(cut - 0.05, cut + 0.05)))
    fig = validation_figures(outcomes, OP, n_boot=0)
    box = fig["box_stability"]
    assert box["n"] == 20 and box["box_dependent"] == 4 and box["rate"] == pytest.approx(0.2)
    assert box["ci95"][0] < 0.2 < box["ci95"][1]
    assert fig["bootstrap"]["n"] == 0 and fig["auc"]["ci95"] == [None, None]
