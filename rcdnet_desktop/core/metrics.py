"""Classification metrics with bootstrap confidence intervals, and calibration, in numpy.

No Qt and no torch here: the training package's evaluation and the app's local validation
(:mod:`rcdnet_desktop.core.validation`) compute their figures with these same functions.

Bootstrap: 95% percentile intervals from ``n_boot`` resamples (seeded). When group ids are
given (patients, near-duplicate groups), whole groups are resampled (a cluster bootstrap),
because images of one group are not independent; otherwise single images are resampled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "auc")

Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95% interval."""


def confusion(y: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    """(tn, fp, fn, tp) with malignant (1) as the positive class."""
    y, pred = np.asarray(y).astype(int), np.asarray(pred).astype(int)
    tp = int(((y == 1) & (pred == 1)).sum())
    tn = int(((y == 0) & (pred == 0)).sum())
    fp = int(((y == 0) & (pred == 1)).sum())
    fn = int(((y == 1) & (pred == 0)).sum())
    return tn, fp, fn, tp


def auc_score(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by the rank (Mann-Whitney) formula with tie correction; NaN for one class."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n0 == 0 or n1 == 0:
        return float("nan")
    # Average ranks (ties share the mean rank), 1-based.
    _, inv, counts = np.unique(p, return_inverse=True, return_counts=True)
    r = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def roc_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve: false- and true-positive rates at every distinct threshold, from (0, 0)
    to (1, 1). Empty arrays when a class is missing."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n0 == 0 or n1 == 0:
        return np.array([]), np.array([])
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1]  # the end of each run of ties
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / n0], np.r_[0.0, tp / n1]


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall (sensitivity), specificity, F1 and AUC of p(malignant)."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion(y, pred)

    def div(a, b):
        return a / b if b else 0.0

    precision = div(tp, tp + fp)
    recall = div(tp, tp + fn)
    return {
        "accuracy": div(tp + tn, len(y)),
        "precision": precision,
        "recall": recall,
        "specificity": div(tn, tn + fp),
        "f1": div(2 * precision * recall, precision + recall),
        "auc": auc_score(y, p),
    }


def bootstrap_ci(y: np.ndarray, p: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], dict],
                 groups: Sequence | None = None, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile CIs of every value ``fn(y, p)`` returns.

    With ``groups``, each resample draws as many groups as there are, with replacement, and
    takes every image of each group drawn. Resamples holding one class only are skipped (no
    AUC, no sensitivity or no specificity there); NaN values are ignored.
    """
    y, p = np.asarray(y), np.asarray(p)
    rng = np.random.default_rng(seed)
    if groups is None:
        clusters = [np.array([i]) for i in range(len(y))]
    else:
        g = np.asarray(groups)
        clusters = [np.nonzero(g == u)[0] for u in np.unique(g)]
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        pick = rng.integers(0, len(clusters), len(clusters))
        idx = np.concatenate([clusters[k] for k in pick])
        if len(np.unique(y[idx])) < 2:
            continue
        for k, v in fn(y[idx], p[idx]).items():
            samples.setdefault(k, []).append(v)
    a = (1 - level) / 2
    out = {}
    for k, v in samples.items():
        v = np.asarray(v, dtype=float)
        if np.isnan(v).all():
            out[k] = (float("nan"), float("nan"))
        else:
            out[k] = (float(np.nanquantile(v, a)), float(np.nanquantile(v, 1 - a)))
    return out


def ece(y: np.ndarray, prob: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-label confidence, equal-width bins."""
    prob = np.asarray(prob)
    conf = prob.max(1)
    pred = prob.argmax(1)
    correct = (pred == np.asarray(y)).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def reliability(y: np.ndarray, prob: np.ndarray, n_bins: int = 10):
    """Per-bin (mean confidence, accuracy, count) for a reliability diagram."""
    conf = prob.max(1)
    correct = (prob.argmax(1) == np.asarray(y)).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            out.append((float(conf[sel].mean()), float(correct[sel].mean()), int(sel.sum())))
    return out


def two_class(p_malignant: np.ndarray) -> np.ndarray:
    """``(N, 2)`` probabilities (benign, malignant) from P(malignant), for :func:`ece`."""
    p = np.asarray(p_malignant, dtype=float)
    return np.stack([1.0 - p, p], axis=1)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (NaN, NaN when ``n`` is 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    phat = k / n
    den = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / den
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


__all__ = ["METRICS", "Z95", "auc_score", "binary_metrics", "bootstrap_ci", "confusion", "ece",
           "reliability", "roc_points", "two_class", "wilson"]
