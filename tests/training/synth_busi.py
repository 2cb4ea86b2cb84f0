"""Synthetic BUSI-like data and a tiny stand-in model for the training tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn


def synthetic_image(label: int, seed: int, size=(96, 80)) -> tuple[np.ndarray, np.ndarray]:
    """A speckled background with a lesion: bright round (benign) or dark spiky (malignant)."""
    rng = np.random.default_rng(seed)
    h, w = size
    # Spatially correlated speckle over a depth gradient, as in B-mode images.
    speckle = cv2.GaussianBlur(rng.normal(0, 60, (h, w)).astype(np.float32), (0, 0), 2.5)
    img = (60 + 60 * np.linspace(0, 1, h)[:, None] + speckle).clip(0, 255)
    mask = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.integers(30, w - 30)), int(rng.integers(30, h - 30))
    r = int(rng.integers(10, 16))
    if label == 0:
        cv2.ellipse(mask, (cx, cy), (r + 4, r), 0, 0, 360, 1, -1)
        img[mask > 0] = 200
    else:
        pts = np.array([(cx + (r if k % 2 else r // 2) * np.cos(k * np.pi / 5),
                         cy + (r if k % 2 else r // 2) * np.sin(k * np.pi / 5))
                        for k in range(10)], np.int32)
        cv2.fillPoly(mask, [pts], 1)
        img[mask > 0] = 20
    return img.astype(np.uint8), mask.astype(bool)


def write_busi(root: Path, n_per_class: int = 6, seed: int = 0) -> Path:
    """benign/, malignant/ (with _mask files) and a normal/ folder that must be ignored."""
    for label, name in enumerate(("benign", "malignant")):
        d = root / name
        d.mkdir(parents=True)
        for i in range(n_per_class):
            img, mask = synthetic_image(label, seed * 1000 + label * 100 + i)
            cv2.imwrite(str(d / f"{name} ({i + 1}).png"), img)
            cv2.imwrite(str(d / f"{name} ({i + 1})_mask.png"), mask.astype(np.uint8) * 255)
    (root / "normal").mkdir()
    cv2.imwrite(str(root / "normal" / "normal (1).png"), np.zeros((40, 40), np.uint8))
    return root


class TinyNet(nn.Module):
    """A few conv layers with RcdNet's interface: forward_features, fc, dropout, config."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(16, 2)
        self.config = {}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x).mean((2, 3))))
