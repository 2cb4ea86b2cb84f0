"""Re-estimating normalisation statistics on a site's own unlabelled images: does it help?

A site profile could carry statistics measured on the hospital's unlabelled images, so that the
network sees that hospital's images the way it saw the training sites'. Two ways are measured:

* **batch-norm statistics** (AdaBN: Li et al., Pattern Recognition 80 (2018) 109-117): every
  batch-norm layer's running mean and variance are replaced by those of the site's own views
  (the whole images and the localiser's lesion boxes, as the app classifies them);
* **input statistics**: the preprocessed pixels' mean and standard deviation of the site's
  views are mapped onto the training images' before the network's fixed normalisation.

Each is cross-fitted by patient: a site's patients are split into two halves (one patient
never on both sides), the statistics are estimated on one half's images (labels unused) and
applied to the other's, and the other way round, so no image is classified with statistics it
contributed to. The unchanged model on the same images is the reference; differences are paired
(both on the same bootstrap draws of patients or groups). The temperature and cut-off are the
model card's, never refitted: the question is whether the statistics alone travel better.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rcdnet_desktop.core.metrics import binary_metrics, bootstrap_ci, ece, softmax
from rcdnet_desktop.core.preprocess import PreprocessConfig, normalise

from .augment import eval_view
from .cache import CachedImage
from .evaluate import auto_items

METHODS = ("none", "batch_norm", "input")
N_BOOT = 2000


def views(items: Sequence[CachedImage], config: PreprocessConfig, margin: float) -> np.ndarray:
    """uint8 (2N, 224, 224): each item's whole image, then its box view (whole when no box)."""
    whole = [eval_view(it.grey, None, "whole", config, margin) for it in items]
    box = [eval_view(it.grey, it.box, "roi" if it.box is not None else "whole", config, margin)
           for it in items]
    return np.stack(whole + box)


def batch(grey: np.ndarray, config: PreprocessConfig, shift=None) -> torch.Tensor:
    """Normalised float tensor; ``shift`` = (site mean, site std, reference mean, reference std)
    in grey levels maps the site's pixel statistics onto the reference's first."""
    g = grey.astype(np.float32)
    if shift is not None:
        m, s, rm, rs = shift
        g = np.clip((g - m) / s * rs + rm, 0, 255)
    return torch.from_numpy(np.stack([normalise(v, config) for v in g]))


def adapted_batch_norm(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> nn.Module:
    """A copy of ``model`` whose batch-norm running statistics are those of ``x`` (cumulative
    average of the batches' statistics; weights and biases unchanged)."""
    adapted = copy.deepcopy(model).eval()
    bns = [m for m in adapted.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: every batch counts the same
        bn.train()
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            adapted(x[s:s + batch_size])
    return adapted.eval()


def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([model(x[s:s + batch_size]) for s in range(0, len(x), batch_size)]
                         ).numpy()


def halves(groups: Sequence) -> np.ndarray:
    """Boolean mask of the second half of the groups (every other group in sorted order)."""
    codes = sorted(set(groups), key=str)
    second = {c for i, c in enumerate(codes) if i % 2 == 1}
    return np.array([g in second for g in groups])


def site_logits(model: nn.Module, items: Sequence[CachedImage], groups: Sequence,
                config: PreprocessConfig, margin: float, reference: tuple[float, float]
                ) -> dict[str, dict[str, np.ndarray]]:
    """``method -> mode -> logits (N, 2)`` for modes whole, auto and fusion, cross-fitted."""
    n = len(items)
    out = {m: {k: np.zeros((n, 2), np.float32) for k in ("whole", "auto")} for m in METHODS}
    second = halves(groups)
    for target in (second, ~second):
        idx = np.flatnonzero(target)
        src = np.flatnonzero(~target)
        if len(idx) == 0:
            continue
        tgt_views = views([items[i] for i in idx], config, margin)
        src_views = views([items[i] for i in src], config, margin)
        shift = (float(src_views.mean()), float(src_views.std()), *reference)
        x = batch(tgt_views, config)
        runs = {
            "none": (model, x),
            "batch_norm": (adapted_batch_norm(model, batch(src_views, config)), x),
            "input": (model, batch(tgt_views, config, shift)),
        }
        for method, (net, x) in runs.items():
            lg = logits(net, x)
            out[method]["whole"][idx] = lg[:len(idx)]
            out[method]["auto"][idx] = lg[len(idx):]
    for m in METHODS:
        out[m]["fusion"] = (out[m]["whole"] + out[m]["auto"]) / 2
    return out


def _measures(y, lg, temperature, threshold) -> dict:
    prob = softmax(lg, temperature)
    m = binary_metrics(y, prob[:, 1], threshold)
    return {"auc": m["auc"], "sensitivity": m["recall"], "specificity": m["specificity"],
            "ece": ece(y, prob)}


def _against_none(y, pair, temperature, threshold) -> dict:
    """A method's measures and their differences from ``none``'s; ``pair`` holds the method's
    logits in columns 0-1 and ``none``'s in 2-3 (so one bootstrap draw resamples both)."""
    a = _measures(y, pair[:, :2], temperature, threshold)
    b = _measures(y, pair[:, 2:], temperature, threshold)
    return {f"{k}_minus_none": a[k] - b[k] for k in a} | a


def compare(y, groups, by_method: dict, temperature: float, threshold: float,
            seed: int = 0, n_boot: int = N_BOOT) -> dict:
    """Each method's AUC, sensitivity, specificity and ECE with 95% CIs, and its paired
    differences from ``none``, resampled by group."""
    measure = partial(_against_none, temperature=temperature, threshold=threshold)
    res: dict = {}
    for mode, ref in by_method["none"].items():
        res[mode] = {}
        for method, lgs in by_method.items():
            pair = np.concatenate([lgs[mode], ref], axis=1)
            point = measure(y, pair)
            ci = bootstrap_ci(y, pair, measure, groups=np.asarray(groups), n_boot=n_boot,
                              seed=seed)
            plain = [k for k in point if not k.endswith("_minus_none")]
            keep = plain + ([f"{k}_minus_none" for k in plain] if method != "none" else [])
            res[mode][method] = {k: {"value": point[k], "ci": ci.get(k)} for k in keep}
    return res


def reference_statistics(items: Sequence[CachedImage], config: PreprocessConfig,
                         margin: float) -> tuple[float, float]:
    """Mean and standard deviation (grey levels) of the training images' views."""
    v = views(items, config, margin)
    return float(v.mean()), float(v.std())


def run(model, localiser, card, train_items, sites: dict[str, tuple[list, list]],
        out_dir: Path, seed: int = 0, n_boot: int = N_BOOT) -> dict:
    """Measure every method at every site; ``sites``: name -> (items, groups). Writes
    ``site_norm.json`` and ``site_norm.md`` to ``out_dir``."""
    config = card.preprocessing
    margin = card.roi_margin
    out_dir = Path(out_dir)
    min_conf = card.localiser.get("min_confidence", 0.5)
    reference = reference_statistics(train_items, config, margin)
    report = {"reference_grey_mean_std": reference, "temperature": card.temperature,
              "threshold": card.operating_point["suspicious_threshold"], "sites": {}}
    for name, (items, groups) in sites.items():
        auto, _ = auto_items(items, localiser, config, min_conf, groups)
        auto = [replace(it, box=a.box) for it, a in zip(items, auto, strict=True)]
        y = np.array([it.label for it in items])
        cached = out_dir / f"logits_{len(report['sites'])}.npz"
        if cached.exists():  # a rerun of the report reuses the forward passes
            flat = np.load(cached)
            lg = {m: {k: flat[f"{m}/{k}"] for k in ("whole", "auto", "fusion")} for m in METHODS}
        else:
            lg = site_logits(model, auto, groups, config, margin, reference)
            out_dir.mkdir(parents=True, exist_ok=True)
            np.savez(cached, **{f"{m}/{k}": v for m, d in lg.items() for k, v in d.items()})
        report["sites"][name] = {"images": len(items), "groups": len(set(groups)),
                                 "modes": compare(y, groups, lg, card.temperature,
                                                  report["threshold"], seed, n_boot)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "site_norm.json").write_text(json.dumps(report, indent=1, default=float))
    (out_dir / "site_norm.md").write_text(markdown(report))
    return report


def _fmt(entry) -> str:
    v, ci = entry["value"], entry.get("ci")
    return f"{v:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f"{v:+.3f}"


def _vs_none(r: dict, key: str) -> str:
    return _fmt(r[key]) if key in r else "reference"


def markdown(report: dict) -> str:
    lines = ["| site | input | method | AUC | AUC minus none | sensitivity | sensitivity minus "
             "none | specificity | ECE | ECE minus none |", "|---" * 10 + "|"]
    for site, s in report["sites"].items():
        for mode, methods in s["modes"].items():
            for method, r in methods.items():
                lines.append(
                    f"| {site} | {mode} | {method} | {r['auc']['value']:.3f} | "
                    f"{_vs_none(r, 'auc_minus_none')} | {r['sensitivity']['value']:.3f} | "
                    f"{_vs_none(r, 'sensitivity_minus_none')} | {r['specificity']['value']:.3f} | "
                    f"{r['ece']['value']:.3f} | {_vs_none(r, 'ece_minus_none')} |")
    return "\n".join(lines) + "\n"


def measure(bundle: Path | None, data: Sequence[Path], split_csv: Path,
            external: Sequence[Path], out_dir: Path, cache_dir: Path | None = None,
            seed: int = 0, n_boot: int = N_BOOT, progress: bool = True) -> dict:
    """Load the bundle (torch), read the sites and :func:`run`: each training site's validation
    side and each external site are measured on their own."""
    from rcdnet_desktop.core.model.bundle import load_localiser, load_model

    from .pipeline import default_cache_dir, prepare

    torch.set_num_threads(1)
    model, card = load_model(bundle)
    localiser = load_localiser(bundle, card)
    cache_dir = cache_dir or default_cache_dir()
    prep = prepare(list(data), split_csv, cache_dir, seed, progress=progress)
    sites: dict[str, tuple[list, list]] = {}
    val, val_groups, val_sites = prep.subset("val"), prep.groups("val"), prep.sites("val")
    for name in sorted(set(val_sites)):
        keep = [i for i, s in enumerate(val_sites) if s == name]
        sites[f"{name} (internal validation)"] = ([val[i] for i in keep],
                                                  [val_groups[i] for i in keep])
    for site in external:
        ext = prepare([site], None, cache_dir, seed, progress=progress)
        sites[f"{Path(site).name} (external)"] = (ext.subset(None), ext.groups(None))
    return run(model.eval(), localiser, card, prep.subset("train"), sites, out_dir, seed,
               n_boot)
