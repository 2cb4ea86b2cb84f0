"""The classification metrics, bootstrap, calibration and temperature scaling are the app's
(:mod:`rcdnet_desktop.core.metrics`), imported here so that training, the app's local
validation and a site profile compute every figure the same way.
"""

from __future__ import annotations

from rcdnet_desktop.core.metrics import (
    METRICS,
    auc_score,
    binary_metrics,
    bootstrap_ci,
    confusion,
    ece,
    fit_temperature,
    nll,
    reliability,
    softmax,
)

__all__ = ["METRICS", "auc_score", "binary_metrics", "bootstrap_ci", "confusion", "ece",
           "fit_temperature", "nll", "reliability", "softmax"]
