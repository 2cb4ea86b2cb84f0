"""Site-shift augmentation: a re-exported scan keeps its lesion inside the moved box, depth gain
changes with depth, and the recipe names reach the training config."""

from __future__ import annotations

import numpy as np
import pytest

from rcdnet_desktop.core.preprocess import PreprocessConfig
from training.augment import SITE, AugmentConfig, reexport, train_view, vary_intensity
from training.cli import _config_from_args, build_parser


def _scan_with_lesion():
    img = np.full((300, 400), 60, np.uint8)
    img[100:140, 150:210] = 250  # the "lesion": a bright block at x 150-210, y 100-140
    return img, (150, 100, 60, 40)


@pytest.mark.parametrize("seed", range(40))
def test_the_moved_box_frames_the_lesion_in_the_re_exported_scan(seed):
    img, box = _scan_with_lesion()
    aug = AugmentConfig(**{**SITE, "export_jpeg": 0.0})
    out, (x, y, w, h) = reexport(img, np.random.default_rng(seed), aug, box)
    ys, xs = np.nonzero(out > 155)
    assert abs(xs.min() - x) <= 2 and abs(xs.max() + 1 - (x + w)) <= 2
    assert abs(ys.min() - y) <= 2 and abs(ys.max() + 1 - (y + h)) <= 2


def test_re_exports_differ_in_crop_depth_size_and_jpeg():
    img, box = _scan_with_lesion()
    aug = AugmentConfig(**SITE)
    shapes = {reexport(img, np.random.default_rng(s), aug, box)[0].shape for s in range(20)}
    assert len(shapes) == 20  # every copy another size
    # A shallower depth setting cuts rows from the bottom, never above the lesion's bottom edge.
    deep = AugmentConfig(**{**SITE, "export_keep": (1.0, 1.0), "export_depth": (0.5, 0.5),
                            "export_long_side": (400.0, 400.0), "export_aspect": (1.0, 1.0),
                            "export_jpeg": 0.0})
    out, (x, y, w, h) = reexport(img, np.random.default_rng(0), deep, box)
    assert out.shape == (150, 400) and (x, y, w, h) == (150, 100, 60, 40)


def test_depth_gain_changes_linearly_with_depth_about_the_middle():
    flat = np.full((200, 100), 100, np.uint8)
    gaps = []
    for seed in range(20):
        rows = vary_intensity(flat, np.random.default_rng(seed), AugmentConfig(tgc=0.5)).mean(1)
        slope, mid = np.polyfit(np.linspace(-0.5, 0.5, 200), rows, 1)
        assert abs(mid - 100) < 1 and abs(slope) <= 0.5 * 100 + 1
        gaps.append(abs(rows[0] - rows[-1]))
    assert max(gaps) > 30  # some draws change the gain strongly across the depth


def test_train_views_of_the_site_recipe_have_the_input_size():
    img, box = _scan_with_lesion()
    aug = AugmentConfig(**SITE)
    for seed in range(10):
        v = train_view(img, box, seed % 2 == 0, np.random.default_rng(seed), aug,
                       PreprocessConfig())
        assert v.shape == (224, 224) and v.dtype == np.uint8


def _config(*extra):
    args = build_parser().parse_args(["train", "--data", "d", "--split", "s.csv", "--out", "o",
                                      *extra])
    return _config_from_args(args)


def test_recipe_options_alone_and_together():
    assert _config().augment == AugmentConfig()
    assert _config("--augment", "site").augment.export == SITE["export"]
    assert _config("--box-shift", "0.15").augment.box_shift == 0.15
    both = _config("--augment", "site", "--box-shift", "0.2").augment
    assert both.box_shift == 0.2 and both.tgc == SITE["tgc"]
    assert _config("--arch", "rcdnet-lite2").arch == "rcdnet-lite2"
