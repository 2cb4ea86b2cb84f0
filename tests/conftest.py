"""Shared fixtures: the real bundled engine (one per session) and small model bundles."""

from __future__ import annotations

import shutil
from dataclasses import replace
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

    The classifier only: a lesion localiser the bundle may ship is left out, so tests that
    classify whole images keep doing so (the localiser's own tests give it explicitly); so are
    the card's views of a lesion box, so a box is classified alone (``tests/core/
    test_box_views.py`` gives them explicitly).
    """
    from rcdnet_desktop.core.model.bundle import load_model
    from rcdnet_desktop.core.model.engine import InferenceEngine

    model, card = load_model(BUNDLED_MODEL_DIR)
    return InferenceEngine(model=model, card=replace(card, box_views={}), device="cpu")


@pytest.fixture(scope="session")
def _float32_bundle_src(engine, tmp_path_factory) -> Path:
    """The bundled classifier re-saved as a float32 bundle (realistic activations, exact round
    trip).

    A randomly initialised RcdNet would do as well for the logic, but its activations shrink
    to denormal floats through 50 layers, which makes every CPU forward pass 10x slower.
    """
    from training.bundle_write import save_bundle

    out = tmp_path_factory.mktemp("float32_bundle")
    # The classifier alone, like ``engine``: the tests that need a localiser add their own
    # (``localiser_bundle``), so whole-image tests stay whole-image whatever the bundle ships.
    save_bundle(engine.model, replace(engine.card, localiser={}), out, dtype="float32")
    return out


@pytest.fixture
def model_bundle(_float32_bundle_src, tmp_path) -> Path:
    """A private copy (in tmp_path) of a valid float32 bundle, free to tamper with."""
    dst = tmp_path / "bundle"
    shutil.copytree(_float32_bundle_src, dst)
    return dst


LOCALISER_SEED = 7


def _tiny_localiser():
    """A seeded, untrained LesionLocaliser (no ImageNet weights, small decoder)."""
    import torch

    from rcdnet_desktop.core.model.localiser import LesionLocaliser

    torch.manual_seed(LOCALISER_SEED)
    return LesionLocaliser(pretrained=False, decoder_channels=8).eval()


@pytest.fixture(scope="session")
def tiny_localiser():
    """Factory of the seeded tiny localiser saved in ``localiser_bundle`` (same weights)."""
    return _tiny_localiser


@pytest.fixture(scope="session")
def _localiser_bundle_src(_float32_bundle_src, tmp_path_factory) -> Path:
    """The float32 bundle with a tiny seeded localiser added by ``save_localiser``."""
    from rcdnet_desktop.core.model.card import CARD_FILE, ModelCard
    from training.bundle_write import save_localiser

    out = tmp_path_factory.mktemp("localiser_bundle")
    shutil.copytree(_float32_bundle_src, out, dirs_exist_ok=True)
    card = replace(ModelCard.read(out / CARD_FILE),
                   localiser={"min_confidence": 0.6, "metrics": {"dice": 0.5}})
    save_localiser(_tiny_localiser(), card, out)
    return out


@pytest.fixture
def localiser_bundle(_localiser_bundle_src, tmp_path) -> Path:
    """A private copy (in tmp_path) of a bundle with a localiser, free to tamper with."""
    dst = tmp_path / "loc_bundle"
    shutil.copytree(_localiser_bundle_src, dst)
    return dst


@pytest.fixture(autouse=True)
def audit_log_in_tmp(tmp_path_factory, monkeypatch) -> Path:
    """Every test's audit trail goes to a temporary folder, never the user's own log."""
    from rcdnet_desktop.core.audit import AUDIT_DIR_ENV

    folder = tmp_path_factory.mktemp("audit")
    monkeypatch.setenv(AUDIT_DIR_ENV, str(folder))
    return folder
