"""Folder review: one item per file, errors per item, cancellation, boxes and heat maps,
regular files only, and the time budget per file."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop.core import batch
from rcdnet_desktop.core.batch import review
from rcdnet_desktop.core.model.bundle import load_model
from rcdnet_desktop.core.model.engine import InferenceEngine
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


# --- only regular files are opened --------------------------------------------------------


@pytest.mark.timeout(60)  # opening the pipe would block forever
def test_pipes_and_devices_are_skipped_unopened(folder, engine):
    sub = folder / "sub"
    sub.mkdir()
    os.mkfifo(sub / "x.dcm")
    os.mkfifo(folder / "noext")  # no suffix: its content would have to be sniffed
    (folder / "zero.dcm").symlink_to("/dev/zero")
    items = list(review([folder], engine, recursive=True))
    by_name = {i.path.name: i for i in items}
    assert "noext" not in by_name
    for name, kind in (("x.dcm", "a named pipe (FIFO)"),
                       ("zero.dcm", "a symbolic link to a character device (/dev/zero)")):
        item = by_name[name]
        assert item.status == "skipped" and item.prediction is None
        assert item.error.endswith(f": it is {kind}, not a regular file; it was not opened")
        assert str(item.path) in item.error
    assert sum(i.status == "ok" for i in items) == 4


@pytest.mark.timeout(60)
def test_a_pipe_named_directly_or_in_a_flat_folder_is_skipped(tmp_path, engine):
    os.mkfifo(tmp_path / "a.png")
    direct, = review([tmp_path / "a.png"], engine)
    listed, = review([tmp_path], engine)
    assert direct.status == listed.status == "skipped"
    assert "named pipe" in listed.error


# --- time budget ------------------------------------------------------------------------------


@pytest.fixture
def stuck_reads(monkeypatch):
    """Make reading the named files block until the test ends (a read that never returns).

    No timing is asserted: a review that waited for a stuck file would never finish, and the
    test's timeout would fail it.
    """
    release = threading.Event()
    real = batch.read_image

    def install(stuck: set[str]) -> None:
        def read(path, *args, **kwargs):
            if Path(path).name in stuck:
                release.wait(120)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(batch, "read_image", read)

    yield install
    release.set()


@pytest.mark.timeout(60)
def test_a_file_over_its_time_budget_fails_and_the_run_goes_on(folder, engine, stuck_reads):
    stuck_reads({"img1.png"})
    items = list(review([folder], engine, chunk=2, file_timeout=2.0))
    assert [i.path.name for i in items] == [f"img{i}.png" for i in range(5)]
    assert [i.status for i in items] == ["ok", "failed", "failed", "ok", "ok"]  # img2 is broken
    assert items[1].error == (f"{items[1].path}: not classified: reading and preparing it took "
                              "more than 2 s, the time allowed per file")


@pytest.mark.timeout(60)
def test_abandoned_loaders_are_bounded(folder, engine, stuck_reads, monkeypatch):
    stuck_reads({f"img{i}.png" for i in range(5)})
    monkeypatch.setattr(batch, "MAX_ABANDONED", 2)
    items = list(review([folder], engine, chunk=1, file_timeout=0.2))
    assert all(i.status == "failed" for i in items)
    assert ["took more than" in i.error for i in items] == [True, True, False, False, False]
    assert "2 earlier files are still being read" in items[2].error


def test_no_budget_waits_for_a_slow_file(folder, engine, monkeypatch):
    real = batch.read_image
    monkeypatch.setattr(batch, "read_image", lambda *a, **k: (time.sleep(0.5), real(*a, **k))[1])
    items = list(review([folder / "img0.png"], engine, file_timeout=None))
    assert items[0].status == "ok"


# --- boxes from an ROI file -------------------------------------------------------------------


@pytest.mark.parametrize("box", [Box(100, 30, 60, 50), Box(0, 0, 10**300, 10), Box(0, 100, 5, 21)])
def test_a_box_outside_its_image_fails_the_file(folder, engine, box):
    item, = review([folder / "img0.png"], engine, rois={(folder / "img0.png").resolve(): box})
    assert item.status == "failed" and item.prediction is None
    assert "does not lie inside the image (150 x 120 pixels)" in item.error
    assert "width 1e+300," in item.error or box.w < 10**300


def test_a_socket_is_skipped(tmp_path, engine):
    import socket

    path = tmp_path / "s.png"
    if len(os.fsencode(path)) > 100:
        pytest.skip("the temporary path is too long for a socket")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        item, = review([tmp_path], engine)
    assert item.status == "skipped" and "it is a socket, not a regular file" in item.error
