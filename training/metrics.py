"""Temperature scaling for training; the classification metrics, bootstrap and calibration
are the app's (:mod:`rcdnet_desktop.core.metrics`), imported here so that training and the
app's local validation compute every figure the same way.
"""

from __future__ import annotations

import numpy as np

from rcdnet_desktop.core.metrics import (
    METRICS,
    auc_score,
    binary_metrics,
    bootstrap_ci,
    confusion,
    ece,
    reliability,
)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    prob = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(prob[np.arange(len(y)), np.asarray(y)], 1e-12, None))))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the NLL of ``softmax(logits / T)`` (bounded 1-D search on log T)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda t: nll(logits, y, float(np.exp(t))), bounds=(-3.0, 3.0),
                          method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))


__all__ = ["METRICS", "auc_score", "binary_metrics", "bootstrap_ci", "confusion", "ece",
           "fit_temperature", "nll", "reliability", "softmax"]
