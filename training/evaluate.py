"""Evaluation: metrics with CIs, calibration, localisation of the heat maps, figures, reports.

Every figure is computed in the two input modes the app offers:

``whole``
    the whole image resized to the input size (what the app classifies with no box drawn);
``roi``
    the lesion mask's bounding box padded by the model card's ``roi_margin`` on every side
    (what the app classifies when the clinician draws a box around the lesion);
``auto`` (with a localiser)
    the localiser's box padded the same way, or the whole image where it finds no lesion with
    confidence (what the app classifies when nobody draws a box);
``fusion`` (with a localiser)
    the mean of the ``whole`` and ``auto`` logits.

With several sites (``sites``), every figure is also reported per site; near-duplicate groups,
joined by patient where a site gives patient codes, are the bootstrap's unit.

Temperature scaling: one temperature (the app has one) is fitted by minimising the NLL of the
validation logits of all modes together. ECE after scaling is reported both in-sample (the
temperature fitted on the same images) and 2-fold cross-fitted by group (fit on one half, measure
on the other), which is the honest figure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.metrics import (
    METRICS,
    binary_metrics,
    bootstrap_ci,
    confusion,
    ece,
    fit_temperature,
    nll,
    softmax,
)
from rcdnet_desktop.core.preprocess import (
    DEFAULT_ROI_MARGIN,
    PreprocessConfig,
    crop,
    normalise,
    pad_roi,
)
from rcdnet_desktop.core.site_profile import cutoff_for_sensitivity

from .augment import eval_view
from .cache import CachedImage

log = logging.getLogger(__name__)

MODES = ("whole", "roi")
AUTO_MODES = ("auto", "fusion")  # need a localiser
N_BOOT = 2000


def view_mask(it: CachedImage, mode: str, margin: float, size: int) -> np.ndarray | None:
    """The lesion mask over the model's input view (size x size, bool), or None."""
    import cv2

    if it.mask is None:
        return None
    m = it.mask
    if mode == "roi" and it.box is not None:
        m = crop(m, pad_roi(it.box, m.shape, margin))
    return cv2.resize(m.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0


def centred_gaussian(size: int, sigma: float = 0.25) -> np.ndarray:
    """Baseline heat map: an isotropic Gaussian at the centre, sigma as a share of the side."""
    ax = (np.arange(size) + 0.5) / size - 0.5
    g = np.exp(-(ax[None, :] ** 2 + ax[:, None] ** 2) / (2 * sigma**2))
    return (g / g.max()).astype(np.float32)


def measure_map(heatmap: np.ndarray, mask: np.ndarray) -> tuple[float, bool, bool]:
    """``(share of the map inside the mask, map maximum inside the mask, map empty)``; an empty
    map scores 0 and no hit."""
    total = float(heatmap.sum(dtype=np.float64))
    if total <= 0:
        return 0.0, False, True
    energy = float(heatmap[mask].sum(dtype=np.float64)) / total
    return energy, bool(mask.flat[int(np.argmax(heatmap))]), False


def cam_maps(model, x, size: int) -> np.ndarray:
    """Both classes' closed-form per-class Grad-CAM maps at the input size, each normalised as
    pytorch-grad-cam does (the maps the app showed up to model 2.1.0; the maps it shows now
    are measured by :mod:`training.heatmaps` on a bundle)."""
    import torch

    from rcdnet_desktop.core.model.explain import closed_form_cams, gradcam_like_normalise

    with torch.no_grad():
        feats = model.forward_features(x)
        raw = closed_form_cams(feats, model.fc.weight).float().cpu().numpy()
    b, k = raw.shape[:2]
    return gradcam_like_normalise(raw.reshape(b * k, *raw.shape[2:]), size).reshape(
        b, k, size, size)


def localisation(model, items: Sequence[CachedImage], preds: np.ndarray, mode: str,
                 config: PreprocessConfig, margin: float, batch_size: int = 16) -> dict:
    """Energy inside the lesion mask and pointing-game hits, model vs centred Gaussian."""
    import torch

    device = next(model.parameters()).device
    size = config.size
    base = centred_gaussian(size)
    energy, hits, b_energy, b_hits = [], [], [], []
    model.eval()
    idx = [i for i, it in enumerate(items) if it.mask is not None]
    for s in range(0, len(idx), batch_size):
        chunk = idx[s:s + batch_size]
        x = torch.from_numpy(np.stack([
            normalise(eval_view(items[i].grey, items[i].box, mode, config, margin), config)
            for i in chunk])).to(device)
        maps = cam_maps(model, x, size)
        for j, i in enumerate(chunk):
            m = view_mask(items[i], mode, margin, size)
            cam = maps[j, int(preds[i])]
            for hm, e_list, h_list in ((cam, energy, hits), (base, b_energy, b_hits)):
                e, hit, _ = measure_map(hm, m)
                e_list.append(e)
                h_list.append(hit)
    area = [float(view_mask(items[i], mode, margin, size).mean()) for i in idx]

    def mean(v):
        return float(np.mean(v)) if v else float("nan")

    return {"n_with_mask": len(idx), "energy_in_mask": mean(energy),
            "pointing_game": mean(hits), "baseline_energy_in_mask": mean(b_energy),
            "baseline_pointing_game": mean(b_hits), "mask_area_share": mean(area),
            "per_image_energy": energy, "per_image_hit": hits}


def auto_items(items: Sequence[CachedImage], localiser, config: PreprocessConfig,
               min_confidence: float,
               groups: Sequence[int] | None = None) -> tuple[list[CachedImage], dict]:
    """Items whose box is the localiser's (None where it finds nothing) and its measures."""
    from dataclasses import replace

    from rcdnet_desktop.core.lesion import find_lesion

    from .localiser import measure, predict_maps, summarise, with_min_confidence

    probs = predict_maps(localiser, items, config)
    found = [find_lesion(p, it.grey.shape, min_confidence) for p, it in zip(probs, items,
                                                                             strict=True)]
    out = [replace(it, box=f.box.as_tuple() if f is not None else None,
                   found_box=f.box.as_tuple() if f is not None else None)
           for it, f in zip(items, found, strict=True)]
    raw = measure(probs, items, config)  # every finding, whatever its confidence
    per = with_min_confidence(raw, min_confidence)
    with_mask = [g for g, it in zip(groups, items, strict=True) if it.mask is not None] \
        if groups is not None else None
    return out, {"summary": summarise(per, with_mask), "per_image": per, "groups": with_mask,
                 "found_all": float(np.mean([f is not None for f in found])) if found else 0.0,
                 "by_confidence": hit_by_confidence(raw)}


def hit_by_confidence(per: dict, edges=(0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)) -> list:
    """How often the box hits the lesion (IoU >= 0.5) by the localiser's confidence.

    This is what the card's ``min_confidence`` is read from: below it boxes miss more often
    than they hit, and the whole image is classified instead.
    """
    c, hit = per["confidence"], per["hit"]
    rows = [{"confidence": f"< {edges[0]:.2f} (nothing found)", "n": int((c < edges[0]).sum()),
             "hit_rate": None}]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (c >= lo) & ((c < hi) if hi < 1 else (c <= hi))
        rows.append({"confidence": f"{lo:.2f}-{hi:.2f}", "n": int(sel.sum()),
                     "hit_rate": float(hit[sel].mean()) if sel.any() else None})
    return rows


def _cross_fitted_ece(logits_by_mode, y, groups, seed) -> dict:
    """2-fold by group: fit T on one half (all modes), measure ECE on the other half."""
    rng = np.random.default_rng(seed)
    ug = np.unique(groups)
    fold_of = dict(zip(ug, rng.permutation(len(ug)) % 2, strict=True))
    fold = np.array([fold_of[g] for g in groups])
    out = {}
    for mode, lg in logits_by_mode.items():
        probs = np.zeros_like(lg, dtype=float)
        for f in (0, 1):
            tr, te = fold != f, fold == f
            t = fit_temperature(np.concatenate([v[tr] for v in logits_by_mode.values()]),
                                np.concatenate([y[tr]] * len(logits_by_mode)))
            probs[te] = softmax(lg[te], t)
        out[mode] = ece(y, probs)
    return out


def choose_threshold(y: np.ndarray, p: np.ndarray, target_sensitivity: float) -> float:
    """The highest threshold t with sensitivity (share of malignant with p >= t) >= target:
    the rule a site profile's cut-off follows too
    (:func:`rcdnet_desktop.core.site_profile.cutoff_for_sensitivity`)."""
    return cutoff_for_sensitivity(p, y, target_sensitivity)


def _mode_metrics(y, lg, temperature, groups, n_boot, seed, threshold) -> dict:
    """Metrics with CIs, confusion and calibration of one input mode on one set of images."""
    p_cal = softmax(lg, temperature)
    pm = p_cal[:, 1]
    point = binary_metrics(y, pm, threshold)
    cis = bootstrap_ci(y, pm, lambda a, b: binary_metrics(a, b, threshold), groups=groups,
                       n_boot=n_boot, seed=seed)
    tn, fp, fn, tp = confusion(y, (pm >= threshold).astype(int))
    return {
        "metrics": {k: {"value": point[k], "ci95": list(cis.get(k, (np.nan, np.nan)))}
                    for k in METRICS},
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "malignant_share": float((pm >= threshold).mean()),
        "nll_before": nll(lg, y), "nll_after": nll(lg, y, temperature),
        "ece_before": ece(y, softmax(lg)), "ece_after": ece(y, p_cal),
    }


def evaluate_model(model, items: Sequence[CachedImage], out_dir: Path,
                   config: PreprocessConfig, margin: float = DEFAULT_ROI_MARGIN,
                   groups: Sequence[int] | None = None, temperature: float | None = None,
                   history: list | None = None, split_summary: dict | None = None,
                   train_config: dict | None = None, seed: int = 0, n_boot: int = N_BOOT,
                   progress: bool = True, title: str = "RcdNet",
                   sites: Sequence[str] | None = None, localiser=None,
                   min_confidence: float = 0.0, threshold: float = 0.5,
                   tta: bool = False, target_sensitivity: float | None = None,
                   threshold_mode: str = "whole") -> dict:
    """Evaluate ``model`` on ``items`` in every mode and write every report file to ``out_dir``.

    ``temperature`` None: fit it on these items (all modes together). ``localiser`` adds the
    ``auto`` and ``fusion`` modes and the localiser's own measures. ``threshold`` is the
    decision threshold of the confusion-based metrics (the card's suspicious threshold);
    ``tta`` averages each view's logits with its mirror image's. With ``target_sensitivity``
    the threshold is instead chosen here, after the temperature: the highest one at which
    ``threshold_mode``'s sensitivity on these images reaches the target (an in-sample choice:
    its sensitivity here is the target by construction). Returns the report dict (also
    report.json).
    """
    from .localiser import summarise
    from .report import write_figures, write_markdown
    from .train import predict_logits

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y = np.array([it.label for it in items])
    groups_arr = np.asarray(groups) if groups is not None else np.arange(len(items))
    views = {m: items for m in MODES}
    loc_report = None
    if localiser is not None:
        views["auto"], loc_report = auto_items(items, localiser, config, min_confidence,
                                               groups)
    logits = {m: predict_logits(model, its, "roi" if m == "auto" else m, config, margin,
                                progress=progress, tta=tta) for m, its in views.items()}
    if localiser is not None:
        logits["fusion"] = (logits["whole"] + logits["auto"]) / 2
    fitted = temperature is None
    if fitted:
        temperature = fit_temperature(np.concatenate(list(logits.values())),
                                      np.concatenate([y] * len(logits)))
    threshold_source = "given"
    if target_sensitivity is not None:
        threshold = choose_threshold(y, softmax(logits[threshold_mode], temperature)[:, 1],
                                     target_sensitivity)
        threshold_source = (f"chosen on these images: highest threshold with sensitivity >= "
                            f"{target_sensitivity:.2f} in the {threshold_mode} mode")
    report: dict = {
        "title": title, "n_images": int(len(y)), "n_malignant": int(y.sum()),
        "positive_class": "malignant", "threshold": threshold,
        "threshold_source": threshold_source, "tta": tta,
        "temperature": float(temperature),
        "temperature_source": "fitted on these images (NLL, all modes together)" if fitted
        else "from the model card",
        "bootstrap": {"n": n_boot, "seed": seed, "level": 0.95,
                      "unit": "near-duplicate group" if groups is not None else "image"},
        "roi_margin": margin, "modes": {},
    }
    cross = _cross_fitted_ece(logits, y, groups_arr, seed) if len(np.unique(groups_arr)) > 3 \
        and len(set(y)) == 2 else {}
    # The closed-form CAM needs RcdNet's layout (last feature map -> GAP -> linear "fc").
    has_cam = hasattr(model, "forward_features") and hasattr(getattr(model, "fc", None),
                                                             "weight")
    for mode, lg in logits.items():
        preds = lg.argmax(1)
        loc = localisation(model, views[mode], preds, "roi" if mode == "auto" else mode, config,
                           margin) if has_cam and mode in views else {}
        report["modes"][mode] = {
            **_mode_metrics(y, lg, temperature, groups, n_boot, seed, threshold),
            "ece_after_cross_fitted": cross.get(mode),
            "localisation": {k: v for k, v in loc.items() if not k.startswith("per_image")}
            or None,
        }
        np.savez(out_dir / f"predictions_{mode}.npz", logits=lg, y=y, groups=groups_arr,
                 sites=np.asarray(sites if sites is not None
                                  else [it.sample.site for it in items]),
                 energy=np.array(loc.get("per_image_energy", [])),
                 hit=np.array(loc.get("per_image_hit", [])))
    site_arr = np.asarray(sites if sites is not None else [it.sample.site for it in items])
    if len(set(site_arr.tolist())) > 1:
        report["sites"] = {}
        for site in sorted(set(site_arr.tolist())):
            sel = site_arr == site
            g = groups_arr[sel] if groups is not None else None
            report["sites"][site] = {
                "n_images": int(sel.sum()), "n_malignant": int(y[sel].sum()),
                "modes": {m: _mode_metrics(y[sel], lg[sel], temperature, g, n_boot, seed,
                                           threshold) for m, lg in logits.items()}}
    if loc_report is not None:
        report["localiser"] = {"pooled": loc_report["summary"], "found": loc_report["found_all"],
                               "min_confidence": min_confidence,
                               "hit_rate_by_confidence": loc_report["by_confidence"]}
        per = loc_report["per_image"]
        with_mask = np.array([it.mask is not None for it in items])
        loc_groups = loc_report["groups"]
        for site in sorted(set(site_arr.tolist())) if "sites" in report else ():
            sel = site_arr[with_mask] == site
            report["localiser"][site] = summarise(
                {k: v[sel] for k, v in per.items()},
                None if loc_groups is None else np.asarray(loc_groups)[sel])
        np.savez(out_dir / "localiser_per_image.npz", **per, sites=site_arr[with_mask])
    report["images"] = [str(it.sample.path) for it in items]
    if split_summary:
        report["split"] = {k: v for k, v in split_summary.items()}
    if train_config:
        report["train_config"] = train_config
    if history:
        report["history"] = history
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=_jsonable))
    write_figures(report, logits, y, temperature, out_dir)
    write_markdown(report, out_dir)
    return report


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, tuple | set):
        return list(o)
    return str(o)


def load_weights(weights: Path):
    """A bundle folder (card + weights) -> (model, card or None, info)."""
    import torch

    weights = Path(weights)
    if weights.is_dir():
        from rcdnet_desktop.core.model.bundle import load_model

        model, card = load_model(weights)
        return model, card
    from .models import build_model
    from .train import TrainConfig

    cfg_file = weights.parent / "train_config.json"
    cfg = TrainConfig.from_dict(json.loads(cfg_file.read_text())) if cfg_file.exists() \
        else TrainConfig()
    model, _ = build_model(cfg.arch, pretrained=False)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    return model, None


def load_localiser_weights(path: Path):
    """A localiser state_dict file (a run's ``model_state.pt``) -> LesionLocaliser in eval mode."""
    import torch

    from rcdnet_desktop.core.model.localiser import LesionLocaliser

    model = LesionLocaliser(pretrained=False)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def evaluate_weights(weights: Path, items: Sequence[CachedImage], out_dir: Path,
                     groups: Sequence[int] | None = None, seed: int = 0, progress: bool = True,
                     split_summary: dict | None = None, fit_temperature: bool = False,
                     n_boot: int = N_BOOT, sites: Sequence[str] | None = None,
                     localiser: Path | None = None, min_confidence: float | None = None,
                     tta: bool = False, external: bool = False) -> dict:
    """Evaluate saved weights with the card's preprocessing, margin, temperature, threshold.

    The localiser is the bundle's (its card entry) unless ``localiser`` names a state_dict;
    ``external`` marks the images as a site the model was not trained on (report title).
    """
    model, card = load_weights(weights)
    loc_model, threshold = None, 0.5
    if localiser is not None:
        loc_model = load_localiser_weights(localiser)
    if card is not None:
        config, margin = card.preprocessing, card.roi_margin
        temperature = None if fit_temperature else card.temperature
        title = f"RcdNet {card.version}"
        loc_card = getattr(card, "localiser", None) or {}
        if loc_model is None and loc_card:
            from rcdnet_desktop.core.model.bundle import load_localiser

            loc_model = load_localiser(weights, card)
        if min_confidence is None:
            min_confidence = float(loc_card.get("min_confidence", 0.0))
        threshold = float((getattr(card, "operating_point", None) or {}).get(
            "suspicious_threshold", 0.5))
    else:
        config, margin, temperature, title = PreprocessConfig(), DEFAULT_ROI_MARGIN, None, \
            str(weights)
    if external:
        title += " on an external site (" + ", ".join(sorted(set(sites or []))) + ")"
    return evaluate_model(model, items, out_dir, config, margin, groups=groups,
                          temperature=temperature, split_summary=split_summary, seed=seed,
                          n_boot=n_boot, progress=progress, title=title, sites=sites,
                          localiser=loc_model, min_confidence=min_confidence or 0.0,
                          threshold=threshold, tta=tta)
