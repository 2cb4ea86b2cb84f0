"""Paired comparison of two models evaluated on the same validation images.

Two models' AUCs each come with a confidence interval, but overlapping intervals do not say
whether one model is better: both were measured on the same images, so their errors are
correlated. The paired figure resamples near-duplicate groups once per bootstrap draw and
recomputes both models on the same draw; the interval of the difference is what tells a real
gap from noise.

Inputs are the ``predictions_<mode>.npz`` files that :func:`training.evaluate.evaluate_model`
writes beside ``report.json`` (validation logits, labels and group ids). AUC and accuracy at
0.5 do not depend on the temperature (it scales both logits alike), so raw logits suffice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.metrics import auc_score, bootstrap_ci

from .evaluate import MODES


def load_predictions(report_dir: Path, mode: str) -> dict[str, np.ndarray]:
    """Logits, labels, groups and (when the evaluation recorded them) sites of one evaluation
    in one input mode."""
    path = Path(report_dir) / f"predictions_{mode}.npz"
    with np.load(path) as z:
        return {k: z[k] for k in ("logits", "y", "groups", "sites") if k in z.files}


def site_predictions(report_dirs: Sequence[Path], mode: str) -> dict[str, dict[str, np.ndarray]]:
    """``site -> {"logits", "y", "groups"}`` of one or more evaluations (each image's site as
    the evaluation recorded it)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for d in report_dirs:
        pred = load_predictions(d, mode)
        sites = pred["sites"]
        for site in sorted(set(sites.tolist())):
            sel = sites == site
            out[str(site)] = {k: pred[k][sel] for k in ("logits", "y", "groups")}
    return out


def _margin(logits: np.ndarray) -> np.ndarray:
    """logit(malignant) - logit(benign): ranks images exactly as p(malignant) does."""
    return logits[:, 1] - logits[:, 0]


def _differences(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Column 0: the model, column 1: the reference."""
    acc = ((scores >= 0).astype(int) == y[:, None]).mean(0)  # p >= 0.5, as evaluate
    return {"auc": auc_score(y, scores[:, 0]) - auc_score(y, scores[:, 1]),
            "accuracy": float(acc[0] - acc[1])}


def ensemble_predictions(report_dirs: Sequence[Path], mode: str) -> dict[str, np.ndarray]:
    """The mean logits of several evaluations of the same images (a small ensemble)."""
    preds = [load_predictions(d, mode) for d in report_dirs]
    for d, p in zip(report_dirs[1:], preds[1:], strict=True):
        _check_same_images(p, preds[0], d, report_dirs[0])
    return {**preds[0], "logits": np.mean([p["logits"] for p in preds], axis=0)}


def _check_same_images(a: dict, b: dict, a_dir, b_dir) -> None:
    if not (np.array_equal(a["y"], b["y"]) and np.array_equal(a["groups"], b["groups"])):
        raise ValueError(f"{a_dir} and {b_dir} were not evaluated on the same "
                         "images (labels or groups differ)")


def paired_difference(report_dir: Path | Sequence[Path], reference_dir: Path, mode: str,
                      n_boot: int = 2000, seed: int = 0,
                      reference_mode: str | None = None) -> dict[str, dict]:
    """Model minus reference, AUC and accuracy, each with a paired group-bootstrap 95% CI.

    ``report_dir`` may name several evaluations: their mean logits (an ensemble) are compared.
    ``reference_mode`` (default: ``mode``) compares two input modes, e.g. the automatic box
    against the whole image of one evaluation (``reference_dir == report_dir``).

    Raises ValueError when the two evaluations are not on the same images.
    """
    dirs = [Path(report_dir)] if isinstance(report_dir, str | Path) else list(report_dir)
    a = ensemble_predictions(dirs, mode)
    b = load_predictions(reference_dir, reference_mode or mode)
    _check_same_images(a, b, dirs, reference_dir)
    y = a["y"].astype(int)
    scores = np.stack([_margin(a["logits"]), _margin(b["logits"])], axis=1)
    point = _differences(y, scores)
    cis = bootstrap_ci(y, scores, _differences, groups=a["groups"], n_boot=n_boot, seed=seed)
    return {k: {"value": float(v), "ci95": [float(c) for c in cis[k]]} for k, v in point.items()}


def has_predictions(report_dir: Path) -> bool:
    return all((Path(report_dir) / f"predictions_{m}.npz").exists() for m in MODES)


def auc_with_ci(report_dirs: Sequence[Path], mode: str, n_boot: int = 2000,
                seed: int = 0) -> dict:
    """AUC with its group-bootstrap 95% CI of one evaluation (or the mean of several)."""
    p = ensemble_predictions([Path(d) for d in report_dirs], mode)
    y, m = p["y"].astype(int), _margin(p["logits"])
    ci = bootstrap_ci(y, m, lambda a, b: {"auc": auc_score(a, b)}, groups=p["groups"],
                      n_boot=n_boot, seed=seed)["auc"]
    return {"value": auc_score(y, m), "ci95": [float(c) for c in ci]}
