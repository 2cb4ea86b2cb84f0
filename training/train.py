"""The training loop: the paper's recipe, seeded, checkpointed every epoch, resumable.

Recipe defaults (paper): cross-entropy with label smoothing 0.1, Adam lr 1e-3 with weight decay
1e-4, cosine annealing over the epochs, batch 32, 30 epochs, Mixup, ImageNet-initialised backbone.

Determinism: every random draw is derived from (seed, epoch[, index]) - the augmentation of an
image, the shuffling, the Mixup draws and torch's global generator (dropout, drop-connect) are
reseeded at the start of every epoch. A run resumed from the checkpoint of epoch k therefore
continues exactly as the uninterrupted run would (on CPU, where deterministic algorithms are
enforced). On CUDA the run uses mixed precision (bfloat16 where supported, else float16 with a
gradient scaler); under ``torchrun`` (WORLD_SIZE > 1) it trains with DistributedDataParallel and a
DistributedSampler, and rank 0 alone evaluates and writes files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rcdnet_desktop.core.preprocess import DEFAULT_ROI_MARGIN, PreprocessConfig, normalise

from .augment import AugmentConfig, eval_view, mixup, train_view
from .cache import CachedImage
from .models import build_model

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
FINAL_WEIGHTS = "model_state.pt"
HISTORY = "history.json"


@dataclass
class TrainConfig:
    """Every option of the recipe, with the paper's value as default where the paper gives one."""

    arch: str = "rcdnet"
    pretrained: bool = True
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.2  # paper: Mixup; alpha not given, 0.2 is the common choice
    roi_fraction: float = 0.5  # share of training views that are padded lesion boxes
    roi_margin: float = DEFAULT_ROI_MARGIN  # the card's margin: ROI views at inference and eval
    localiser_box_share: float = 0.0  # of lesion-box views, the share on the localiser's box
    seed: int = 0
    num_threads: int = 2
    device: str = "auto"
    amp: bool = True
    max_steps_per_epoch: int | None = None  # tests only
    val_every: int = 1  # validation curves every N epochs (and always after the last)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def to_dict(self) -> dict:
        return recipe_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        aug = d.pop("augment", {})
        pre = d.pop("preprocess", {})
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        return cls(**d, augment=AugmentConfig(**aug), preprocess=PreprocessConfig.from_dict(pre))


def recipe_dict(cfg) -> dict:
    """A recipe dataclass (with ``augment`` and ``preprocess``) as JSON-ready data."""
    d = asdict(cfg)
    d["augment"] = cfg.augment.to_dict()
    d["preprocess"] = cfg.preprocess.to_dict()
    return d


class TrainSet(torch.utils.data.Dataset):
    """Augmented views; the randomness of item i in epoch e depends only on (seed, e, i)."""

    def __init__(self, items: Sequence[CachedImage], cfg: TrainConfig) -> None:
        self.items = list(items)
        self.cfg = cfg
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        rng = np.random.default_rng([self.cfg.seed, self.epoch, i])
        use_roi = it.box is not None and rng.random() < self.cfg.roi_fraction
        box = it.box
        # Draw only when the option is on, so runs without it keep their random sequence.
        if use_roi and self.cfg.localiser_box_share > 0 and it.found_box is not None \
                and rng.random() < self.cfg.localiser_box_share:
            box = it.found_box  # what the app will feed the model when nobody draws a box
        g = train_view(it.grey, box, use_roi, rng, self.cfg.augment, self.cfg.preprocess,
                       self.cfg.roi_margin)
        return torch.from_numpy(normalise(g, self.cfg.preprocess)), it.label


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may use it
    torch.manual_seed(seed)


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def predict_logits(model: nn.Module, items: Sequence[CachedImage], mode: str,
                   config: PreprocessConfig, margin: float = DEFAULT_ROI_MARGIN,
                   batch_size: int = 32, device: torch.device | None = None, progress: bool = False,
                   tta: bool = False) -> np.ndarray:
    """Logits (N, 2) for the inference views ("whole" or "roi") of ``items``, in eval mode.

    ``tta``: the mean of each view's logits and its horizontal mirror's.
    """
    from tqdm import tqdm

    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for s in tqdm(range(0, len(items), batch_size), desc=f"predict {mode}", disable=not progress,
                  leave=False):
        batch = torch.from_numpy(np.stack([
            normalise(eval_view(it.grey, it.box, mode, config, margin), config)
            for it in items[s:s + batch_size]])).to(device)
        with _autocast(device, device.type == "cuda"):
            lg = model(batch).float()
            if tta:
                lg = (lg + model(torch.flip(batch, dims=[3])).float()) / 2
            out.append(lg.cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 2), dtype=np.float32)


def _val_metrics(model, items, cfg, device) -> dict:
    from sklearn.metrics import roc_auc_score

    res = {}
    y = np.array([it.label for it in items])
    for mode in ("whole", "roi"):
        logits = predict_logits(model, items, mode, cfg.preprocess, cfg.roi_margin,
                                cfg.batch_size, device)
        lt = torch.from_numpy(logits)
        res[f"val_loss_{mode}"] = float(F.cross_entropy(lt, torch.from_numpy(y)))
        res[f"val_acc_{mode}"] = float((logits.argmax(1) == y).mean())
        p = torch.softmax(lt, 1)[:, 1].numpy()
        res[f"val_auc_{mode}"] = float(roc_auc_score(y, p)) if len(set(y)) == 2 else float("nan")
        res[f"val_malignant_share_{mode}"] = float((logits.argmax(1) == 1).mean())
    return res


def _ddp_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def train(train_items: Sequence[CachedImage], val_items: Sequence[CachedImage],
          cfg: TrainConfig, out_dir: Path, resume: bool = False, progress: bool = True,
          model: nn.Module | None = None) -> tuple[nn.Module, list[dict]]:
    """Train and return (model, history). Writes the checkpoint and history into ``out_dir``.

    ``model`` overrides :func:`build_model` (tests pass a tiny network).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    world, rank, local = _ddp_info()
    distributed = world > 1
    device = select_device(cfg.device)
    if distributed:
        import torch.distributed as dist

        if device.type == "cuda":
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    main_proc = rank == 0
    if device.type == "cpu":
        torch.set_num_threads(cfg.num_threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    seed_everything(cfg.seed)

    if model is None:
        model, info = build_model(cfg.arch, cfg.pretrained)
        log.info("model %s", info)
    model.to(device)
    net: nn.Module = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[local] if device.type == "cuda" else None)

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported()) \
        if device.type == "cuda" else None

    history: list[dict] = []
    start_epoch = 0
    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, model, opt, sched, scaler)
        history, start_epoch = ckpt["history"], ckpt["epoch"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])  # noqa: NPY002
        random.setstate(ckpt["rng"]["python"])
        if main_proc:
            log.info("resumed from %s at epoch %d", ckpt_path, start_epoch)

    dataset = TrainSet(train_items, cfg)
    per_rank_batch = max(1, cfg.batch_size // world)
    if distributed and main_proc:
        import torch.distributed as dist

        log.info("distributed: %d processes (%s), %d images per process per step", world,
                 dist.get_backend(), per_rank_batch)
    sampler = None
    if distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, shuffle=True, seed=cfg.seed, drop_last=True)

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        dataset.epoch = epoch
        torch.manual_seed(cfg.seed * 100003 + epoch)  # dropout / drop-connect of this epoch
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
            order = list(sampler)
        else:
            order = torch.randperm(len(dataset), generator=gen).tolist()
        n_batches = len(order) // per_rank_batch if len(order) >= per_rank_batch else 1
        if cfg.max_steps_per_epoch:
            n_batches = min(n_batches, cfg.max_steps_per_epoch)
        net.train()
        tot_loss, tot_correct, tot_n = 0.0, 0.0, 0
        bar = tqdm(range(n_batches), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (progress and main_proc), leave=False)
        for b in bar:
            idx = order[b * per_rank_batch:(b + 1) * per_rank_batch]
            xs, ys = zip(*(dataset[i] for i in idx), strict=True)
            x = torch.stack(xs).to(device)
            y = torch.tensor(ys, device=device)
            target = F.one_hot(y, 2).float()
            x, target = mixup(x, target, cfg.mixup_alpha, gen)
            with _autocast(device, use_amp):
                logits = net(x)
                loss = F.cross_entropy(logits.float(), target,
                                       label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            if scaler is not None and scaler.is_enabled():
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            tot_loss += float(loss.detach()) * len(idx)
            tot_correct += float((logits.argmax(1) == target.argmax(1)).sum())
            tot_n += len(idx)
            bar.set_postfix(loss=f"{tot_loss / tot_n:.3f}")
        sched.step()
        rec = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"],
               "train_loss": tot_loss / max(tot_n, 1), "train_acc": tot_correct / max(tot_n, 1)}
        if main_proc:
            if val_items and ((epoch + 1) % max(cfg.val_every, 1) == 0
                              or epoch + 1 == cfg.epochs):
                rec.update(_val_metrics(model, val_items, cfg, device))
            rec["seconds"] = time.time() - t0
            history.append(rec)
            save_checkpoint(ckpt_path, model, opt, sched, scaler, epoch + 1, history, cfg)
            (out_dir / HISTORY).write_text(json.dumps(history, indent=1))
            log.info("epoch %s", json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                             for k, v in rec.items()}))
        if distributed:
            torch.distributed.barrier()

    if main_proc:
        torch.save(model.state_dict(), out_dir / FINAL_WEIGHTS)
    if distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return model, history


def load_checkpoint(path: Path, model, opt, sched, scaler=None) -> dict:
    """Restore model, optimizer, scheduler (and scaler) from a checkpoint; return the rest.

    The checkpoint is this run's own file (written by :func:`save_checkpoint`), not input
    from elsewhere, hence ``weights_only=False`` (it holds RNG states and the config).
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    return ckpt


def save_checkpoint(path: Path, model, opt, sched, scaler, epoch, history, cfg) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch, "history": history, "config": cfg.to_dict(),
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),  # noqa: NPY002
                "python": random.getstate()},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def nan_to_none(x):
    return None if isinstance(x, float) and math.isnan(x) else x
