import json

import numpy as np
import pytest

from rcdnet_desktop.core.preprocess import PreprocessConfig
from training.augment import GENERIC, AugmentConfig, localiser_view, train_view
from training.cache import load_all
from training.cli import main
from training.data import load_samples
from training.localiser import box_iou, dice


def test_localiser_view_moves_the_mask_with_the_image(busi):
    """Geometry is applied to image and mask alike: the bright benign lesion stays under it."""
    items, _ = load_all(load_samples(busi), None, progress=False)
    benign = [it for it in items if it.label == 0]
    aug = AugmentConfig(**{**GENERIC, "contrast": (1.0, 1.0), "brightness": 0.0,
                           "gamma": (1.0, 1.0), "speckle": 0.0, "blur": 0.0})
    for i, it in enumerate(benign):
        g, m = localiser_view(it.grey, it.mask, np.random.default_rng(i), aug,
                              PreprocessConfig(size=96, clahe_clip=0, median_kernel=0))
        assert g.shape == m.shape == (96, 96)
        if m.sum() > 20:  # lesion pixels are 200, background mostly darker
            assert g[m].mean() > g[~m].mean() + 40


def test_generic_augmentation_changes_intensity_paper_recipe_does_not():
    grey = np.tile(np.linspace(30, 220, 80, dtype=np.uint8), (60, 1))
    paper = AugmentConfig(rotation=0, scale=(1, 1), crop_scale=(1, 1), crop_ratio=(1, 1),
                          hflip=0)
    assert not paper.intensity and AugmentConfig(**GENERIC).intensity
    cfg = PreprocessConfig(size=64, clahe_clip=0, median_kernel=0)
    same = [train_view(grey, None, False, np.random.default_rng(s), paper, cfg) for s in (1, 2)]
    assert np.array_equal(same[0], same[1])
    gen = AugmentConfig(**{**GENERIC, "rotation": 0, "scale": (1, 1), "crop_scale": (1, 1),
                           "crop_ratio": (1, 1), "hflip": 0})
    views = [train_view(grey, None, False, np.random.default_rng(s), gen, cfg) for s in (1, 2)]
    assert not np.array_equal(views[0], views[1])


def test_box_iou_and_dice():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    a = np.zeros((4, 4), bool)
    a[:2] = True
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0


def test_cli_trains_the_localiser_resumably(busi, tmp_path):
    args = ["localiser", "--data", str(busi), "--out", str(tmp_path / "loc"), "--epochs", "2",
            "--batch-size", "4", "--max-steps-per-epoch", "1", "--val-every", "1",
            "--no-progress", "--cache-dir", str(tmp_path / "cache"), "--input-size", "64"]
    assert main(args[:6] + ["1"] + args[7:]) == 0  # one epoch, then resume to two
    assert main(args + ["--resume"]) == 0
    history = json.loads((tmp_path / "loc" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert 0 <= history[-1]["val"]["mean_dice"] <= 1 and history[-1]["val"]["n"] > 0
    assert "val_busi" in history[-1]
    assert (tmp_path / "loc" / "model_state.pt").stat().st_size > 1_000_000
