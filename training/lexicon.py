"""Fit the lexicon heads into a bundle and measure them honestly.

``rcdnet-train lexicon --bundle resources/model --data BrEaST --split split.csv
[--external BUS-UCLM] --out docs/training/lexicon``:

1. computes, for each BrEaST lesion, the classifier's pooled features of the padded box around
   its published mask (exactly as the application does for a drawn box);
2. per descriptor (:mod:`training.lexicon_data` says which classes were merged or left out),
   fits an L2-regularised multinomial logistic regression with balanced class weights on the
   training patients of the bundle's own split (one image per patient), its strength chosen by
   5-fold cross-validation on those patients alone;
3. measures accuracy, balanced accuracy and Cohen's kappa on the validation patients, with
   bootstrap 95% intervals, beside the majority-class baseline (the training split's most
   common class for every lesion: balanced accuracy 1/K, kappa 0). A descriptor is shown in
   the application only when it beats that baseline: :data:`RULE`;
4. writes the heads into the bundle (``lexicon.npz``, the card's ``lexicon`` section tied to
   the classifier weights' sha256);
5. measures, on the external site only (never fitted or tuned there), how the predicted
   descriptors alone separate benign from malignant: the score fixed in advance is the mean of
   P(shape irregular) and P(margin not circumscribed); AUC with an interval resampled by
   patient.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.guard import transform
from rcdnet_desktop.core.lexicon import DESCRIPTORS, LEXICON_VIEW
from rcdnet_desktop.core.metrics import auc_score, bootstrap_ci

from .lexicon_data import MISSING

LAMBDAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
FOLDS = 5
ITERATIONS = 1500
N_BOOT = 2000
RULE = ("shown only when, on the held-out validation patients, the lower end of the 95% "
        "bootstrap interval of Cohen's kappa is above 0 (the majority-class baseline's kappa) "
        "and the lower end of the balanced accuracy's interval is above 1/K (the baseline's "
        "balanced accuracy, K classes)")
SCORE = ("shape", 1, "margin", 1)  # P(irregular) and P(not circumscribed), fixed in advance


# --- the model -----------------------------------------------------------------------------------

def standardiser(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of the signed-log1p features (scale floored so no column divides by 0)."""
    x = transform(features)
    return x.mean(axis=0), np.maximum(x.std(axis=0), 1e-3)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_head(x: np.ndarray, y: np.ndarray, k: int, lam: float,
             iterations: int = ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on standardised ``x`` ``(N, D)``, labels ``y`` in
    ``0..k-1``: minimises the class-balanced mean cross-entropy + ``lam / 2 * |W|^2`` by
    accelerated gradient descent. Returns ``W (k, D)`` and ``b (k,)``."""
    n, d = x.shape
    counts = np.bincount(y, minlength=k).astype(np.float64)
    sw = np.where(counts[y] > 0, n / (k * np.maximum(counts[y], 1)), 0.0)
    sw /= sw.mean()
    onehot = np.eye(k)[y]
    lipschitz = 0.5 * sw.max() * (np.linalg.norm(x, 2) ** 2 + n) / n + lam
    step = 1.0 / lipschitz
    w = np.zeros((k, d))
    b = np.zeros(k)
    vw, vb, t = w.copy(), b.copy(), 1.0
    for _ in range(iterations):
        g = (_softmax(x @ vw.T + vb) - onehot) * sw[:, None] / n
        w_new = vw - step * (g.T @ x + lam * vw)
        b_new = vb - step * g.sum(axis=0)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        vw = w_new + (t - 1) / t_new * (w_new - w)
        vb = b_new + (t - 1) / t_new * (b_new - b)
        w, b, t = w_new, b_new, t_new
    return w, b


def predict_proba(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _softmax(x @ w.T + b)


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index of each row, every class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for c in np.unique(y):
        idx = rng.permutation(np.nonzero(y == c)[0])
        fold[idx] = np.arange(len(idx)) % folds
    return fold


def choose_lambda(x: np.ndarray, y: np.ndarray, k: int, seed: int = 0,
                  lambdas: Sequence[float] = LAMBDAS, folds: int = FOLDS) -> float:
    """The regularisation with the lowest class-balanced cross-validated log-loss."""
    fold = stratified_folds(y, folds, seed)
    counts = np.bincount(y, minlength=k)
    weight = len(y) / (k * np.maximum(counts[y], 1))
    best, best_loss = lambdas[0], np.inf
    for lam in lambdas:
        loss = 0.0
        for f in range(folds):
            tr, te = fold != f, fold == f
            w, b = fit_head(x[tr], y[tr], k, lam)
            p = predict_proba(x[te], w, b)[np.arange(te.sum()), y[te]]
            loss += float(np.sum(-np.log(np.clip(p, 1e-12, None)) * weight[te]))
        if loss < best_loss:
            best, best_loss = lam, loss
    return best


# --- the measurement ---------------------------------------------------------------------------

def kappa(y: np.ndarray, pred: np.ndarray) -> float:
    """Cohen's kappa of two labelings (0 when chance agreement is total)."""
    y, pred = np.asarray(y), np.asarray(pred)
    labels = np.union1d(y, pred)
    po = float(np.mean(y == pred))
    pe = float(sum(np.mean(y == c) * np.mean(pred == c) for c in labels))
    return 0.0 if pe >= 1 else (po - pe) / (1 - pe)


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y``."""
    y, pred = np.asarray(y), np.asarray(pred)
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def agreement(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(np.mean(np.asarray(y) == np.asarray(pred))),
            "balanced_accuracy": balanced_accuracy(y, pred), "kappa": kappa(y, pred)}


def measure(y: np.ndarray, pred: np.ndarray, majority: int, k: int, seed: int = 0,
            n_boot: int = N_BOOT) -> dict:
    """Agreement with bootstrap intervals, the baseline's, and whether the rule is met."""
    point = agreement(y, pred)
    ci = bootstrap_ci(y, pred, agreement, n_boot=n_boot, seed=seed)
    base = np.full_like(y, majority)
    base_ci = bootstrap_ci(y, base, lambda a, b: {"accuracy": float(np.mean(a == b))},
                           n_boot=n_boot, seed=seed)
    shown = bool(ci["kappa"][0] > 0 and ci["balanced_accuracy"][0] > 1 / k)
    return {**{m: {"value": point[m], "ci95": list(ci[m])} for m in point},
            "baseline": {"class": majority, "accuracy": {"value": float(np.mean(y == majority)),
                                                         "ci95": list(base_ci["accuracy"])},
                         "balanced_accuracy": 1 / k, "kappa": 0.0},
            "n": int(len(y)), "counts": np.bincount(y, minlength=k).tolist(), "shown": shown}


def descriptor_score(probs: dict[str, np.ndarray]) -> np.ndarray:
    """The descriptors-alone malignancy score fixed in advance: mean of P(shape irregular) and
    P(margin not circumscribed)."""
    a, i, b, j = SCORE
    return (probs[a][:, i] + probs[b][:, j]) / 2


def separation(y, score, classifier, groups=None, seed: int = 0) -> dict:
    """AUC of the descriptors-alone score and of the classifier's P(malignant) on the same
    boxes, and their paired difference, each with a 95% bootstrap interval (the same
    resamples; whole ``groups`` resampled when given)."""
    y = np.asarray(y)
    both = np.stack([np.asarray(score), np.asarray(classifier)], axis=1)

    def fn(a, p):
        d, c = auc_score(a, p[:, 0]), auc_score(a, p[:, 1])
        return {"descriptors": d, "classifier": c, "difference": d - c}

    point = fn(y, both)
    ci = bootstrap_ci(y, both, fn, groups=groups, n_boot=N_BOOT, seed=seed)
    return {**{k: {"value": v, "ci95": list(ci[k])} for k, v in point.items()},
            "n": int(len(y)), "malignant": int(np.sum(y))}


# --- fitting all heads ---------------------------------------------------------------------------

def fit_all(train_x: np.ndarray, train_labels: dict[str, np.ndarray], val_x: np.ndarray,
            val_labels: dict[str, np.ndarray], seed: int = 0, n_boot: int = N_BOOT):
    """Fit every descriptor's head on the training rows, measure it on the validation rows.
    Returns ``(arrays, descriptors)``: the weights file's arrays and the card's per-descriptor
    entries (name, classes, shown, regularisation, counts and metrics)."""
    mean, scale = standardiser(train_x)
    xt = (transform(train_x) - mean) / scale
    xv = (transform(val_x) - mean) / scale
    arrays = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}
    entries = []
    for name, classes in DESCRIPTORS.items():
        k = len(classes)
        keep_t, keep_v = train_labels[name] != MISSING, val_labels[name] != MISSING
        yt, yv = train_labels[name][keep_t], val_labels[name][keep_v]
        if np.bincount(yt, minlength=k).min() < FOLDS or len(np.unique(yv)) < 2:
            continue  # a class too rare to learn or to measure: the descriptor is left out
        lam = choose_lambda(xt[keep_t], yt, k, seed)
        w, b = fit_head(xt[keep_t], yt, k, lam)
        i = len(entries)
        arrays[f"w{i}"], arrays[f"b{i}"] = w.astype(np.float32), b.astype(np.float32)
        # measured with the stored (float32) weights, as the application runs them
        pred = predict_proba(xv[keep_v], arrays[f"w{i}"].astype(np.float64),
                             arrays[f"b{i}"].astype(np.float64)).argmax(axis=1)
        majority = int(np.bincount(yt, minlength=k).argmax())
        m = measure(yv, pred, majority, k, seed, n_boot)
        entries.append({"name": name, "classes": list(classes), "shown": m.pop("shown"),
                        "l2": lam, "train_counts": np.bincount(yt, minlength=k).tolist(),
                        "metrics": m})
    return arrays, entries


def localiser_agreement(probs: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                        entries: Sequence[dict], seed: int = 0) -> dict:
    """Kappa and balanced accuracy (with intervals) of each fitted head when the box is the
    localiser's rather than the mask's: what the application shows when no box is drawn.
    Measured only; the rule is not applied to it."""
    out: dict = {"descriptors": {}}
    for e in entries:
        keep = labels[e["name"]] != MISSING
        y = labels[e["name"]][keep]
        if len(np.unique(y)) < 2:  # nothing to measure agreement on
            out["descriptors"][e["name"]] = {"n": int(len(y))}
            continue
        pred = probs[e["name"]][keep].argmax(axis=1)
        ci = bootstrap_ci(y, pred, agreement, n_boot=N_BOOT, seed=seed)
        point = agreement(y, pred)
        out["descriptors"][e["name"]] = {
            m: {"value": point[m], "ci95": list(ci[m])} for m in ("kappa", "balanced_accuracy")
        } | {"n": int(len(y))}
    return out


# --- the command -----------------------------------------------------------------------------

def run(bundle: Path, data: Path, split_csv: Path, external: Sequence[Path], out_dir: Path,
        seed: int = 0, cache_dir: Path | None = None, progress: bool = True) -> dict:
    from dataclasses import replace

    from rcdnet_desktop.core.lexicon import load_lexicon
    from rcdnet_desktop.core.model.card import load_card
    from rcdnet_desktop.core.model.engine import InferenceEngine
    from rcdnet_desktop.core.npzfile import npz_bytes
    from training.bundle_write import save_card, save_lexicon

    from .data import load_samples, site_name
    from .lexicon_data import box_views, localiser_boxes, mask_boxes, read_site
    from .pipeline import data_roots
    from .split import read_split

    cache_dir = Path(cache_dir or Path(".cache") / "lexicon")
    card = load_card(bundle)
    if card.lexicon:  # the heads being replaced play no part (their file may be gone)
        save_card(replace(card, lexicon={}), bundle)
    engine = InferenceEngine(bundle, device="cpu", backend="onnx")
    site = site_name(data)
    paths, malignant, labels = read_site(data)
    side = {str(Path(r.path)): r.split
            for r in read_split(split_csv, data_roots([data])) if r.site == site}
    split = np.array([side.get(str(p), "") for p in paths])
    if not (split == "train").any() or not (split == "val").any():
        raise ValueError(f"{split_csv}: no training and validation rows of the site {site!r}")
    feats, p_cls = box_views(engine, paths, mask_boxes(paths), cache_dir / f"{site}.npz",
                             progress)
    tr, va = split == "train", split == "val"
    arrays, entries = fit_all(feats[tr], {n: v[tr] for n, v in labels.items()}, feats[va],
                              {n: v[va] for n, v in labels.items()}, seed)

    shown = [e for e in entries if e["shown"]]
    kappas = [e["metrics"]["kappa"]["value"] for e in shown]
    notes = (f"Suggestions learned from the radiologists' descriptors of one site ({site}, "
             f"{len(paths)} lesions, one image per patient: {int(tr.sum())} training and "
             f"{int(va.sum())} validation patients), not a BI-RADS assessment. On the "
             f"validation patients the {len(shown)} descriptors shown agree with the "
             f"radiologists with Cohen's kappa "
             + (f"{min(kappas):.2f} to {max(kappas):.2f}" if kappas else "-")
             + "; the others did not beat the majority-class baseline and are not shown. "
             "Their confidences are the heads' probabilities under balanced classes, not "
             "calibrated frequencies.")
    section = {"features": "guard_features", "view": LEXICON_VIEW, "transform": "signed_log1p",
               "dim": int(feats.shape[1]), "descriptors": entries, "rule": RULE,
               "fitted_on": {site: {"train": int(tr.sum()), "val": int(va.sum()),
                                    "one_image_per_patient": True}},
               "metrics": {}, "notes": notes}
    card = save_lexicon(engine.card, bundle, npz_bytes(arrays), section)
    lexicon = load_lexicon(Path(bundle), card.lexicon)
    assert lexicon is not None
    y = np.asarray(malignant)
    report: dict = {"site": site, "rule": RULE, "descriptors": entries,
                    "score": "mean of P(shape irregular) and P(margin not circumscribed)",
                    "separation": {f"{site} validation (internal)": separation(
                        y[va], descriptor_score(lexicon.probabilities(feats[va])), p_cls[va],
                        seed=seed)}}
    if engine.has_localiser:
        val_paths = [p for p, v in zip(paths, va, strict=True) if v]
        found = localiser_boxes(engine, val_paths)
        keep = np.array([b is not None for b in found])
        auto, _ = box_views(engine, [p for p, k in zip(val_paths, keep, strict=True) if k],
                            [b for b in found if b is not None],
                            cache_dir / f"{site}-localiser.npz", progress)
        report["localiser_box"] = localiser_agreement(
            lexicon.probabilities(auto), {n: v[va][keep] for n, v in labels.items()},
            entries, seed)
        report["localiser_box"]["without_box"] = int((~keep).sum())
    for root in external:
        samples = load_samples(root, include_masks=False)
        ext_paths = [s.path for s in samples]
        ext, ext_cls = box_views(engine, ext_paths, mask_boxes(ext_paths),
                                 cache_dir / f"{site_name(root)}.npz", progress)
        groups = [s.patient or str(s.path) for s in samples]
        report["separation"][f"{site_name(root)} (external, measured only)"] = separation(
            np.array([s.label for s in samples]), descriptor_score(lexicon.probabilities(ext)),
            ext_cls, groups, seed)
    section["metrics"] = {"separation": report["separation"], "score": report["score"]}
    if "localiser_box" in report:
        section["metrics"]["localiser_box"] = report["localiser_box"]
    save_lexicon(card, bundle, npz_bytes(arrays), section)
    write_report(report, out_dir)
    return report


def _ci(m: dict, digits: int = 2, sign: str = "") -> str:
    lo, hi = m["ci95"]
    f = f"{sign}.{digits}f"
    return f"{m['value']:{f}} [{lo:{f}}, {hi:{f}}]"


def table(entries: Sequence[dict]) -> list[str]:
    """The agreement table (markdown rows) of every descriptor."""
    lines = ["| descriptor | classes (validation counts) | kappa [95% CI] | balanced accuracy "
             "[95% CI] | accuracy [95% CI] | baseline accuracy (majority class) | shown |",
             "|---|---|---|---|---|---|---|"]
    for e in entries:
        m = e["metrics"]
        counts = ", ".join(f"{c} {n}" for c, n in zip(e["classes"], m["counts"], strict=True))
        base = m["baseline"]
        lines.append(f"| {e['name']} | {counts} | {_ci(m['kappa'])} | "
                     f"{_ci(m['balanced_accuracy'])} (baseline {base['balanced_accuracy']:.2f}) "
                     f"| {_ci(m['accuracy'])} | {_ci(base['accuracy'])} "
                     f"({e['classes'][base['class']]}) | {'yes' if e['shown'] else 'no'} |")
    return lines


def write_report(report: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "lexicon.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Lexicon descriptors: agreement with the radiologists", "",
             f"Validation patients of {report['site']} (held out from the heads and from the "
             f"classifier). A descriptor is {report['rule']}.", ""]
    lines += table(report["descriptors"])
    auto = report.get("localiser_box")
    if auto:
        lines += ["", "The same heads when the box is the one the bundled localiser finds (what "
                  "the application describes when no box is drawn; measured only, the rule uses "
                  f"the mask's box; {auto['without_box']} validation images had no box found "
                  "and are left out):", "",
                  "| descriptor | kappa, mask box | kappa, localiser's box | balanced accuracy, "
                  "localiser's box | n |", "|---|---|---|---|---|"]
        for e in report["descriptors"]:
            a = auto["descriptors"][e["name"]]
            kappa, bacc = ((_ci(a["kappa"]), _ci(a["balanced_accuracy"])) if "kappa" in a
                           else ("-", "-"))
            lines.append(f"| {e['name']} | {_ci(e['metrics']['kappa'])} | {kappa} | {bacc} | "
                         f"{a['n']} |")
    lines += ["", f"Descriptors alone as a malignancy score ({report['score']}; fixed in "
              "advance, nothing tuned on the external site) beside the classifier's "
              "P(malignant) on the same lesion boxes (mask box + margin). AUC with 95% "
              "bootstrap intervals (the same resamples for both and their paired difference; "
              "by patient on the external site):", "",
              "| images | n (malignant) | descriptors alone | classifier | difference |",
              "|---|---|---|---|---|"]
    for k, v in report["separation"].items():
        lines.append(f"| {k} | {v['n']} ({v['malignant']}) | {_ci(v['descriptors'], 3)} | "
                     f"{_ci(v['classifier'], 3)} | {_ci(v['difference'], 3, '+')} |")
    (out_dir / "lexicon.md").write_text("\n".join(lines) + "\n")
