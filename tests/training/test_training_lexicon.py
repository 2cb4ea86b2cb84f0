"""The lexicon heads' training code on synthetic data: labels from the manifest, the fit, the
agreement measures and the rule, and the whole command on a small synthetic site."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from rcdnet_desktop.core.lexicon import DESCRIPTORS, load_lexicon
from rcdnet_desktop.core.resources import resources_dir
from training import lexicon as lx
from training.lexicon_data import MISSING, descriptor_labels

ROW = {"shape": "round", "margin": "circumscribed", "echogenicity": "anechoic",
       "posterior_features": "combined", "calcifications": "in a mass"}


def test_rare_classes_are_merged_or_left_out():
    lab = descriptor_labels(ROW)
    assert lab["shape"] == DESCRIPTORS["shape"].index("oval or round")
    assert lab["margin"] == 0 and lab["margin spiculated"] == 0
    assert DESCRIPTORS["echo pattern"][lab["echo pattern"]].startswith("other")
    assert lab["posterior features"] == MISSING  # combined: left out
    assert DESCRIPTORS["calcifications"][lab["calcifications"]] == "present"


def test_margin_subtypes_are_multi_label():
    lab = descriptor_labels({**ROW, "margin": "not circumscribed - spiculated&angular&indistinct"})
    assert lab["margin"] == 1
    assert (lab["margin spiculated"], lab["margin angular"], lab["margin indistinct"],
            lab["margin microlobulated"]) == (1, 1, 1, 0)


def test_kappa_and_balanced_accuracy():
    y = np.array([0, 0, 0, 1])
    assert lx.kappa(y, y) == 1.0
    assert lx.kappa(y, np.zeros(4, int)) == 0.0  # the majority baseline
    assert lx.balanced_accuracy(y, np.zeros(4, int)) == 0.5
    assert lx.balanced_accuracy(y, np.array([0, 0, 1, 1])) == pytest.approx((2 / 3 + 1) / 2)


def _synthetic(n: int, seed: int, informative: bool):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    feats = rng.gamma(2.0, 1.0, (n, 12))
    if informative:
        feats[np.arange(n), y] += 6.0
    return feats, y


def test_a_learnable_descriptor_is_learned_and_shown():
    xt, yt = _synthetic(90, 0, True)
    xv, yv = _synthetic(60, 1, True)
    mean, scale = lx.standardiser(xt)
    w, b = lx.fit_head((lx.transform(xt) - mean) / scale, yt, 3, 0.01)
    pred = lx.predict_proba((lx.transform(xv) - mean) / scale, w, b).argmax(axis=1)
    m = lx.measure(yv, pred, majority=0, k=3, n_boot=200)
    assert m["accuracy"]["value"] > 0.9 and m["shown"]
    assert m["baseline"]["kappa"] == 0.0 and m["baseline"]["balanced_accuracy"] == 1 / 3


def test_noise_is_not_shown():
    xt, yt = _synthetic(90, 0, False)
    xv, yv = _synthetic(60, 1, False)
    labels = {n: np.full(len(yt), MISSING) for n in DESCRIPTORS}
    labels["posterior features"] = yt
    vlabels = {n: np.full(len(yv), MISSING) for n in DESCRIPTORS}
    vlabels["posterior features"] = yv
    arrays, entries = lx.fit_all(xt, labels, xv, vlabels, n_boot=200)
    assert [e["name"] for e in entries] == ["posterior features"]
    assert entries[0]["shown"] is False
    assert arrays["w0"].shape == (3, 12) and arrays["mean"].shape == (12,)


def test_choose_lambda_prefers_strong_regularisation_on_noise():
    xt, yt = _synthetic(60, 2, False)
    x = (lx.transform(xt) - lx.standardiser(xt)[0]) / lx.standardiser(xt)[1]
    assert lx.choose_lambda(x, yt, 3, lambdas=(1e-4, 1.0)) == 1.0


def _write_site(root: Path, n: int = 40) -> None:
    """A BrEaST-like site: images with a bright or dark blob, masks, the descriptor manifest."""
    import cv2

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        cls = ("benign", "malignant")[i % 2]
        img = rng.integers(40, 90, (160, 200), dtype=np.uint8)
        mask = np.zeros_like(img)
        cv2.ellipse(mask, (100, 80), (40, 25), 0, 0, 360, 255, -1)
        img[mask > 0] = 20 if i % 2 else 200
        (root / cls).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / cls / f"case{i:03d}.png"), img)
        cv2.imwrite(str(root / cls / f"case{i:03d}_mask.png"), mask)
        rows.append({"file": f"{cls}/case{i:03d}.png", "cls": cls, "dropped": "",
                     "shape": "irregular" if i % 2 else "oval",
                     "margin": ("not circumscribed - spiculated&indistinct" if i % 2
                                else "circumscribed"),
                     "echogenicity": ("hypoechoic", "heterogeneous", "anechoic")[i % 3],
                     "posterior_features": ("no", "shadowing", "enhancement")[i % 3],
                     "calcifications": "no"})
    with (root / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with (root.parent / "split.csv").open("w", newline="") as fh:
        fh.write("path,label,group,split,site\n")
        for i, r in enumerate(rows):
            fh.write(f"{r['file']},{r['cls']},{i},{'train' if i < 28 else 'val'},site\n")


def test_the_command_writes_verified_heads_into_the_bundle(tmp_path, monkeypatch):
    monkeypatch.setattr(lx, "N_BOOT", 100)
    bundle = tmp_path / "bundle"
    shutil.copytree(resources_dir() / "model", bundle)
    (bundle / "lexicon.npz").unlink()
    site = tmp_path / "data" / "site"
    _write_site(site)
    report = lx.run(bundle, site, tmp_path / "data" / "split.csv", [], tmp_path / "out",
                    cache_dir=tmp_path / "cache", progress=False)
    from rcdnet_desktop.core.model.card import CARD_FILE, ModelCard

    card = ModelCard.read(bundle / CARD_FILE)
    assert card.lexicon["fitted_on"] == {"site": {"train": 28, "val": 12,
                                                  "one_image_per_patient": True}}
    lex = load_lexicon(bundle, card.lexicon)
    assert lex is not None
    names = [e["name"] for e in report["descriptors"]]
    assert "shape" in names and "calcifications" not in names  # one class only: left out
    text = (tmp_path / "out" / "lexicon.md").read_text()
    assert "| shape |" in text and "kappa" in text
