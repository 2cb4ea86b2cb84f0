import json

import numpy as np
import pytest
import torch

from rcdnet_desktop.core.model.network import RcdNet
from rcdnet_desktop.core.preprocess import PreprocessConfig
from training.bundle import build_and_evaluate_bundle
from training.cache import load_all
from training.cli import main
from training.data import load_samples
from training.evaluate import evaluate_model, evaluate_weights
from training.report import FIGURES
from training.train import TrainConfig

SMALL = PreprocessConfig(size=64)
REPORT_FILES = ("report.json", "report.md", "predictions_whole.npz", "predictions_roi.npz",
                *FIGURES)


def test_evaluation_writes_every_report_file(busi, tiny_net, tmp_path):
    items, _ = load_all(load_samples(busi), None, progress=False)
    history = [{"epoch": 1, "train_loss": 0.7, "train_acc": 0.5, "val_loss_whole": 0.7,
                "val_acc_whole": 0.5, "val_auc_whole": 0.5, "val_loss_roi": 0.6,
                "val_acc_roi": 0.6, "val_auc_roi": 0.6}]
    rep = evaluate_model(tiny_net, items, tmp_path / "rep", SMALL, groups=list(range(12)),
                         history=history, n_boot=50, progress=False)
    for f in (*REPORT_FILES, "training_curves.png"):
        assert (tmp_path / "rep" / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    for mode in ("whole", "roi"):
        m = saved["modes"][mode]
        assert set(m["metrics"]) == {"accuracy", "precision", "recall", "specificity", "f1",
                                     "auc"}
        assert m["localisation"]["n_with_mask"] == 12
        assert 0 <= m["localisation"]["energy_in_mask"] <= 1
    assert rep["temperature"] > 0


def test_bundle_metrics_match_a_rerun_of_evaluate(busi, tmp_path):
    items, _ = load_all(load_samples(busi), None, progress=False)
    torch.manual_seed(0)
    model = RcdNet(pretrained=False)
    cfg = TrainConfig(preprocess=SMALL, epochs=1)
    card, rep = build_and_evaluate_bundle(model, cfg, items, list(range(12)), None,
                                          {"groups": 12}, tmp_path / "bundle",
                                          tmp_path / "rep", version="9.9.9", progress=False,
                                          n_boot=100)
    assert card.untrained is False and card.version == "9.9.9"
    assert card.temperature == pytest.approx(rep["temperature"])
    again = evaluate_weights(tmp_path / "bundle", items, tmp_path / "rep2",
                             groups=list(range(12)), progress=False, n_boot=100)
    assert again["temperature_source"] == "from the model card"
    for mode in ("whole", "roi"):
        for k, v in again["modes"][mode]["metrics"].items():
            got = card.metrics["internal_validation"][mode][k]
            assert (np.isnan(v["value"]) and np.isnan(got)) or got == round(v["value"], 4)


def test_cli_split_and_train_end_to_end(busi, tmp_path):
    out = tmp_path / "run"
    assert main(["split", "--data", str(busi), "--out", str(tmp_path / "split.csv"),
                 "--no-progress", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert main(["train", "--data", str(busi), "--split", str(tmp_path / "split.csv"),
                 "--out", str(out), "--epochs", "1", "--batch-size", "4", "--no-pretrained",
                 "--input-size", "64", "--no-progress", "--cache-dir",
                 str(tmp_path / "cache"), "--threads", "1"]) == 0
    for f in ("checkpoint.pt", "model_state.pt", "history.json", "split.csv",
              "bundle/model_card.json", "bundle/rcdnet_weights.pt",
              *(f"report/{f}" for f in REPORT_FILES)):
        assert (out / f).exists(), f
    card = json.loads((out / "bundle" / "model_card.json").read_text())
    assert card["untrained"] is False and "roi" in card["metrics"]["internal_validation"]


def test_compare_table_layout(busi, tiny_net, tmp_path):
    from training.compare import write_table

    items, _ = load_all(load_samples(busi), None, progress=False)
    rep_dir = tmp_path / "cmp" / "mobilenet_v2" / "report"
    evaluate_model(tiny_net, items, rep_dir, SMALL, n_boot=20, progress=False)
    (rep_dir.parent / "model_info.json").write_text(json.dumps({"init": "scratch"}))
    table = write_table(tmp_path / "cmp", tmp_path / "table.md").read_text()
    assert "| precision | recall | F1 | accuracy | AUC [95% CI] |" in table
    # one row per input mode (whole, ROI); no reference model yet, so no paired difference
    assert table.count("| mobilenet_v2 | MobileNetV2 (torchvision) | scratch |") == 2
    assert table.count("| n/a |") == 2
    # with the reference evaluated on the same images, each row gets its paired AUC difference
    evaluate_model(tiny_net, items, tmp_path / "ref", SMALL, n_boot=20, progress=False)
    table = write_table(tmp_path / "cmp", tmp_path / "table.md",
                        {"rcdnet": tmp_path / "ref" / "report.json"}).read_text()
    assert table.count("| reference |") == 2
    assert table.count("| +0.000 [+0.000, +0.000] |") == 2  # the same network: no difference
    assert "Not run yet" in table and "vit_b_16 (a GPU job" in table


def test_evaluation_of_a_torchvision_model_without_cam(busi, tmp_path):
    from training.models import build_model

    items, _ = load_all(load_samples(busi), None, progress=False)
    model, info = build_model("mobilenet_v2", pretrained=True)
    assert info["init"].startswith("scratch") or info["init"].startswith("imagenet")
    rep = evaluate_model(model, items[:6] + items[-6:], tmp_path / "rep", SMALL, n_boot=20,
                         progress=False)
    assert rep["modes"]["whole"]["localisation"] is None
    for f in REPORT_FILES:
        assert (tmp_path / "rep" / f).exists(), f


def test_bundle_with_localiser_and_external_site(busi, tmp_path):
    """The full bundle: localiser saved and verified, threshold chosen for sensitivity on the
    internal images, the external site measured with the card's temperature and threshold."""
    from synth_busi import write_busi

    from rcdnet_desktop.core.model.bundle import load_localiser, load_model
    from rcdnet_desktop.core.model.localiser import LesionLocaliser

    items, _ = load_all(load_samples(busi), None, progress=False)
    ext_root = write_busi(tmp_path / "other-site", n_per_class=5, seed=7)
    ext, _ = load_all(load_samples(ext_root), None, progress=False)
    torch.manual_seed(0)
    model, loc = RcdNet(pretrained=False), LesionLocaliser(pretrained=False)
    cfg = TrainConfig(preprocess=SMALL, epochs=1)
    card, rep = build_and_evaluate_bundle(
        model, cfg, items, list(range(12)), None, {"groups": 12}, tmp_path / "bundle",
        tmp_path / "rep", version="9.9.9", progress=False, n_boot=50,
        val_sites=["busi"] * 12, localiser=loc, min_confidence=0.5, default_mode="fusion",
        target_sensitivity=0.9,
        external=(ext, list(range(10)), ["other-site"] * 10))
    assert set(rep["modes"]) == {"whole", "roi", "auto", "fusion"}
    assert rep["modes"]["fusion"]["metrics"]["recall"]["value"] >= 0.9  # chosen for it
    op = card.operating_point
    assert op["default_mode"] == "fusion" and op["suspicious_threshold"] == pytest.approx(
        rep["threshold"], abs=1e-6)
    ext_rep = json.loads((tmp_path / "rep" / "external" / "report.json").read_text())
    assert ext_rep["threshold"] == rep["threshold"]
    assert ext_rep["temperature"] == rep["temperature"]
    assert "external" in ext_rep["title"] and "other-site" in ext_rep["title"]
    assert card.metrics["external"]["n_images"] == 10
    assert card.localiser["metrics"]["external"]["pooled"]["n"] == 10
    loaded, again = load_model(tmp_path / "bundle")
    assert load_localiser(tmp_path / "bundle", again) is not None
    assert json.loads(again.to_json()) == json.loads(card.to_json())


def test_cli_evaluate_external_site_groups_by_patient(busi, tmp_path):
    import csv

    from synth_busi import write_busi

    torch.manual_seed(0)
    model = RcdNet(pretrained=False)
    cfg = TrainConfig(preprocess=SMALL, epochs=1)
    items, _ = load_all(load_samples(busi), None, progress=False)
    build_and_evaluate_bundle(model, cfg, items, list(range(12)), None, {"groups": 12},
                              tmp_path / "bundle", tmp_path / "rep", progress=False, n_boot=20)
    ext = write_busi(tmp_path / "far-away", n_per_class=4, seed=3)
    with (ext / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "cls", "patient"])
        for i, f in enumerate(sorted(ext.glob("*/*).png"))):
            w.writerow([f.relative_to(ext).as_posix(), f.parent.name, f"P{i % 3}"])
    out = tmp_path / "ext"
    assert main(["evaluate", "--weights", str(tmp_path / "bundle"), "--external", str(ext),
                 "--out", str(out), "--no-progress", "--cache-dir", str(tmp_path / "c")]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_images"] == 8 and rep["split"]["groups"] == 3  # three patients
    assert len(set(np.load(out / "predictions_whole.npz")["groups"].tolist())) == 3
    with pytest.raises(SystemExit):
        main(["evaluate", "--weights", str(tmp_path / "bundle"), "--out", str(out)])
