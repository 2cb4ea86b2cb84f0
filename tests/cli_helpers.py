"""Small files and readers shared by the command-line tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def speckle_png(path: Path, seed: int = 0) -> Path:
    """A 150 x 120 grey PNG of gamma-distributed speckle (ultrasound-like texture)."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.gamma(2.0, 30.0, (120, 150)).clip(0, 255).astype(np.uint8)).save(path)
    return path


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV the program wrote (undecodable name bytes kept as they were)."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))
