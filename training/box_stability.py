"""Box stability: does P(malignant) hold when the lesion box is drawn a little differently?

For every image with a lesion mask, the mask's tight box (the box a careful reader would draw)
and the reader variants of it in :data:`READER_VARIANTS` (10% smaller, 10% larger, shifted by
10% of its size left, right, up and down) are classified through the application's own path:
:class:`~rcdnet_desktop.core.model.engine.InferenceEngine` on the bundle (ONNX Runtime on the CPU),
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
from rcdnet_desktop.core.metrics import binary_metrics, bootstrap_ci

from .data import load_samples, mask_box, read_mask

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
_SCALES3 = (BoxView(), BoxView(0.9), BoxView(1.1))
_SCALES5 = (BoxView(), BoxView(0.8), BoxView(0.9), BoxView(1.1), BoxView(1.25))


@dataclass(frozen=True)
class Candidate:
    """A way of classifying a box that ``--choose`` compares: its views, and whether a user's
    box is first replaced by the lesion region the localiser outlines around it."""

    views: tuple[BoxView, ...]
    snap_min_iou: float | None = None

    @property
    def cost(self) -> int:
        """Forward passes per box: one per view, and the localiser's when it snaps."""
        return len(self.views) + (self.snap_min_iou is not None)

    def section(self) -> dict:
        """The model card's ``box_views`` section for this candidate."""
        out: dict = {"views": [v.to_list() for v in self.views]}
        if self.snap_min_iou is not None:
            out["snap_min_iou"] = self.snap_min_iou
        return out


CANDIDATES: dict[str, Candidate] = {
    "as given": Candidate((BoxView(),)),
    "scales 0.9/1.1": Candidate(_SCALES3),
    "scales 0.8-1.25": Candidate(_SCALES5),
    "shifts 10%": Candidate((BoxView(), *_SHIFTS4)),
    "scales 0.9/1.1 + shifts 10%": Candidate((*_SCALES3, *_SHIFTS4)),
    "scales 0.8-1.25 + shifts 10%": Candidate((*_SCALES5, *_SHIFTS4)),
    "scales 0.8-1.25 + shifts 20%": Candidate((*_SCALES5, *_shifts(0.2))),
    "lesion box (IoU >= 0.3)": Candidate((BoxView(),), 0.3),
    "lesion box (IoU >= 0.5)": Candidate((BoxView(),), 0.5),
    "lesion box (IoU >= 0.3) + scales 0.9/1.1": Candidate(_SCALES3, 0.3),
    "lesion box (IoU >= 0.3) + scales 0.8-1.25": Candidate(_SCALES5, 0.3),
    "lesion box (IoU >= 0.5) + scales 0.8-1.25": Candidate(_SCALES5, 0.5),
}
"""What ``--choose`` compares: sets of views (each starts with the box as given), on the box
as drawn or on the lesion region the localiser outlines around it ("lesion box")."""
CHOICE_RULE = ("the candidate with the fewest forward passes per box whose internal-validation "
               "change-of-side share is <= 5%, mean spread <= 0.05 and AUC not below the box "
               "alone's; when none meets all three, the lowest change-of-side share (ties: "
               "lower spread, then fewer forward passes)")
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


def measure_default(engine, items: Sequence[Item], progress: bool = False) -> np.ndarray:
    """P(malignant) of every image with no box drawn: the engine's default (the automatic box,
    fused with the whole image when the card says so)."""
    from rcdnet_desktop.core.io import read_image

    return np.asarray([engine.predict(read_image(it.path).pixels).p_malignant
                       for it in _progress(items, progress)], dtype=np.float64)


def single_box_probabilities(engine, items: Sequence[Item], candidates: dict[str, Candidate],
                             progress: bool = False,
                             snappers: dict | None = None) -> dict[str, np.ndarray]:
    """For ``--choose``: P(malignant) of every candidate for every reader variant, from one
    forward pass per distinct box (``engine`` must classify boxes alone).

    ``snappers`` maps each ``snap_min_iou`` of the candidates to an engine that snaps with it
    (views off): its :meth:`~rcdnet_desktop.core.model.engine.InferenceEngine.prepare` says which
    box it classifies for each reader variant.

    Returns ``{candidate name: (n, len(READER_VARIANTS))}`` plus ``y`` and ``groups``.
    """
    snappers = snappers or {}
    readers = [v for _, v in READER_VARIANTS]
    out = {name: [] for name in candidates}
    ys, groups = [], []
    for it in _progress(items, progress):
        pixels, box = _image_and_box(it)
        if box is None:
            continue
        hw = pixels.shape[:2]
        drawn = {r: apply(box, r, hw) for r in readers}
        classified = {None: drawn}
        for t, snapper in snappers.items():
            classified[t] = {r: snapper.prepare(pixels, roi=b).classified
                             for r, b in drawn.items()}
        composed = {(name, r, v): apply(classified[c.snap_min_iou][r], v, hw)
                    for name, c in candidates.items() for r in readers for v in c.views}
        distinct = list(dict.fromkeys(composed.values()))
        # The guard's whole-image row does not change P: left out of the search's batches.
        preds = engine.predict_prepared([replace(engine.prepare(pixels, roi=b), whole=None)
                                         for b in distinct])
        logit = {b: _logit(p.p_malignant) for b, p in zip(distinct, preds, strict=True)}
        for name, c in candidates.items():
            out[name].append([_sigmoid(np.mean([logit[composed[(name, r, v)]]
                                                for v in c.views]))
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


def default_mode_figures(y, before, after, groups, cut_off: float, n_boot: int = 2000,
                         seed: int = 0) -> dict:
    """AUC, sensitivity and specificity with no box drawn, before and after, and the paired
    difference, each with its patient-bootstrap 95% CI."""

    def figures(yy, pp):
        m = binary_metrics(yy, pp, cut_off)
        return {"auc": m["auc"], "sensitivity": m["recall"], "specificity": m["specificity"]}

    def diff(yy, pp):
        a, b = figures(yy, pp[:, 1]), figures(yy, pp[:, 0])
        return {k: a[k] - b[k] for k in a}

    both = np.stack([before, after], axis=1)
    out = {}
    for name, fn, p in (("before", figures, before), ("after", figures, after),
                        ("after_minus_before", diff, both)):
        cis = bootstrap_ci(y, p, fn, groups=groups, n_boot=n_boot, seed=seed)
        out[name] = _rounded(fn(y, p), cis)
    return out


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
    """Apply :data:`CHOICE_RULE` to ``{name: stability(...)}`` of (some of) :data:`CANDIDATES`,
    "as given" among them."""
    base_auc = scores["as given"]["auc"]
    ok = [n for n, s in scores.items() if s["changes_side"] <= 0.05
          and s["mean_spread"] <= 0.05 and s["auc"] >= base_auc]
    if ok:
        return min(ok, key=lambda n: (CANDIDATES[n].cost, scores[n]["changes_side"]))
    return min(scores, key=lambda n: (round(scores[n]["changes_side"], 6),
                                      round(scores[n]["mean_spread"], 6), CANDIDATES[n].cost))


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

def engine_with(model_dir: Path | None, section: dict, folder: Path):
    """An ONNX engine on a copy of the bundle (its files linked into ``folder``) whose card has
    ``section`` as its ``box_views``."""
    from rcdnet_desktop.core.model.card import CARD_FILE, default_model_dir, load_card
    from rcdnet_desktop.core.model.engine import InferenceEngine
    from training.bundle_write import save_card

    src = Path(model_dir) if model_dir is not None else default_model_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name != CARD_FILE:
            (folder / f.name).symlink_to(f.resolve())
    save_card(replace(load_card(src), box_views=section), folder)
    return InferenceEngine(folder, device="cpu", backend="onnx")


def record(model_dir: Path, key: str, value, section: dict | None = None) -> None:
    """Write ``value`` under ``box_views[key]`` of the bundle's card (after replacing the
    section's settings by ``section``, when given); with new settings, the bundle's self-test
    goldens are measured again, since the samples' automatic boxes are now classified through
    them."""
    from rcdnet_desktop.core.model.card import load_card
    from training.bundle_write import save_card

    from .guard import record_self_test

    card = load_card(model_dir)
    new = dict(card.box_views) if section is None else {
        **{k: v for k, v in card.box_views.items() if k not in ("views", "snap_min_iou")},
        **section}
    new[key] = value
    card = save_card(replace(card, box_views=new), model_dir)
    if section is not None:
        record_self_test(card, Path(model_dir), None)


# --- commands --------------------------------------------------------------------------------

def record_choice(bundle: Path, report: dict, data: str) -> None:
    """Write a ``--choose`` report's choice into the bundle's card: its settings, and under
    ``chosen`` which data chose it, the rule and the figures of the box alone and the choice."""

    def figures(name):
        return {k: v for k, v in report["candidates"][name].items() if k != "forward_passes"}

    record(bundle, "chosen", {
        "on": data, "images": report["images"], "groups": report["groups"],
        "rule": report["rule"], "candidate": report["chosen"],
        "box_alone": figures("as given"), "chosen": figures(report["chosen"])},
        section=report["section"])


def run_choose(items: Sequence[Item], model_dir: Path | None, out: Path | None,
               n_boot: int = 2000, progress: bool = False, record_to: Path | None = None,
               data: str = "", names: Sequence[str] = ()) -> dict:
    """Compare :data:`CANDIDATES` (or those ``names``, with "as given") on ``items`` and pick
    one by :data:`CHOICE_RULE`; with ``record_to`` (a bundle folder), write the chosen settings
    into its card, saying which ``data`` chose them."""
    import tempfile

    from rcdnet_desktop.core.bands import suspicious_threshold
    from rcdnet_desktop.core.model.engine import InferenceEngine

    cands = {n: CANDIDATES[n] for n in CANDIDATES if not names or n in names or n == "as given"}
    engine = InferenceEngine(model_dir, device="cpu", backend="onnx", box_views=False)
    cut = suspicious_threshold(engine.card)
    with tempfile.TemporaryDirectory() as tmp:
        snaps = sorted({c.snap_min_iou for c in cands.values()} - {None})
        snappers = {t: engine_with(model_dir, Candidate((BoxView(),), t).section(),
                                   Path(tmp) / f"snap{t}") for t in snaps}
        probs = single_box_probabilities(engine, items, cands, progress, snappers)
    y, groups = probs["y"], probs["groups"]
    points = {n: stability(y, probs[n], cut) for n in cands}
    chosen = choose(points)
    report = {"images": int(len(y)), "groups": int(len(set(groups))), "cut_off": cut,
              "rule": CHOICE_RULE, "chosen": chosen, "section": cands[chosen].section(),
              "candidates": {n: {"forward_passes": c.cost,
                                 **with_ci(y, probs[n], groups, cut, n_boot)}
                             for n, c in cands.items()}}
    print(table({f"{n} ({c.cost} passes)": report["candidates"][n] for n, c in cands.items()}))
    print(f"chosen: {chosen}")
    if record_to is not None:
        record_choice(record_to, report, data)
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
    from rcdnet_desktop.core.model.engine import InferenceEngine

    before_engine = InferenceEngine(model_dir, device="cpu", backend="onnx", box_views=False)
    after_engine = InferenceEngine(model_dir, device="cpu", backend="onnx")
    cut = suspicious_threshold(after_engine.card)
    before = measure(before_engine, items, progress)
    after = measure(after_engine, items, progress)
    y, groups = after["y"], after["groups"]
    kept = [items[k] for k in after["kept"]]
    default = default_mode_figures(y, measure_default(before_engine, kept, progress),
                                   measure_default(after_engine, kept, progress), groups, cut,
                                   n_boot)
    report = {"images": int(len(y)), "malignant": int(y.sum()),
              "groups": int(len(set(groups))), "cut_off": cut,
              "reader_variants": [n for n, _ in READER_VARIANTS],
              "settings": {k: v for k, v in after_engine.card.box_views.items()
                           if k in ("views", "snap_min_iou")},
              "before": with_ci(y, before["p"], groups, cut, n_boot),
              "after": with_ci(y, after["p"], groups, cut, n_boot),
              "after_minus_before": paired(y, before["p"], after["p"], groups, cut, n_boot),
              "says_box_dependent_after": round(float(after["box_dependent"].mean()), 4),
              "no_box_drawn": default}
    print(table({"box alone": report["before"], "box views": report["after"],
                 "difference": report["after_minus_before"]}))
    print(f"as-drawn results that say they depend on the box: "
          f"{report['says_box_dependent_after']:.1%}")
    print("no box drawn (the engine's default: automatic box"
          + (", fused with the whole image):" if after_engine.fusion else "):"))
    for name, figs in default.items():
        print(f"  {name}: " + ", ".join(
            f"{k} {v['value']:.3f}" + (f" [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"
                                       if v["ci95"] else "") for k, v in figs.items()))
    if record_to is not None:
        record(record_to, key, {"data": data, **{k: v for k, v in report.items()
                                                 if k not in ("settings", "reader_variants")}})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        # Groups as numbers: the file travels with the docs, the sites' patient codes do not.
        np.savez_compressed(out.with_suffix(".npz"), before=before["p"], after=after["p"],
                            y=y, groups=np.unique(groups, return_inverse=True)[1],
                            box_dependent=after["box_dependent"])
    return report
