"""Where the bundled resources (model, samples, icons) live: source tree, install or bundle."""

from __future__ import annotations

import sys
from pathlib import Path

SAMPLE_IMAGE = "busi_benign_sample.png"
"""The sample the viewer opens with no arguments and ``rcdnet self-test`` classifies."""


def resources_dir() -> Path:
    """The ``resources`` folder: inside a PyInstaller bundle, else beside the package."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def sample_path(name: str = SAMPLE_IMAGE) -> Path:
    """Path of a bundled sample image."""
    return resources_dir() / "samples" / name
