"""Folder review: one item per file, errors per item, cancellation, boxes and heat maps."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop.core.batch import review
from rcdnet_desktop.core.bundle import load_model
from rcdnet_desktop.core.inference import InferenceEngine
from rcdnet_desktop.core.types import Box


@pytest.fixture(scope="module")
def engine() -> InferenceEngine:
    # The bundled classifier without a localiser: files without a box stay whole images.
    model, card = load_model()
    return InferenceEngine(model=model, card=card, device="cpu")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (120 + 10 * i, 150), np.uint8)).save(
            tmp_path / f"img{i}.png")
    (tmp_path / "img2.png").write_bytes(b"\xff\xd8 this is not a PNG")
    return tmp_path


def test_one_item_per_file_in_order_and_failures_do_not_stop_the_run(folder, engine):
    items = list(review([folder], engine, chunk=2))
    assert [i.path.name for i in items] == [f"img{i}.png" for i in range(5)]
    assert [i.status for i in items] == ["ok", "ok", "failed", "ok", "ok"]
    assert "img2.png" in items[2].error and items[2].prediction is None
    assert all(i.prediction.model_version == engine.model_version for i in items if i.prediction)


def test_batched_results_equal_single_predictions(folder, engine):
    items = [i for i in review([folder], engine, chunk=3) if i.prediction]
    for item in items:
        single = engine.predict(np.asarray(Image.open(item.path)))
        assert item.prediction.p_malignant == pytest.approx(single.p_malignant, abs=1e-5)


def test_cancel_stops_between_files_and_keeps_what_was_yielded(folder, engine):
    cancel = threading.Event()
    got = []
    for item in review([folder], engine, cancel=cancel, chunk=1):
        got.append(item)
        if len(got) == 2:
            cancel.set()
    assert [i.path.name for i in got] == ["img0.png", "img1.png"]
    assert all(i.status == "ok" for i in got)


def test_boxes_and_heat_maps(folder, engine):
    box = Box(20, 30, 60, 50)
    items = list(review([folder / "img0.png", folder / "img1.png"], engine, explain=True,
                        rois={(folder / "img0.png").resolve(): box}))
    boxed, whole = items
    assert boxed.prediction.roi is not None and whole.prediction.roi is None
    assert boxed.heatmaps.benign.shape == (120, 150)
    assert whole.heatmaps.malignant.shape == (130, 150)
    # Outside the (padded) box the map is empty.
    r = boxed.prediction.roi
    outside = np.ones((120, 150), bool)
    outside[r.y:r.y + r.h, r.x:r.x + r.w] = False
    assert boxed.heatmaps.malignant[outside].max() == 0


def test_an_unexpected_error_in_one_file_is_recorded(folder, engine, monkeypatch):
    real = engine.prepare

    def flaky(image, roi=None, frame=0, auto_box=True):
        if image.path.name == "img3.png":
            raise MemoryError("simulated")
        return real(image, roi=roi, frame=frame, auto_box=auto_box)

    monkeypatch.setattr(engine, "prepare", flaky)
    items = list(review([folder], engine))
    assert [i.status for i in items] == ["ok", "ok", "failed", "failed", "ok"]
    assert "MemoryError" in items[3].error and "img3.png" in items[3].error
