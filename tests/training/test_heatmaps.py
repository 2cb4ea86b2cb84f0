"""rcdnet-train heatmaps: localisation figures of the heat maps, and the closed forms it uses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch
from synth_busi import write_busi

from rcdnet_desktop.core.model.explain import gradcam_like_normalise, gradcam_maps
from tests.conftest import BUNDLED_MODEL_DIR
from training.cli import main
from training.evaluate import measure_map
from training.heatmaps import CANDIDATES, VIEWS, layercam_contrastive


def test_layercam_closed_form_equals_pytorch_grad_cam(engine, sample_malignant):
    x = torch.from_numpy(engine.prepare(sample_malignant).tensor[None])
    model = engine.model
    with torch.inference_mode():
        feats = model.forward_features(x).numpy()
    raw = layercam_contrastive(feats, model.fc.weight.detach().numpy())[0]
    ours = gradcam_like_normalise(raw, 224)
    ref = gradcam_maps(model, x, "layercam", contrast=True)
    assert ours.max() > 0.99
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


def test_measure_map_energy_pointing_and_empty():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 2:5] = True
    heat = np.zeros((10, 10), np.float32)
    heat[3, 3], heat[8, 8] = 3.0, 1.0
    assert measure_map(heat, mask) == (0.75, True, False)
    assert measure_map(np.zeros((10, 10), np.float32), mask) == (0.0, False, True)


def test_the_subcommand_measures_both_views_and_writes_the_card(tmp_path, capsys):
    data = write_busi(tmp_path / "busi", n_per_class=4)
    other = write_busi(tmp_path / "other", n_per_class=3, seed=5)
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLED_MODEL_DIR, bundle)
    out = tmp_path / "out"
    assert main(["heatmaps", "--bundle", str(bundle), "--data", str(data), "--external",
                 str(other), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--n-boot", "20", "--write-card", "--no-progress"]) == 0
    report = json.loads((out / "heatmaps.json").read_text())
    assert list(report["sets"]) == ["internal validation", "external: other"]
    ext = report["sets"]["external: other"]
    assert ext["n_images"] == 6
    for view in VIEWS:
        v = ext["views"][view]
        for name in CANDIDATES:
            lo, hi = v[f"{name}.energy"]["ci95"]
            assert 0 <= lo <= v[f"{name}.energy"]["value"] <= hi <= 1
        # The synthetic lesions are not centred in the whole image, but are in a lesion box.
    assert ext["views"]["lesion box"]["gaussian.pointing"]["value"] == 1.0
    assert "| shipped |" in capsys.readouterr().out
    assert "energy / share" in (out / "heatmaps_tables.md").read_text()
    card = json.loads((bundle / "model_card.json").read_text())
    section = card["metrics"]["heat_maps"]
    assert set(section) >= {"method", "figures", "internal validation", "external: other"}
    shipped = section["external: other"]["default"]["shipped"]
    lo, hi = shipped["pointing_ci95"]
    assert lo <= shipped["pointing"] <= hi
    from rcdnet_desktop.core.model.engine import InferenceEngine

    InferenceEngine(bundle, device="cpu", backend="onnx")  # the card still verifies and opens
