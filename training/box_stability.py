"""Box stability: does P(malignant) hold when the lesion box is drawn a little differently?

For every image with a lesion mask, the mask's tight box (the box a careful reader would draw)
and the reader variants of it in :data:`READER_VARIANTS` (10% smaller, 10% larger, shifted by
10% of its size left, right, up and down) are classified through the application's own path:
:class:`~rcdnet_desktop.core.inference.InferenceEngine` on the bundle (ONNX Runtime on the CPU),
each box given as the user's box. Reported, with 95% CIs from a bootstrap that resamples
patients (near-duplicate groups joined by patient on the training sites; patient codes,
joined where two codes hold the same image, on an external site):

- ``changes_side``: share of images whose decision at the card's suspicious cut-off is not the
  same for every variant (some variant below, another at or above);
- ``mean_spread``: mean over images of max - min P(malignant) over the variants;
- ``auc``, ``sensitivity``, ``specificity``: of P(malignant) at the tight box, at the cut-off;
- ``says_box_dependent``: share of images whose tight-box result says its decision depends on
  the box (:attr:`~rcdnet_desktop.core.types.Prediction.box_dependent`).

Each figure is measured *before* (the box classified alone: ``box_views=False``) and *after*
(the card's ``box_views``), on the same images, with the paired bootstrap CI of the difference.

``--choose`` compares the candidate sets of views in :data:`CANDIDATES` on the training sites'
validation images and applies :data:`CHOICE_RULE`. It needs only one forward pass per distinct
box: the engine averages the views' logits, and for two classes the mean of the logits gives
``P = sigmoid(mean(logit(P_view)))`` (the temperature divides both alike), so every candidate is
computed from the single-box probabilities of the same engine with the views off.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.box_views import BoxView, apply, view_boxes

from .data import load_samples, mask_box, read_mask
from .metrics import binary_metrics, bootstrap_ci

log = logging.getLogger("training")

READER_VARIANTS: tuple[tuple[str, BoxView], ...] = (
    ("as drawn (mask's tight box)", BoxView()),
    ("10% smaller", BoxView(0.9)),
    ("10% larger", BoxView(1.1)),
    ("shifted left 10%", BoxView(1.0, -0.1, 0.0)),
    ("shifted right 10%", BoxView(1.0, 0.1, 0.0)),
    ("shifted up 10%", BoxView(1.0, 0.0, -0.1)),
    ("shifted down 10%", BoxView(1.0, 0.0, 0.1)),
)
"""How another reader might draw the same lesion's box; the first is the box as drawn."""



def _shifts(d: float) -> tuple[BoxView, ...]:
    """The box moved by ``d`` of its size left, right, up and down."""
    return (BoxView(1.0, -d, 0.0), BoxView(1.0, d, 0.0), BoxView(1.0, 0.0, -d),
            BoxView(1.0, 0.0, d))


_SHIFTS4 = _shifts(0.1)
CANDIDATES: dict[str, tuple[BoxView, ...]] = {
    "as given": (BoxView(),),
    "scales 0.9/1.1": (BoxView(), BoxView(0.9), BoxView(1.1)),
    "scales 0.8-1.25": (BoxView(), BoxView(0.8), BoxView(0.9), BoxView(1.1), BoxView(1.25)),
    "shifts 10%": (BoxView(), *_SHIFTS4),
    "scales 0.9/1.1 + shifts 10%": (BoxView(), BoxView(0.9), BoxView(1.1), *_SHIFTS4),
    "scales 0.8-1.25 + shifts 10%": (BoxView(), BoxView(0.8), BoxView(0.9), BoxView(1.1),
                                     BoxView(1.25), *_SHIFTS4),
    "scales 0.8-1.25 + shifts 20%": (BoxView(), BoxView(0.8), BoxView(0.9), BoxView(1.1),
                                     BoxView(1.25), *_shifts(0.2)),
    "scales 0.7-1.4 + shifts 20%": (BoxView(), BoxView(0.7), BoxView(0.85), BoxView(1.2),
                                    BoxView(1.4), *_shifts(0.2)),
}
"""The sets of views ``--choose`` compares (each starts with the box as given)."""
CHOICE_RULE = ("the set with the fewest views whose internal-validation change-of-side share "
               "is <= 5%, mean spread <= 0.05 and AUC not below the box alone's; when none "
               "meets all three, the lowest change-of-side share (ties: lower spread, then "
               "fewer views)")
STATS = ("changes_side", "mean_spread", "auc", "sensitivity", "specificity")


@dataclass(frozen=True)
class Item:
    """One image with a lesion mask: its label and its bootstrap group (patient)."""

    path: Path
    label: int
    masks: tuple[Path, ...]
    group: str


# --- data ------------------------------------------------------------------------------------

def _patient_groups(root: Path, samples) -> list[str]:
    """Patient codes, joined where the site's ``intra_duplicates.csv`` pairs two images of
    different codes with the same pixels (one patient filed twice)."""
    parent = {s.patient or s.path.stem: s.patient or s.path.stem for s in samples}

    def find(a: str) -> str:
        while parent[a] != a:
            a = parent[a]
        return a

    dup = Path(root) / "intra_duplicates.csv"
    if dup.is_file():
        code = {s.path.stem: s.patient or s.path.stem for s in samples}
        with dup.open(newline="") as fh:
            for row in csv.DictReader(fh):
                a, b = code.get(row.get("a", "")), code.get(row.get("b", ""))
                if a and b and a != b and float(row.get("corr") or 0) >= 1.0:
                    parent[find(a)] = find(b)
    return [find(s.patient or s.path.stem) for s in samples]


def external_items(root: Path) -> list[Item]:
    """Every image with a mask of a class-folder site, grouped by patient."""
    samples = [s for s in load_samples(root) if s.masks]
    groups = _patient_groups(root, samples)
    return [Item(s.path, s.label, s.masks, f"{s.site}:{g}")
            for s, g in zip(samples, groups, strict=True)]


def split_items(data: Sequence[Path], split_csv: Path, subset: str = "val") -> list[Item]:
    """The ``subset`` rows of a split CSV (``path,label,group,split,site``) that have a mask,
    grouped by their near-duplicate group (joined by patient where the site gives codes)."""
    from .pipeline import data_roots

    roots = data_roots(data)
    by_path = {}
    for site, root in roots.items():
        for s in load_samples(root):
            by_path[(site, s.path.relative_to(root).as_posix())] = s
    out = []
    with Path(split_csv).open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["split"] != subset or row["site"] not in roots:
                continue
            s = by_path.get((row["site"], row["path"]))
            if s is None:
                raise FileNotFoundError(f"{row['site']}/{row['path']} (in {split_csv}) is not "
                                        "in the data folder")
            if s.masks:
                out.append(Item(s.path, s.label, s.masks, f"{row['site']}:{row['group']}"))
    return out


def _image_and_box(item: Item):
    from rcdnet_desktop.core.io import read_image
    from rcdnet_desktop.core.types import Box

    pixels = read_image(item.path).pixels
    box = mask_box(read_mask(item.masks, pixels.shape[:2]))
    return pixels, (Box(*box) if box is not None else None)


# --- measuring -------------------------------------------------------------------------------

def measure(engine, items: Sequence[Item], progress: bool = False) -> dict[str, np.ndarray]:
    """P(malignant) of every reader variant of every image through ``engine`` (user boxes),
    and whether the as-drawn result says it depends on the box.

    Returns
    -------
    dict
        ``p``: ``(n, len(READER_VARIANTS))``; ``box_dependent``: ``(n,)`` bool; ``y``,
        ``groups``; images without a usable mask are left out (``kept`` indexes ``items``).
    """
    views = [v for _, v in READER_VARIANTS]
    rows, dep, kept = [], [], []
    for k, it in enumerate(_progress(items, progress)):
        pixels, box = _image_and_box(it)
        if box is None:
            continue
        hw = pixels.shape[:2]
        preds = engine.predict_prepared([engine.prepare(pixels, roi=b)
                                         for b in view_boxes(box, views, hw)])
        rows.append([p.p_malignant for p in preds])
        dep.append(preds[0].box_dependent)
        kept.append(k)
    return {"p": np.asarray(rows, dtype=np.float64), "box_dependent": np.asarray(dep, bool),
            "y": np.asarray([items[k].label for k in kept]),
            "groups": np.asarray([items[k].group for k in kept]), "kept": np.asarray(kept)}


def single_box_probabilities(engine, items: Sequence[Item], candidates: dict,
                             progress: bool = False) -> dict[str, np.ndarray]:
    """For ``--choose``: P(malignant) of every candidate set for every reader variant, from
    one forward pass per distinct box (``engine`` must classify boxes alone).

    Returns ``{candidate name: (n, len(READER_VARIANTS))}`` plus ``y`` and ``groups``.
    """
    union = list(dict.fromkeys(v for views in candidates.values() for v in views))
    readers = [v for _, v in READER_VARIANTS]
    out = {name: [] for name in candidates}
    ys, groups = [], []
    for it in _progress(items, progress):
        pixels, box = _image_and_box(it)
        if box is None:
            continue
        hw = pixels.shape[:2]
        composed = {(r, v): apply(apply(box, r, hw), v, hw) for r in readers for v in union}
        distinct = list(dict.fromkeys(composed.values()))
        # The guard's whole-image row does not change P: left out of the search's batches.
        preds = engine.predict_prepared([replace(engine.prepare(pixels, roi=b), whole=None)
                                         for b in distinct])
        logit = {b: _logit(p.p_malignant) for b, p in zip(distinct, preds, strict=True)}
        for name, views in candidates.items():
            out[name].append([_sigmoid(np.mean([logit[composed[(r, v)]] for v in views]))
                              for r in readers])
        ys.append(it.label)
        groups.append(it.group)
    res = {name: np.asarray(v, dtype=np.float64) for name, v in out.items()}
    res["y"], res["groups"] = np.asarray(ys), np.asarray(groups)
    return res


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(np.log(p) - np.log1p(-p))


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-z)))


# --- figures ---------------------------------------------------------------------------------

def stability(y: np.ndarray, p: np.ndarray, cut_off: float) -> dict[str, float]:
    """The figures of one set of reader-variant probabilities ``p`` ``(n, variants)``; the
    first column is the box as drawn."""
    low, high = p.min(axis=1), p.max(axis=1)
    m = binary_metrics(y, p[:, 0], cut_off)
    return {"changes_side": float(((low < cut_off) & (high >= cut_off)).mean()),
            "mean_spread": float((high - low).mean()), "auc": m["auc"],
            "sensitivity": m["recall"], "specificity": m["specificity"]}


def with_ci(y, p, groups, cut_off: float, n_boot: int = 2000, seed: int = 0) -> dict:
    """:func:`stability` with patient-bootstrap 95% CIs."""
    point = stability(y, p, cut_off)
    cis = bootstrap_ci(y, p, lambda yy, pp: stability(yy, pp, cut_off), groups=groups,
                       n_boot=n_boot, seed=seed)
    return _rounded(point, cis)


def _rounded(point: dict, cis: dict) -> dict:
    """``{figure: {"value", "ci95"}}``; the CI is null when no resample had both classes."""
    return {k: {"value": round(v, 4),
                "ci95": [round(c, 4) for c in cis[k]] if k in cis else None}
            for k, v in point.items()}


def paired(y, before, after, groups, cut_off: float, n_boot: int = 2000, seed: int = 0) -> dict:
    """After minus before, each figure, with the paired patient-bootstrap 95% CI (both are
    recomputed on the same resampled patients)."""

    def diff(yy, pp):
        a, b = stability(yy, pp[:, 1], cut_off), stability(yy, pp[:, 0], cut_off)
        return {k: a[k] - b[k] for k in a}

    both = np.stack([before, after], axis=1)
    point = diff(y, both)
    cis = bootstrap_ci(y, both, diff, groups=groups, n_boot=n_boot, seed=seed)
    return _rounded(point, cis)


def choose(scores: dict[str, dict]) -> str:
    """Apply :data:`CHOICE_RULE` to ``{name: stability(...)}`` of :data:`CANDIDATES`."""
    base_auc = scores["as given"]["auc"]
    ok = [n for n, s in scores.items() if s["changes_side"] <= 0.05
          and s["mean_spread"] <= 0.05 and s["auc"] >= base_auc]
    if ok:
        return min(ok, key=lambda n: (len(CANDIDATES[n]), scores[n]["changes_side"]))
    return min(scores, key=lambda n: (round(scores[n]["changes_side"], 6),
                                      round(scores[n]["mean_spread"], 6), len(CANDIDATES[n])))


def _progress(items, on: bool):
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, unit="image")


def _row(name: str, s: dict) -> str:
    def f(k):
        v = s[k]
        if not isinstance(v, dict):
            return f"{v:.3f}"
        ci = v["ci95"]
        return f"{v['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    return f"| {name} | " + " | ".join(f(k) for k in STATS) + " |"


def table(rows: dict[str, dict]) -> str:
    """A markdown table of named figure sets (values, with CIs when they have them)."""
    head = "| | changes side | mean spread | AUC | sensitivity | specificity |"
    return "\n".join([head, "|---|---|---|---|---|---|",
                      *(_row(n, s) for n, s in rows.items())])


# --- the model card --------------------------------------------------------------------------

def record(model_dir: Path, key: str, value, views: list | None = None) -> None:
    """Write ``value`` under ``box_views[key]`` of the bundle's card (and the views, when
    given); with new views, the bundle's self-test goldens are measured again, since the
    samples' automatic boxes are now classified through them."""
    from rcdnet_desktop.core.bundle import save_card
    from rcdnet_desktop.core.card import load_card

    from .guard import record_self_test

    card = load_card(model_dir)
    section = dict(card.box_views)
    if views is not None:
        section["views"] = views
    section[key] = value
    card = save_card(replace(card, box_views=section), model_dir)
    if views is not None:
        record_self_test(card, Path(model_dir), None)


# --- commands --------------------------------------------------------------------------------

def run_choose(items: Sequence[Item], model_dir: Path | None, out: Path | None,
               n_boot: int = 2000, progress: bool = False, record_to: Path | None = None,
               data: str = "") -> dict:
    """Compare :data:`CANDIDATES` on ``items`` and pick one by :data:`CHOICE_RULE`; with
    ``record_to`` (a bundle folder), write the chosen views into its card, saying which
    ``data`` chose them."""
    from rcdnet_desktop.core.bands import suspicious_threshold
    from rcdnet_desktop.core.inference import InferenceEngine

    engine = InferenceEngine(model_dir, device="cpu", backend="onnx", box_views=False)
    cut = suspicious_threshold(engine.card)
    probs = single_box_probabilities(engine, items, CANDIDATES, progress)
    y, groups = probs["y"], probs["groups"]
    points = {n: stability(y, probs[n], cut) for n in CANDIDATES}
    chosen = choose(points)
    report = {"images": int(len(y)), "groups": int(len(set(groups))), "cut_off": cut,
              "rule": CHOICE_RULE, "chosen": chosen,
              "views": [v.to_list() for v in CANDIDATES[chosen]],
              "candidates": {n: {"views": len(CANDIDATES[n]),
                                 **with_ci(y, probs[n], groups, cut, n_boot)}
                             for n in CANDIDATES}}
    print(table({f"{n} ({len(CANDIDATES[n])} views)": report["candidates"][n]
                 for n in CANDIDATES}))
    print(f"chosen: {chosen}")
    if record_to is not None:
        figures = report["candidates"][chosen]
        record(record_to, "chosen", {
            "on": data, "images": report["images"], "groups": report["groups"],
            "rule": CHOICE_RULE, "set": chosen,
            "box_alone": {k: v for k, v in report["candidates"]["as given"].items()
                          if k != "views"},
            "views": {k: v for k, v in figures.items() if k != "views"}},
            views=report["views"])
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def run_measure(items: Sequence[Item], model_dir: Path | None, out: Path | None,
                n_boot: int = 2000, progress: bool = False, record_to: Path | None = None,
                key: str = "", data: str = "") -> dict:
    """Before (box alone) and after (the card's views) on the same images, paired; with
    ``record_to`` (a bundle folder), the figures go into its card under ``box_views[key]``."""
    from rcdnet_desktop.core.bands import suspicious_threshold
    from rcdnet_desktop.core.inference import InferenceEngine

    before_engine = InferenceEngine(model_dir, device="cpu", backend="onnx", box_views=False)
    after_engine = InferenceEngine(model_dir, device="cpu", backend="onnx")
    cut = suspicious_threshold(after_engine.card)
    before = measure(before_engine, items, progress)
    after = measure(after_engine, items, progress)
    y, groups = after["y"], after["groups"]
    report = {"images": int(len(y)), "malignant": int(y.sum()),
              "groups": int(len(set(groups))), "cut_off": cut,
              "reader_variants": [n for n, _ in READER_VARIANTS],
              "views": after_engine.card.box_views.get("views", [[1.0, 0.0, 0.0]]),
              "before": with_ci(y, before["p"], groups, cut, n_boot),
              "after": with_ci(y, after["p"], groups, cut, n_boot),
              "after_minus_before": paired(y, before["p"], after["p"], groups, cut, n_boot),
              "says_box_dependent_after": round(float(after["box_dependent"].mean()), 4)}
    print(table({"box alone": report["before"], "box views": report["after"],
                 "difference": report["after_minus_before"]}))
    print(f"as-drawn results that say they depend on the box: "
          f"{report['says_box_dependent_after']:.1%}")
    if record_to is not None:
        record(record_to, key, {"data": data, **{k: v for k, v in report.items()
                                                 if k not in ("views", "reader_variants")}})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        np.savez_compressed(out.with_suffix(".npz"), before=before["p"], after=after["p"],
                            y=y, groups=groups, box_dependent=after["box_dependent"])
    return report
