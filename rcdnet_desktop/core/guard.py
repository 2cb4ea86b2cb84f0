"""The input guard's learned part: does this image look like the training data at all?

RcdNet's backbone computes, on the way to its answer, a 320-channel map (the last MBConv block's
output, before the head); its mean over the image (``guard_features``, an output of the
classifier graph and of ``RcdNet.forward_outputs``) describes what kind of image it is looking
at. The guard measures the Mahalanobis distance of that vector, after a signed ``log1p``, to the
same vectors of the training images (whole images of the training split of every training
site), with a shrunk covariance. An image farther than the model card's ``threshold`` (a high
quantile of the internal validation images' distances) is flagged
``not_breast_ultrasound``. The later, classifier-specific features do not separate other kinds
of images from breast ultrasound (the training package's guard report gives the figures); this
layer does.

The statistics live in a small ``.npz`` file of the bundle (``mean``, ``precision``), named in
the card's ``guard`` section with its sha256, verified before it is read
(``numpy.load(allow_pickle=False)``), like the weights. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rcdnet_desktop.core import npzfile
from rcdnet_desktop.core.checks import NOT_BREAST_ULTRASOUND, Flag
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.numbers import pair_text

GUARD_FILE = "guard.npz"
GUARD_FEATURES = "guard_features"
GUARD_KEYS = ("file", "sha256", "features", "transform", "dim", "shrinkage", "threshold",
              "quantile", "fitted_on", "metrics", "weights_sha256")
WARN_UNFAMILIAR = ("the image does not look like the breast ultrasound images the model was "
                   "trained on (distance {distance}, limit {threshold}): another organ, "
                   "another modality or an unusual scanner setting? The result is unreliable")


def transform(features: np.ndarray) -> np.ndarray:
    """The signed ``log1p`` the guard applies to pooled features before measuring (float64)."""
    f = np.asarray(features, dtype=np.float64)
    return np.sign(f) * np.log1p(np.abs(f))


@dataclass(frozen=True)
class Guard:
    """Mean and precision matrix of the transformed training features, and the threshold."""

    mean: np.ndarray
    precision: np.ndarray
    threshold: float

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``features`` ``(N, D)`` to the training data."""
        d = transform(features) - self.mean
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, self.precision, d), 0.0))

    def flag(self, distance: float) -> Flag | None:
        """A ``not_breast_ultrasound`` flag when ``distance`` is above the threshold."""
        if not np.isfinite(distance) or distance > self.threshold:
            # One rounding for both, so a flagged distance never reads as equal to its limit.
            shown, limit = pair_text(float(np.nan_to_num(distance, nan=1e9)), self.threshold, 0)
            return Flag(NOT_BREAST_ULTRASOUND,
                        WARN_UNFAMILIAR.format(distance=shown, threshold=limit))
        return None


def fit(train: np.ndarray, val: np.ndarray, shrinkage: float,
        quantile: float) -> tuple[Guard, np.ndarray, np.ndarray]:
    """Fit the guard on ``train`` features; threshold at ``quantile`` (0-100) of ``val``'s
    distances. Returns the guard, the mean and the precision as float32 arrays to store."""
    x = transform(train)
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False)
    dim = cov.shape[0]
    cov = (1.0 - shrinkage) * cov + shrinkage * np.trace(cov) / dim * np.eye(dim)
    precision = np.linalg.inv(cov)
    mean32, precision32 = mean.astype(np.float32), precision.astype(np.float32)
    probe = Guard(mean32.astype(np.float64), precision32.astype(np.float64), float("inf"))
    threshold = float(np.percentile(probe.distance(val), quantile))
    return Guard(probe.mean, probe.precision, threshold), mean32, precision32


def npz_bytes(mean: np.ndarray, precision: np.ndarray) -> bytes:
    """The guard file's bytes (see :func:`rcdnet_desktop.core.npzfile.npz_bytes`)."""
    return npzfile.npz_bytes({"mean": mean, "precision": precision})


def validate_section(section: Any, bad) -> None:
    """Check the card's ``guard`` section (empty when the bundle has no guard)."""
    if not npzfile.check_section(section, "guard", GUARD_KEYS, bad,
                                 "the bundle has no input guard"):
        return
    if section["features"] != GUARD_FEATURES or section["transform"] != "signed_log1p":
        raise bad(f"guard.features must be {GUARD_FEATURES!r} with transform 'signed_log1p'")
    t = section["threshold"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not np.isfinite(t) or t <= 0:
        raise bad(f"guard.threshold must be a positive number, got {t!r}")


def load_guard(model_dir: Path, section: dict[str, Any]) -> Guard | None:
    """The bundle's guard, verified against the card's sha256 before it is parsed; None when the
    card has no ``guard`` section. Raises :class:`WeightsError` naming the file."""
    if not section:
        return None
    path = Path(model_dir) / section["file"]
    arrays = npzfile.read_verified(path, section["sha256"], "the input guard's file")
    mean, precision = arrays.get("mean"), arrays.get("precision")
    if mean is None or precision is None:
        raise WeightsError(f"{path}: the input guard's file lacks its mean or precision")
    dim = int(section["dim"])
    if mean.shape != (dim,) or precision.shape != (dim, dim) \
            or not (np.isfinite(mean).all() and np.isfinite(precision).all()):
        raise WeightsError(f"{path}: the input guard's arrays have shapes {mean.shape} and "
                           f"{precision.shape}, expected ({dim},) and ({dim}, {dim}), finite")
    return Guard(mean, precision, float(section["threshold"]))
