from pathlib import Path

import numpy as np
import pytest
import torch
from synth_busi import TinyNet

from rcdnet_desktop.core.preprocess import PreprocessConfig
from training.augment import AugmentConfig, eval_view, train_view
from training.cache import load_all
from training.data import load_samples
from training.train import CHECKPOINT, TrainConfig, predict_logits, train

SMALL = PreprocessConfig(size=48)


def _items(busi):
    items, rep = load_all(load_samples(busi), None, progress=False)
    assert not rep.skipped
    return items


def _cfg(**kw):
    base = dict(epochs=2, batch_size=4, lr=1e-2, mixup_alpha=0.0, label_smoothing=0.0,
                roi_fraction=0.5, preprocess=SMALL, num_threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_views_match_inference_and_augment(busi):
    it = _items(busi)[0]
    rng = np.random.default_rng(0)
    v = train_view(it.grey, it.box, True, rng, AugmentConfig(), SMALL)
    assert v.shape == (48, 48) and v.dtype == np.uint8
    off = train_view(it.grey, it.box, True, rng, AugmentConfig(enabled=False), SMALL)
    assert np.array_equal(off, eval_view(it.grey, it.box, "roi", SMALL))
    # Without augmentation the view is padded by the run's margin, not a fixed one.
    wide = train_view(it.grey, it.box, True, rng, AugmentConfig(enabled=False), SMALL, 0.5)
    assert np.array_equal(wide, eval_view(it.grey, it.box, "roi", SMALL, 0.5))


@pytest.mark.parametrize("margin", [0.0, 0.2, 0.35])
def test_training_roi_view_is_the_engines_crop(engine, busi, margin):
    """For the same box and margin, training's lesion-box view is exactly what the engine
    classifies (same padding and cropping function, same preprocessing)."""
    from dataclasses import replace

    from rcdnet_desktop.core.model.engine import InferenceEngine
    from rcdnet_desktop.core.preprocess import normalise, pad_roi

    eng = InferenceEngine(model=engine.model, card=replace(engine.card, roi_margin=margin),
                          device="cpu")
    config = eng.card.preprocessing
    it = _items(busi)[0]
    h, w = it.grey.shape
    for box in (it.box, (w - 12, 1, 12, 15), (0, h - 9, 20, 9)):  # inside, at the edges
        prepared = eng.prepare(it.grey, roi=box, auto_box=False)
        assert prepared.roi == pad_roi(box, it.grey.shape, margin)
        view = eval_view(it.grey, box, "roi", config, margin)
        assert np.array_equal(normalise(view, config), prepared.tensor)


def test_tiny_model_overfits(busi, tiny_net, tmp_path):
    items = _items(busi)[:8]
    cfg = _cfg(epochs=40, lr=3e-2, augment=AugmentConfig(enabled=False), roi_fraction=0.0)
    model, hist = train(items, [], cfg, tmp_path, progress=False, model=tiny_net)
    logits = predict_logits(model, items, "whole", SMALL)
    y = np.array([i.label for i in items])
    assert hist[-1]["train_loss"] < 0.5 * hist[0]["train_loss"]
    assert (logits.argmax(1) == y).all()


def test_resume_matches_uninterrupted_run(busi, tmp_path):
    items = _items(busi)
    cfg = _cfg(epochs=3, mixup_alpha=0.2, label_smoothing=0.1)
    torch.manual_seed(0)
    full, hist_full = train(items[:8], items[8:], cfg, tmp_path / "a", progress=False,
                            model=TinyNet())
    # The same run interrupted after its first epoch's checkpoint, then resumed.
    c1 = _cfg(epochs=3, mixup_alpha=0.2, label_smoothing=0.1)
    _, h1 = _train_epochs(items, c1, tmp_path / "c", stop_after=1)
    assert len(h1) == 1
    ckpt = torch.load(tmp_path / "c" / CHECKPOINT, weights_only=False)
    assert ckpt["epoch"] == 1
    torch.manual_seed(123)  # a different global state must not matter after resuming
    resumed, hist = train(items[:8], items[8:], c1, tmp_path / "c", resume=True,
                          progress=False, model=TinyNet())
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert hist[-1]["train_loss"] == hist_full[-1]["train_loss"]


def _train_epochs(items, cfg, out, stop_after):
    """Run the same 3-epoch schedule but stop after ``stop_after`` epochs (an interruption)."""
    import training.train as tr

    class Stop(Exception):
        pass

    saved = tr.save_checkpoint
    count = {"n": 0}

    def save_then_maybe_stop(*a, **k):
        saved(*a, **k)
        count["n"] += 1
        if count["n"] >= stop_after:
            raise Stop

    tr.save_checkpoint = save_then_maybe_stop
    torch.manual_seed(0)
    try:
        train(items[:8], items[8:], cfg, out, progress=False, model=TinyNet())
    except Stop:
        pass
    finally:
        tr.save_checkpoint = saved
    return None, torch.load(out / CHECKPOINT, weights_only=False)["history"]


# Slow: two processes under torchrun. It failed once, unexplained, in about a dozen runs (the
# launcher reported a child failure); the default suite must not depend on local ports.
@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_one_model(busi, tmp_path):
    """The same command under torchrun: DDP over gloo, one writer, a bundle that loads."""
    import json
    import os
    import subprocess
    import sys

    from rcdnet_desktop.core.model.bundle import load_model

    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "training.cli", "train", "--data", str(busi), "--out", str(out),
           "--epochs", "2", "--batch-size", "8", "--input-size", "64", "--threads", "1",
           "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    errors = [ln for ln in done.stderr.splitlines() if "Error" in ln or "error" in ln]
    assert done.returncode == 0, "\n".join(errors[:20]) + "\n...\n" + done.stderr[-2000:]
    log = (out / "train.log").read_text()
    assert "distributed: 2 processes (gloo), 4 images per process per step" in log
    assert log.count("skipped unreadable") == 1  # rank 1 does not write the run's files
    assert len(json.loads((out / "history.json").read_text())) == 2
    model, card = load_model(out / "bundle")
    assert card.untrained is False and card.preprocessing.size == 64


def test_lesion_box_views_use_the_localisers_box_for_their_share(monkeypatch):
    from dataclasses import replace

    import training.train as tr
    from training.cache import CachedImage
    from training.data import Sample

    seen = []
    monkeypatch.setattr(tr, "train_view", lambda g, box, use_roi, *a: seen.append(
        (box, use_roi)) or g[:8, :8])
    grey = np.zeros((40, 40), np.uint8)
    it = CachedImage(Sample(Path("x.png"), 1), grey, None, (1, 1, 5, 5), found_box=(9, 9, 7, 7))
    for share, expected in ((0.0, {(1, 1, 5, 5)}), (1.0, {(9, 9, 7, 7)}),
                            (0.5, {(1, 1, 5, 5), (9, 9, 7, 7)})):
        seen.clear()
        ds = tr.TrainSet([it] * 40, tr.TrainConfig(roi_fraction=1.0,
                                                   localiser_box_share=share))
        for i in range(40):
            ds[i]
        assert {b for b, _ in seen} == expected
    seen.clear()
    tr.TrainSet([replace(it, found_box=None)], tr.TrainConfig(roi_fraction=1.0,
                                                              localiser_box_share=1.0))[0]
    assert seen == [((1, 1, 5, 5), True)]  # nothing found: the mask's box
