"""rcdnet-train box-stability: figures, the choice rule, patient groups, and the search's
shortcut (averaging single-box probabilities) against the engine's own views."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop.core.model.engine import InferenceEngine
from rcdnet_desktop.core.resources import resources_dir
from tests.core.localiser_helpers import FakeLocaliser
from training import box_stability as bs
from training.cli import main


def test_stability_figures_by_hand():
    y = np.array([0, 1, 1, 0])
    p = np.array([[0.10, 0.12, 0.20],    # benign, crosses 0.15: changes side
                  [0.90, 0.80, 0.95],    # malignant, stable
                  [0.20, 0.10, 0.22],    # malignant, changes side
                  [0.05, 0.05, 0.05]])   # benign, stable, no spread
    s = bs.stability(y, p, 0.15)
    assert s["changes_side"] == 0.5
    assert s["mean_spread"] == pytest.approx((0.10 + 0.15 + 0.12 + 0) / 4)
    assert s["auc"] == 1.0 and s["sensitivity"] == 1.0 and s["specificity"] == 1.0


def test_paired_difference_of_identical_runs_is_zero():
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 10)
    p = rng.uniform(size=(20, 7))
    groups = np.repeat(np.arange(10), 2)
    d = bs.paired(y, p, p, groups, 0.5, n_boot=50)
    assert all(v["value"] == 0 and v["ci95"] == [0, 0] for v in d.values())
    ci = bs.with_ci(y, p, groups, 0.5, n_boot=50)
    assert set(ci) == set(bs.STATS) and all(len(v["ci95"]) == 2 for v in ci.values())


def test_choice_rule():
    def s(flip, spread, auc):
        return {"changes_side": flip, "mean_spread": spread, "auc": auc}

    scores = {n: s(0.2, 0.1, 0.9) for n in bs.CANDIDATES}
    scores["scales 0.8-1.25 + shifts 10%"] = s(0.04, 0.04, 0.91)
    scores["scales 0.8-1.25"] = s(0.05, 0.05, 0.90)
    assert bs.choose(scores) == "scales 0.8-1.25"  # fewest views that meet all three
    scores["scales 0.8-1.25"] = s(0.05, 0.05, 0.89)  # AUC below the box alone's
    assert bs.choose(scores) == "scales 0.8-1.25 + shifts 10%"
    scores = {n: s(0.2, 0.1, 0.9) for n in bs.CANDIDATES}
    scores["shifts 10%"] = s(0.1, 0.09, 0.8)  # none meets the goals: lowest change of side
    assert bs.choose(scores) == "shifts 10%"
    assert all(c.views[0].is_identity for c in bs.CANDIDATES.values())
    scores["lesion box (IoU >= 0.3)"] = s(0.01, 0.01, 0.95)  # 2 passes: fewer than 5
    scores["scales 0.8-1.25"] = s(0.0, 0.0, 0.95)
    assert bs.choose(scores) == "lesion box (IoU >= 0.3)"


def _site(root, rows, duplicates=()):
    """A class-folder site: the bundled samples under patient codes, each with a mask."""
    samples = resources_dir() / "samples"
    for name, cls, _patient, src in rows:
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.open(samples / src)
        img.save(folder / f"{name}.png")
        mask = np.zeros((img.height, img.width), np.uint8)
        mask[img.height // 3: img.height // 2, img.width // 3: img.width // 2] = 255
        Image.fromarray(mask).save(folder / f"{name}_mask.png")
    with (root / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "cls", "patient"])
        for name, cls, patient, _ in rows:
            w.writerow([f"{cls}/{name}.png", cls, patient])
    with (root / "intra_duplicates.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "cls_a", "cls_b", "d8", "d16", "corr"])
        w.writerows(duplicates)
    return root


ROWS = [("AAAA_000", "benign", "AAAA", "busi_benign_sample.png"),
        ("BBBB_000", "malignant", "BBBB", "busi_malignant_sample.png"),
        ("CCCC_000", "malignant", "CCCC", "busi_malignant_sample.png")]


def test_external_items_group_by_patient_joining_identical_images(tmp_path):
    root = _site(tmp_path / "site", ROWS,
                 duplicates=[("BBBB_000", "CCCC_000", "malignant", "malignant", 0, 0, 1.0)])
    items = bs.external_items(root)
    assert [it.label for it in items] == [0, 1, 1]
    groups = [it.group for it in items]
    assert groups[1] == groups[2] != groups[0]
    assert all(len(it.masks) == 1 for it in items)


@pytest.mark.parametrize("snap", [None, 0.2])
def test_the_search_shortcut_equals_the_engines_views(engine, tmp_path, snap):
    """Averaging single-box logit(P) gives what the engine computes with the views on (and
    with the lesion box the localiser outlines around each drawn box)."""
    root = _site(tmp_path / "site", ROWS[:2])
    items = bs.external_items(root)
    cand = bs.Candidate(bs.CANDIDATES["scales 0.9/1.1 + shifts 10%"].views, snap)

    def make(section, **kw):
        return InferenceEngine(model=engine.model, card=replace(engine.card, box_views=section),
                               device="cpu", localiser=FakeLocaliser(), **kw)

    with_views = make(cand.section())
    alone = make({}, box_views=False)
    snappers = {snap: make(bs.Candidate(cand.views[:1], snap).section())} if snap else {}
    measured = bs.measure(with_views, items)
    searched = bs.single_box_probabilities(
        alone, items, {"set": cand, "as given": bs.CANDIDATES["as given"]}, snappers=snappers)
    np.testing.assert_allclose(searched["set"], measured["p"], atol=2e-5)
    np.testing.assert_allclose(searched["as given"], bs.measure(alone, items)["p"], atol=2e-5)
    assert measured["p"].shape == (2, len(bs.READER_VARIANTS))
    assert list(measured["y"]) == [0, 1]


def test_cli_refuses_to_choose_on_an_external_site(tmp_path):
    root = _site(tmp_path / "site", ROWS[:1])
    with pytest.raises(SystemExit, match="never on an external site"):
        main(["box-stability", "--external", str(root), "--choose"])
    with pytest.raises(SystemExit, match="not both"):
        main(["box-stability", "--external", str(root), "--split", str(root / "x.csv")])


@pytest.mark.slow
def test_cli_measures_an_external_site(tmp_path, capsys):
    root = _site(tmp_path / "site", ROWS)
    out = tmp_path / "report.json"
    assert main(["box-stability", "--external", str(root), "--out", str(out),
                 "--n-boot", "20", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "box alone" in text and "box views" in text and "difference" in text
    assert out.is_file() and out.with_suffix(".npz").is_file()
