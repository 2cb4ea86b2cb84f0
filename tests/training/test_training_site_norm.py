"""Re-estimated normalisation statistics: batch-norm statistics from a site's own images, and
the cross-fitting that keeps an image out of the statistics it is classified with."""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

from rcdnet_desktop.core.preprocess import PreprocessConfig
from training.site_norm import adapted_batch_norm, batch, compare, halves


def test_halves_never_split_a_group_and_use_both_sides():
    groups = ["a", "a", "b", "c", "c", "d", "e"]
    second = halves(groups)
    for g in set(groups):
        assert len({bool(s) for s, gg in zip(second, groups, strict=True) if gg == g}) == 1
    assert second.any() and (~second).any()


def test_adapted_batch_norm_takes_the_sites_statistics_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).eval()
    x = torch.randn(40, 3, 8, 8) * 3 + 5
    adapted = adapted_batch_norm(model, x, batch_size=20)  # equal batches: mean of means
    feats = model[0](x)
    torch.testing.assert_close(adapted[1].running_mean, feats.mean((0, 2, 3)),
                               rtol=1e-4, atol=1e-4)
    assert torch.all(model[1].running_mean == 0)  # the original is untouched
    assert not adapted.training


def test_input_shift_maps_the_sites_grey_statistics_onto_the_reference():
    config = PreprocessConfig(size=16)
    grey = np.random.default_rng(0).normal(80, 10, (4, 16, 16)).clip(0, 255)
    plain = batch(grey, config).numpy()
    shifted = batch(grey, config, (grey.mean(), grey.std(), 120.0, 30.0)).numpy()
    # 120 grey levels after the shift, in the card's normalisation
    expect = (120.0 / 255.0 - config.mean[0]) / config.std[0]
    assert abs(shifted.mean() - expect) < 0.02 and abs(plain.mean() - expect) > 0.2


def test_compare_gives_a_zero_difference_for_the_reference_itself():
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * 20)
    lg = np.stack([np.zeros(40), y + rng.normal(0, 1, 40)], 1).astype(np.float32)
    res = compare(y, np.arange(40) // 2, {"none": {"whole": lg}, "input": {"whole": lg.copy()}},
                  1.0, 0.5, n_boot=50)
    d = res["whole"]["input"]["auc_minus_none"]
    assert d["value"] == 0 and d["ci"] == (0.0, 0.0)
    assert "auc_minus_none" not in res["whole"]["none"]


def test_a_profile_cut_off_is_measured_on_patients_it_never_saw():
    from training.profile_transfer import random_halves, transfer

    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(60), 3)
    y = np.tile([0, 1, 0], 60)
    lg = np.stack([np.zeros(180), 2.0 * y + rng.normal(0, 1, 180)], 1)
    fit = random_halves(groups.tolist(), np.random.default_rng(0))
    assert not set(groups[fit]) & set(groups[~fit]) and fit.sum() == 90
    r = transfer(lg, y, groups.tolist(), 0.9, 1.0, 0.9, splits=50)
    assert r["splits"] == 50 and 0.75 < r["profile"]["mean"] <= 1.0
    assert 0.0 <= r["profile"]["within_tolerance"] <= 1.0
    # a card cut-off at P 0.9 finds fewer cancers here than the 0.9 sensitivity asked for
    assert r["card"]["mean"] < r["profile"]["mean"]


def test_profile_transfer_from_the_command_line_reads_each_site_of_a_report(tmp_path, capsys):
    from training.cli import main

    rng = np.random.default_rng(3)
    y = np.tile([0, 1, 0], 80)
    lg = np.stack([np.zeros(240), 2.0 * y + rng.normal(0, 1, 240)], 1).astype(np.float32)
    sites = np.array(["a"] * 120 + ["b"] * 120)
    np.savez(tmp_path / "predictions_fusion.npz", logits=lg, y=y, groups=np.arange(240) // 2,
             sites=sites)
    assert main(["profile-transfer", "--report", str(tmp_path), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert out.count("profile cut-off within 0.05 of 0.90") == 2 and "a:" in out and "b:" in out
    assert (tmp_path / "o" / "profile_transfer.json").exists()


def _three_sites(tmp_path, shifts=(0.0, 0.0, -0.7)):
    rng = np.random.default_rng(4)
    parts = []
    for site, shift in zip(("a", "b", "c"), shifts, strict=True):
        y = np.tile([0, 1, 0, 0], 40)
        score = 2.5 * y + rng.normal(0, 1, 160) + shift * y  # site c: its cancers look milder
        parts.append((site, y, np.stack([np.zeros(160), score], 1)))
    np.savez(tmp_path / "predictions_fusion.npz",
             logits=np.concatenate([p[2] for p in parts]).astype(np.float32),
             y=np.concatenate([p[1] for p in parts]), groups=np.arange(480),
             sites=np.repeat([p[0] for p in parts], 160))


def test_the_cut_off_target_is_raised_until_no_held_out_site_misses_the_floor(tmp_path, capsys):
    from training.cli import main

    _three_sites(tmp_path)
    rc = main(["cutoff-loso", "--report", str(tmp_path), "--internal", "a", "--internal", "b",
               "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    r = json.loads((tmp_path / "o" / "cutoff_loso.json").read_text())
    assert rc == 0 and "chosen target" in out
    assert r["target"] > 0.90  # site c's milder cancers need a lower cut-off
    chosen = r["table"][f"{r['target']:.2f}"]
    assert min(v["sensitivity"] for v in chosen.values()) >= 0.85
    below = f"{r['target'] - 0.01:.2f}"
    assert min(v["sensitivity"] for v in r["table"][below].values()) < 0.85
    assert r["at_cutoff"]["c"]["sensitivity"] >= 0.85


def test_the_subcommand_measures_each_site_and_writes_its_report(tmp_path, capsys):
    """``rcdnet-train site-norm`` through main([...]): the training site's validation rows and
    an external site, each method against none, written as JSON and Markdown."""
    from synth_busi import write_busi

    from tests.conftest import BUNDLED_MODEL_DIR
    from training.cli import main

    data = write_busi(tmp_path / "busi", n_per_class=6)
    other = write_busi(tmp_path / "other", n_per_class=4, seed=5)
    cache = str(tmp_path / "cache")
    assert main(["split", "--data", str(data), "--out", str(tmp_path / "split.csv"),
                 "--no-progress", "--cache-dir", cache]) == 0
    out = tmp_path / "out"
    assert main(["site-norm", "--bundle", str(BUNDLED_MODEL_DIR), "--data", str(data),
                 "--split", str(tmp_path / "split.csv"), "--external", str(other),
                 "--out", str(out), "--cache-dir", cache, "--n-boot", "20",
                 "--no-progress"]) == 0
    report = json.loads((out / "site_norm.json").read_text())
    printed = capsys.readouterr().out
    assert printed.strip().endswith((out / "site_norm.md").read_text().strip())
    sites = report["sites"]
    assert len(sites) == 2 and any("other" in name for name in sites)
    for site in sites.values():
        assert site["images"] > 0
        assert {"none", "batch_norm", "input"} <= set(site["modes"]["whole"])
