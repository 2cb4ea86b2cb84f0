"""Moving a bundle's cut-off to another sensitivity target: the figures that depend on it are
measured again from the saved predictions, everything else in the card stays as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rcdnet_desktop.core.metrics import softmax
from rcdnet_desktop.core.model.card import load_card
from training.cli import main

BUNDLE = Path(__file__).resolve().parents[2] / "resources" / "model"
MODES = ("whole", "roi", "auto", "fusion")


def _report(folder: Path, sites: tuple[str, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60 * len(sites)
    y = np.tile([0, 1, 0], n // 3)
    for mode in MODES:
        score = 1.5 * y + rng.normal(0, 1, n)
        np.savez(folder / f"predictions_{mode}.npz",
                 logits=np.stack([np.zeros(n), score], 1).astype(np.float32), y=y,
                 groups=np.arange(n) // 2, sites=np.repeat(sites, 60), energy=[], hit=[])


@pytest.fixture
def bundle(tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(BUNDLE, out)
    for name, sites, seed in (("internal", ("busi", "breast"), 0), ("external", ("bus-uclm",), 1)):
        (tmp_path / name).mkdir()
        _report(tmp_path / name, sites, seed)
    return out


def test_retarget_moves_the_cut_off_and_every_figure_that_depends_on_it(bundle, capsys):
    before = load_card(bundle)
    rc = main(["retarget", "--bundle", str(bundle), "--report", str(bundle.parent / "internal"),
               "--external-report", str(bundle.parent / "external"),
               "--target-sensitivity", "0.95", "--version", "9.0.0",
               "--rule-note", "target chosen by leaving one site out"])
    assert rc == 0 and "card version 9.0.0" in capsys.readouterr().out
    after = load_card(bundle)
    op = after.operating_point
    with np.load(bundle.parent / "internal" / "predictions_fusion.npz") as z:
        p = softmax(z["logits"], before.temperature)[:, 1]
        found = (p[z["y"] == 1] >= op["suspicious_threshold"]).mean()
    assert found >= 0.95 and op["at_threshold_internal"]["recall"]["value"] == round(found, 4)
    assert op["threshold_rule"].endswith("(target chosen by leaving one site out)")
    ext = after.metrics["external"]
    assert ext["threshold"] == op["suspicious_threshold"]
    assert ext["fusion"]["recall"] == op["at_threshold_external"]["recall"]["value"]
    assert after.metrics["internal_validation"]["site_busi"]["fusion"]["confusion"] != \
        before.metrics["internal_validation"]["site_busi"]["fusion"]["confusion"]
    # Figures that do not depend on the cut-off are kept as they were.
    for mode in MODES:
        assert ext[mode]["auc"] == before.metrics["external"][mode]["auc"]
    for section in ("guard", "lexicon", "self_test", "box_views", "localiser", "onnx", "weights"):
        assert getattr(after, section) == getattr(before, section), section
    assert after.metrics["heat_maps"] == before.metrics["heat_maps"]
    limits = [t for t in after.limitations if t.startswith("at the suspicious threshold")]
    assert len(limits) == 1 and f"({op['suspicious_threshold']:.3f})" in limits[0]
    assert len(after.limitations) == len(before.limitations)
    json.loads((bundle / "model_card.json").read_text())  # still one valid JSON document


def test_retarget_at_the_cards_own_target_changes_only_the_version(bundle, tmp_path):
    main(["retarget", "--bundle", str(bundle), "--report", str(tmp_path / "internal"),
          "--target-sensitivity", "0.9", "--version", "9.0.1"])
    once = load_card(bundle)
    main(["retarget", "--bundle", str(bundle), "--report", str(tmp_path / "internal"),
          "--target-sensitivity", "0.9", "--version", "9.0.2"])
    twice = load_card(bundle)
    assert once.to_dict() | {"version": "x"} == twice.to_dict() | {"version": "x"}
