"""Train and measure the lesion localiser (segmentation of the lesion masks).

Recipe: BCE + soft Dice on the mask at the input size, Adam (lr 1e-3, weight decay 1e-4), cosine
annealing, batch 16, ImageNet-initialised encoder. Views are whole images, augmented with the
generic augmentation (:data:`training.augment.GENERIC`, geometry applied to image and mask alike),
preprocessed by the one preprocessing path. Like the classifier's loop, every random draw derives
from (seed, epoch[, index]) and a checkpoint is written after every epoch, so ``--resume``
continues the run exactly.

Measured per image (:func:`measure`): Dice of the thresholded map at the input size, box IoU of
the proposed box (:func:`~rcdnet_desktop.core.lesion.find_lesion`) against the mask's box in
image pixels, and whether the box hits the lesion (IoU >= 0.5); an image where nothing is found
counts as a miss with IoU 0.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rcdnet_desktop.core.lesion import box_iou, find_lesion
from rcdnet_desktop.core.model.localiser import LesionLocaliser, lesion_probability
from rcdnet_desktop.core.preprocess import PreprocessConfig, normalise

from .augment import GENERIC, AugmentConfig, localiser_view
from .cache import CachedImage
from .train import (
    CHECKPOINT,
    FINAL_WEIGHTS,
    HISTORY,
    load_checkpoint,
    recipe_dict,
    save_checkpoint,
    seed_everything,
)

log = logging.getLogger(__name__)
HIT_IOU = 0.5


@dataclass
class LocaliserConfig:
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    num_threads: int = 1
    pretrained: bool = True
    val_every: int = 2
    max_steps_per_epoch: int | None = None  # tests only
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(**GENERIC))
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def to_dict(self) -> dict:
        return recipe_dict(self)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    s = pred.sum() + truth.sum()
    return float(2 * (pred & truth).sum() / s) if s else 1.0


def predict_maps(model: LesionLocaliser, items: Sequence[CachedImage], config: PreprocessConfig,
                 batch_size: int = 16) -> np.ndarray:
    """(N, s, s) lesion probabilities of the whole-image views."""
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(items), batch_size):
        x = torch.from_numpy(np.stack([normalise(localiser_view(it.grey, None, None,
                                                                AugmentConfig(), config)[0],
                                                 config) for it in items[s:s + batch_size]]))
        out.append(lesion_probability(model, x))
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, config.size, config.size), np.float32)


def measure(probs: np.ndarray, items: Sequence[CachedImage], config: PreprocessConfig,
            min_confidence: float = 0.0) -> dict:
    """Per-image Dice, box IoU, hit and confidence of the localiser's maps (images with masks)."""
    rows = {"dice": [], "box_iou": [], "hit": [], "found": [], "confidence": []}
    for p, it in zip(probs, items, strict=True):
        if it.mask is None:
            continue
        _, m = localiser_view(it.grey, it.mask, None, AugmentConfig(), config)
        rows["dice"].append(dice(p >= 0.5, m))
        f = find_lesion(p, it.grey.shape)
        iou = box_iou(f.box.as_tuple(), it.box) if f is not None else 0.0
        rows["box_iou"].append(iou)
        rows["hit"].append(iou >= HIT_IOU)
        rows["found"].append(f is not None)
        rows["confidence"].append(f.confidence if f is not None else 0.0)
    return with_min_confidence({k: np.asarray(v, dtype=float) for k, v in rows.items()},
                               min_confidence)


def with_min_confidence(per_image: dict, min_confidence: float) -> dict:
    """The measures of :func:`measure` as they are once findings below ``min_confidence`` are
    dropped (``find_lesion`` keeps the same region and only refuses it below the minimum)."""
    kept = per_image["found"].astype(bool) & (per_image["confidence"] >= min_confidence)
    return {**per_image, "found": kept.astype(float),
            **{k: np.where(kept, per_image[k], 0.0) for k in ("box_iou", "hit", "confidence")}}


def summarise(per_image: dict, groups: Sequence | None = None, n_boot: int = 2000,
              seed: int = 0) -> dict:
    """Means of the per-image measures; with ``groups``, 95% CIs resampling whole groups."""
    out = {"n": int(len(per_image["dice"])),
           **{f"mean_{k}": float(np.mean(v)) if len(v) else float("nan")
              for k, v in per_image.items()}}
    if groups is not None and len(per_image["dice"]):
        g = np.asarray(groups)
        clusters = [np.nonzero(g == u)[0] for u in np.unique(g)]
        rng = np.random.default_rng(seed)
        draws = {k: [] for k in ("dice", "box_iou", "hit")}
        for _ in range(n_boot):
            idx = np.concatenate([clusters[i] for i in rng.integers(0, len(clusters),
                                                                    len(clusters))])
            for k in draws:
                draws[k].append(float(np.mean(per_image[k][idx])))
        for k, v in draws.items():
            out[f"mean_{k}_ci95"] = [float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))]
    return out


def validation_summary(model: LesionLocaliser, items: Sequence[CachedImage],
                       sites: Sequence[str], config: PreprocessConfig,
                       min_confidence: float = 0.0) -> dict:
    """``{"val": pooled summary, "val_<site>": per-site summary}`` of one prediction pass."""
    per = measure(predict_maps(model, items, config), items, config, min_confidence)
    with_mask = np.array([s for s, it in zip(sites, items, strict=True) if it.mask is not None])
    out = {"val": summarise(per)}
    for site in sorted(set(with_mask.tolist())):
        sel = with_mask == site
        out[f"val_{site}"] = summarise({k: v[sel] for k, v in per.items()})
    return out


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    soft_dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + soft_dice.mean()


def train_localiser(train_items: Sequence[CachedImage], val_items: Sequence[CachedImage],
                    val_sites: Sequence[str], cfg: LocaliserConfig, out_dir: Path,
                    resume: bool = False,
                    model: LesionLocaliser | None = None) -> tuple[LesionLocaliser, list[dict]]:
    """Train on images with masks; validation Dice/IoU/hit per site every ``val_every`` epochs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    train_items = [it for it in train_items if it.mask is not None]
    model = model or LesionLocaliser(pretrained=cfg.pretrained)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    history: list[dict] = []
    start = 0
    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, model, opt, sched)
        history, start = ckpt["history"], ckpt["epoch"]
        log.info("resumed from %s at epoch %d", ckpt_path, start)
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        torch.manual_seed(cfg.seed * 100003 + epoch)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train_items))
        n_batches = max(1, len(order) // cfg.batch_size)
        if cfg.max_steps_per_epoch:
            n_batches = min(n_batches, cfg.max_steps_per_epoch)
        model.train()
        total = 0.0
        for b in range(n_batches):
            xs, ms = [], []
            for i in order[b * cfg.batch_size:(b + 1) * cfg.batch_size]:
                rng = np.random.default_rng([cfg.seed, epoch, int(i)])
                it = train_items[i]
                g, m = localiser_view(it.grey, it.mask, rng, cfg.augment, cfg.preprocess)
                xs.append(torch.from_numpy(normalise(g, cfg.preprocess)))
                ms.append(torch.from_numpy(m.astype(np.float32))[None])
            loss = _loss(model(torch.stack(xs)), torch.stack(ms))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        sched.step()
        rec = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"],
               "train_loss": total / n_batches}
        if val_items and ((epoch + 1) % max(cfg.val_every, 1) == 0 or epoch + 1 == cfg.epochs):
            rec.update(validation_summary(model, val_items, val_sites, cfg.preprocess))
        rec["seconds"] = time.time() - t0
        history.append(rec)
        save_checkpoint(ckpt_path, model, opt, sched, None, epoch + 1, history, cfg)
        (out_dir / HISTORY).write_text(json.dumps(history, indent=1))
        log.info("epoch %s", json.dumps(rec, default=float))
    torch.save(model.state_dict(), out_dir / FINAL_WEIGHTS)
    return model, history
