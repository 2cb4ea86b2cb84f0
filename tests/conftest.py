"""Shared fixtures: the real bundled engine (one per session) and small model bundles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "resources" / "samples"
BUNDLED_MODEL_DIR = REPO / "resources" / "model"


def read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB pixels of an image file (test helper; the app reads with core.io)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def sample_malignant() -> np.ndarray:
    """The bundled BUSI malignant sample as uint8 RGB."""
    return read_rgb(SAMPLES / "busi_malignant_sample.png")


@pytest.fixture(scope="session")
def sample_benign() -> np.ndarray:
    """The bundled BUSI benign sample as uint8 RGB."""
    return read_rgb(SAMPLES / "busi_benign_sample.png")


@pytest.fixture(scope="session")
def engine():
    """The real bundled model on the CPU, shared by the whole session (load once).

    Tests must not change its state; build a new engine from ``engine.model`` and a modified
    card (``InferenceEngine(model=..., card=..., device="cpu")``) to vary settings.
    """
    from rcdnet_desktop.core.inference import InferenceEngine

    return InferenceEngine(BUNDLED_MODEL_DIR, device="cpu")


@pytest.fixture(scope="session")
def _random_bundle_src(tmp_path_factory) -> Path:
    """A float32 bundle of a seeded, randomly initialised RcdNet (no ImageNet load)."""
    import torch

    from rcdnet_desktop.core.model import RcdNet
    from rcdnet_desktop.core.weights import placeholder_card, save_bundle

    torch.manual_seed(0)
    model = RcdNet(pretrained=False).eval()
    out = tmp_path_factory.mktemp("random_bundle")
    save_bundle(model, placeholder_card(), out, dtype="float32")
    return out


@pytest.fixture
def random_bundle(_random_bundle_src, tmp_path) -> Path:
    """A private copy (in tmp_path) of a valid random-weights bundle, free to tamper with."""
    dst = tmp_path / "bundle"
    shutil.copytree(_random_bundle_src, dst)
    return dst
