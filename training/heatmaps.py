"""How well the heat maps localise the lesion on the views the app shows (``rcdnet-train
heatmaps``).

Each image with a lesion mask is run through the application's own engine
(:class:`~rcdnet_desktop.core.model.engine.InferenceEngine`, ONNX backend, the bundle's card) in
two views:

``default``
    what the app shows when nobody draws a box: the localiser's box padded by the card's
    ``roi_margin``, fused with the whole image when the card's ``operating_point.default_mode``
    is ``fusion``; the whole image where the localiser finds no lesion;
``lesion box``
    the expert mask's bounding box, padded the same way (a box the clinician drew).

In each view the maps are measured over the region they cover (the classified view, at the
model's input size), against the lesion mask cropped and resized the same way:

``energy``
    the share of the map's total inside the mask;
``area``
    the mask's share of the view (what a map spread evenly would score);
``lift``
    energy / area, the ratio of their means over the images;
``pointing``
    the share of images whose map maximum lies inside the mask.

The map measured is the one behind the result: the malignant map when the result is suspicious
(at the card's cut-off), the benign map otherwise. The candidates (:data:`CANDIDATES`) are the
per-class Grad-CAM the app showed before, the contrastive Grad-CAM and LayerCAM (closed forms,
each map normalised as pytorch-grad-cam does), the maps the app shows now
(:func:`~rcdnet_desktop.core.model.explain.decision_evidence`), and a centred Gaussian over the view
(sigma a quarter of its side), which knows nothing of the image. Every figure comes with a 95%
bootstrap interval resampled by patient (near-duplicate group joined by patient where a site
gives patient codes), and each candidate's paired difference to the Gaussian with its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.metrics import bootstrap_ci
from rcdnet_desktop.core.model.explain import (
    closed_form_cams_np,
    contrastive_scores,
    decision_evidence,
    gradcam_like_normalise,
    pooling_gradient_scale,
    split_evidence,
)

from .cache import CachedImage
from .evaluate import N_BOOT, centred_gaussian, measure_map

log = logging.getLogger(__name__)

VIEWS = ("default", "lesion box")
CANDIDATES: dict[str, str] = {
    "gradcam": "Grad-CAM of each class, ReLU(W_c A) (shown before)",
    "contrastive": "contrastive Grad-CAM, ReLU(+-(W_m - W_b) A)",
    "layercam": "contrastive LayerCAM, ReLU(sum_k ReLU(+-(W_mk - W_bk)) A_k)",
    "shipped": "cells relative to the cut-off, one scale (shown now)",
    "gaussian": "centred Gaussian, sigma = 1/4 of the view's side (baseline)",
}
"""Candidate maps, by key, with what they are."""


def layercam_contrastive(features: np.ndarray, fc_weight: np.ndarray) -> np.ndarray:
    """Raw LayerCAM maps ``(B, 2, h, w)`` for the targets ``logit_b - logit_m`` and
    ``logit_m - logit_b``, in closed form.

    LayerCAM weighs each activation by the positive part of its gradient; behind global average
    pooling and a linear layer that gradient is ``+-(W_mk - W_bk) / (h w)`` at every position,
    so the map is ``ReLU(sum_k ReLU(+-(W_mk - W_bk)) / (h w) * A_k)`` (a test checks it against
    pytorch-grad-cam's ``LayerCAM`` on the bundled model).
    """
    f = np.asarray(features, dtype=np.float32)
    w = np.asarray(fc_weight, dtype=np.float32)
    h, wd = f.shape[-2:]
    diff = (w[1] - w[0]) * np.float32(pooling_gradient_scale(h, wd))
    weights = np.stack([np.maximum(-diff, 0), np.maximum(diff, 0)])
    return np.maximum(np.einsum("kc,bchw->bkhw", weights, f, optimize=True), 0)


def candidate_maps(features: np.ndarray, fc_weight: np.ndarray, margin: float, fused: bool,
                   size: int) -> dict[str, np.ndarray]:
    """Every candidate's ``(2, size, size)`` maps (benign, malignant) of one view."""
    f = np.asarray(features, dtype=np.float32)[None]
    gauss = centred_gaussian(size)
    return {
        "gradcam": gradcam_like_normalise(closed_form_cams_np(f, fc_weight)[0], size),
        "contrastive": gradcam_like_normalise(
            split_evidence(contrastive_scores(f, fc_weight))[0], size),
        "layercam": gradcam_like_normalise(layercam_contrastive(f, fc_weight)[0], size),
        "shipped": decision_evidence(contrastive_scores(f, fc_weight)[0], margin, size,
                                     share=0.5 if fused else 1.0),
        "gaussian": np.stack([gauss, gauss]),
    }


def view_mask(mask: np.ndarray, roi, size: int) -> np.ndarray:
    """The lesion mask over a classified view: cropped to ``roi`` (or whole), resized."""
    import cv2

    m = mask if roi is None else mask[roi.y:roi.y + roi.h, roi.x:roi.x + roi.w]
    return cv2.resize(m.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0


def per_image(engine, items: Sequence[CachedImage], progress: bool = True) -> dict:
    """Per-image measures of every candidate in both views (items without a mask skipped).

    Returns ``{view: {"area": (N,), "suspicious": (N,), "found": (N,), candidate: {"energy",
    "hit", "empty"}}}`` plus ``"index"``: the rows of ``items`` measured.
    """
    from tqdm import tqdm

    from rcdnet_desktop.core.types import Box

    size = engine.card.preprocessing.size
    rows = [i for i, it in enumerate(items) if it.mask is not None]
    out: dict = {"index": np.array(rows)}
    for view in VIEWS:
        acc: dict = {"area": [], "suspicious": [], "found": [],
                     **{c: {"energy": [], "hit": [], "empty": []} for c in CANDIDATES}}
        for i in tqdm(rows, desc=f"heat maps ({view})", disable=not progress, leave=False):
            it = items[i]
            prep = (engine.prepare(it.grey) if view == "default"
                    else engine.prepare(it.grey, roi=Box(*it.box), auto_box=False))
            logits, feats, weight = engine.last_features([prep])
            margin = float(engine.cutoff_margin(logits)[0])
            mask = view_mask(it.mask, prep.roi, size)
            result = int(margin >= 0)
            acc["area"].append(float(mask.mean()))
            acc["suspicious"].append(bool(result))
            acc["found"].append(prep.box_source == "auto")
            for name, maps in candidate_maps(feats[0], weight, margin, prep.fuse, size).items():
                e, h, empty = measure_map(maps[result], mask)
                acc[name]["energy"].append(e)
                acc[name]["hit"].append(h)
                acc[name]["empty"].append(empty)
        out[view] = {k: (np.asarray(v) if not isinstance(v, dict)
                         else {kk: np.asarray(vv) for kk, vv in v.items()})
                     for k, v in acc.items()}
    return out


def _stats(view: dict, rows: np.ndarray) -> dict[str, float]:
    """Every figure of one view on the images ``rows`` (a bootstrap resample or all)."""
    area = float(view["area"][rows].mean())
    base = view["gaussian"]
    out = {"area": area}
    for name in CANDIDATES:
        c = view[name]
        energy = float(c["energy"][rows].mean())
        hit = float(c["hit"][rows].mean())
        out[f"{name}.energy"] = energy
        out[f"{name}.lift"] = energy / area if area > 0 else float("nan")
        out[f"{name}.pointing"] = hit
        out[f"{name}.empty"] = float(c["empty"][rows].mean())
        if name != "gaussian":
            out[f"{name}.energy_minus_gaussian"] = energy - float(base["energy"][rows].mean())
            out[f"{name}.pointing_minus_gaussian"] = hit - float(base["hit"][rows].mean())
    return out


def summarise(measures: dict, labels: Sequence[int], groups: Sequence, seed: int = 0,
              n_boot: int = N_BOOT) -> dict:
    """Point figures and patient-resampled 95% intervals of every view and candidate."""
    idx = measures["index"]
    y = np.asarray(labels)[idx]
    g = np.asarray(groups)[idx]
    out: dict = {"n_images": int(len(idx)), "n_malignant": int(y.sum()),
                 "n_groups": int(len(np.unique(g))), "views": {}}
    for view in VIEWS:
        m = measures[view]
        point = _stats(m, np.arange(len(idx)))
        ci = bootstrap_ci(y, np.arange(len(idx)), lambda _y, rows, m=m: _stats(m, rows),
                          groups=g, n_boot=n_boot, seed=seed)
        out["views"][view] = {
            "suspicious": float(m["suspicious"].mean()),
            "lesion_box_found": float(m["found"].mean()),
            **{k: {"value": v, "ci95": list(ci[k])} for k, v in point.items()}}
    return out


def _fmt(entry: dict, digits: int = 2) -> str:
    lo, hi = entry["ci95"]
    return f"{entry['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table(summary: dict) -> list[str]:
    """Markdown table of one data set's summary."""
    lines = []
    for view, v in summary["views"].items():
        lines += [f"**{view}** (lesion's share of the view {_fmt(v['area'])}; "
                  f"suspicious {v['suspicious']:.0%}"
                  + (f"; lesion box found {v['lesion_box_found']:.0%}" if view == "default"
                     else "") + ")", "",
                  "| map | energy in lesion | energy / share | pointing game | "
                  "energy - Gaussian | pointing - Gaussian | result's map empty |",
                  "|---|---|---|---|---|---|---|"]
        for name in CANDIDATES:
            diff = ("-", "-") if name == "gaussian" else (
                _fmt(v[f"{name}.energy_minus_gaussian"]),
                _fmt(v[f"{name}.pointing_minus_gaussian"]))
            lines.append(f"| {name} | {_fmt(v[f'{name}.energy'])} | {_fmt(v[f'{name}.lift'])} "
                         f"| {_fmt(v[f'{name}.pointing'])} | {diff[0]} | {diff[1]} "
                         f"| {v[f'{name}.empty']['value']:.1%} |")
        lines.append("")
    return lines


def run(bundle: Path | None, data: Sequence[Path], split_csv: Path | None,
        external: Sequence[Path], out_dir: Path, seed: int = 0, cache_dir: Path | None = None,
        progress: bool = True, n_boot: int = N_BOOT) -> dict:
    """Measure the internal validation side of ``split_csv`` (sites ``data``) and each external
    site; write ``heatmaps.json`` and ``heatmaps_tables.md`` into ``out_dir``."""
    from rcdnet_desktop.core.model.engine import InferenceEngine

    from .pipeline import default_cache_dir, prepare

    engine = InferenceEngine(bundle, device="cpu", backend="onnx")
    cache_dir = cache_dir or default_cache_dir()
    sets: list[tuple[str, list, list]] = []
    if data:
        prep = prepare(list(data), split_csv, cache_dir, seed, progress=progress)
        sets.append(("internal validation", prep.subset("val"), prep.groups("val")))
    for site in external:
        prep = prepare([site], None, cache_dir, seed, progress=progress)
        sets.append((f"external: {Path(site).name}", prep.subset(None), prep.groups(None)))
    report: dict = {"candidates": CANDIDATES, "model_version": engine.card.version,
                    "default_mode": "fusion" if engine.fusion else "auto",
                    "bootstrap": f"{n_boot} resamples by patient / near-duplicate group",
                    "sets": {}}
    lines = [f"Heat-map localisation, model {engine.card.version} "
             f"(95% intervals: {report['bootstrap']})", ""]
    for name, items, groups in sets:
        log.info("heat maps: %s, %d images", name, len(items))
        measures = per_image(engine, items, progress)
        summary = summarise(measures, [it.label for it in items], groups, seed, n_boot)
        report["sets"][name] = summary
        lines += [f"### {name} ({summary['n_images']} images with a mask, "
                  f"{summary['n_malignant']} malignant, {summary['n_groups']} patients/groups)",
                  "", *table(summary)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "heatmaps.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "heatmaps_tables.md").write_text("\n".join(lines) + "\n")
    return report


CARD_NOTE = ("energy = share of the map inside the lesion mask, lift = energy / the lesion's "
             "share of the view, pointing = share of images whose map maximum is inside the "
             "mask, empty = share of images whose map is empty; the map behind the result "
             "(malignant when suspicious); shipped = the maps shown, gradcam = per-class "
             "Grad-CAM shown before, gaussian = a centred Gaussian baseline; 95% intervals "
             "resampled by patient")
CARD_MAPS = ("shipped", "gradcam", "gaussian")
"""The maps the model card reports: shown now, shown before, and the baseline."""
CARD_FIGURES = ("energy", "lift", "pointing", "empty")


def card_section(report: dict) -> dict:
    """The figures the model card carries, per data set and view: the lesion's share of the
    view, and energy, lift, pointing game and empty rate of :data:`CARD_MAPS`, each value
    beside its ``<name>_ci95`` (the card's convention for an interval)."""

    def entry(v: dict, key: str, name: str) -> dict:
        return {name: round(v[key]["value"], 3),
                f"{name}_ci95": [round(x, 3) for x in v[key]["ci95"]]}

    return {name: {view: {**entry(v, "area", "lesion_share_of_view"),
                          **{m: {k: val for f in CARD_FIGURES
                                 for k, val in entry(v, f"{m}.{f}", f).items()}
                             for m in CARD_MAPS}}
                   for view, v in s["views"].items()}
            for name, s in report["sets"].items()}


def write_card(bundle: Path | None, report: dict) -> Path:
    """Write the report's figures into the bundle's model card as ``metrics.heat_maps`` (the
    app's bundle when ``bundle`` is None); returns the bundle folder."""
    from dataclasses import replace

    from rcdnet_desktop.core.model.card import default_model_dir, load_card
    from training.bundle_write import save_card

    bundle = Path(bundle or default_model_dir())
    card = load_card(bundle)
    section = {"method": "rcdnet-train heatmaps (training/heatmaps.py); "
                         "docs/training/heatmaps.md",
               "figures": CARD_NOTE, **card_section(report)}
    save_card(replace(card, metrics={**card.metrics, "heat_maps": section}), bundle)
    return bundle
