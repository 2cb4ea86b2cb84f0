"""The viewer with the real bundled model: sample image, both maps, a lesion box, --self-test."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rcdnet_desktop.core.resources import sample_path
from rcdnet_desktop.core.types import Box
from tests.gui.gui_helpers import wait_maps


def test_real_engine_sample_image(make_window, engine, qtbot):
    w = make_window(engine)
    w.open_paths([sample_path()])
    key = wait_maps(qtbot, w, timeout=120000)
    rec = w.controller.current.record
    pred = w.prediction.prediction()
    maps = w.heatmaps.maps()
    assert pred.model_version == engine.model_version
    assert 0.0 <= pred.p_malignant <= 1.0
    assert pred.p_benign + pred.p_malignant == pytest.approx(1.0, abs=1e-5)
    assert maps.benign.shape == maps.malignant.shape == (rec.height, rec.width)
    assert maps.method == key.method == "fast"
    assert w.prediction.untrained_shown() == engine.untrained
    if engine.untrained:
        assert w.prediction.label.text().startswith("UNTRAINED")
    assert w.device_label.text() == "Device: CPU"

    box = Box(rec.width // 4, rec.height // 4, rec.width // 2, rec.height // 3)
    w.controller.set_box(box)
    key = wait_maps(qtbot, w, timeout=120000)
    assert key.roi == box
    assert "lesion box" in w.prediction.mode_text()
    # The predicted class's map carries the evidence; the other one may be empty.
    predicted = w.prediction.prediction().label_index
    assert "lesion box" in w.heatmaps.descriptions[predicted].text()


@pytest.mark.slow
def test_self_test_script():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "rcdnet_desktop.gui.app", "--self-test",
                           "--device", "cpu"], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert "self-test OK" in proc.stdout


def test_a_ct_scan_is_headed_outside_intended_use(make_window, qtbot):
    """Opened the user's way (the Open action, its file dialog answered), a CT DICOM gets the
    "Outside intended use" headline and list mark, with its numbers still shown."""
    from pathlib import Path

    import pydicom

    from rcdnet_desktop.core.model.engine import InferenceEngine

    ct = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    w = make_window(InferenceEngine(device="cpu"))
    w.ask_open_files = lambda: [str(ct)]
    w.act.open.trigger()
    wait_maps(qtbot, w, timeout=120000)
    pred = w.prediction.prediction()
    assert "not_breast_ultrasound" in pred.checks
    assert w.prediction.headline_text().startswith("Outside intended use")
    assert "P(malignant)" in w.prediction.probability.text()
    assert "outside intended use" in w.thumbs.item_text(w.controller.current.doc_id)


def test_the_lexicon_section_shows_under_the_prediction(make_window, qtbot):
    """Opened through the Open action, the bundled sample (its lesion box found
    automatically) shows "What the model sees (lexicon)" with each descriptor's confidence;
    a drawn box gives the descriptors of that box."""
    from rcdnet_desktop.core.lexicon import SECTION_TITLE
    from rcdnet_desktop.core.model.engine import InferenceEngine

    w = make_window(InferenceEngine(device="cpu"))
    w.ask_open_files = lambda: [str(sample_path())]
    w.act.open.trigger()
    wait_maps(qtbot, w, timeout=120000)
    pred = w.prediction.prediction()
    assert pred.box_source == "auto" and pred.descriptors
    text = w.prediction.lexicon_text()
    assert text.startswith(SECTION_TITLE)
    for d in pred.descriptors:
        assert f"{d.name}: {d.value} ({d.confidence:.0%})" in text
    assert "not a BI-RADS assessment" in text

    rec = w.controller.current.record
    box = Box(rec.width // 4, rec.height // 4, rec.width // 2, rec.height // 3)
    w.controller.set_box(box)
    wait_maps(qtbot, w, timeout=120000)
    pred = w.prediction.prediction()
    assert pred.box == box and pred.box_source == "user"
    assert all(f"{d.name}: {d.value}" in w.prediction.lexicon_text() for d in pred.descriptors)


def test_without_a_lesion_box_the_lexicon_section_asks_for_one(make_window, qtbot, tmp_path):
    """With no box (here a bundle without the lesion localiser) the image is classified whole:
    the section says the descriptors need a lesion box instead of guessing."""
    import json
    import shutil

    from rcdnet_desktop.core.lexicon import NEEDS_BOX, SECTION_TITLE
    from rcdnet_desktop.core.model.card import CARD_FILE
    from rcdnet_desktop.core.model.engine import InferenceEngine
    from rcdnet_desktop.core.resources import resources_dir

    bundle = tmp_path / "bundle"
    shutil.copytree(resources_dir() / "model", bundle)
    card = json.loads((bundle / CARD_FILE).read_text())
    card["localiser"] = {}
    card["onnx"].pop("localiser")
    (bundle / CARD_FILE).write_text(json.dumps(card))
    w = make_window(InferenceEngine(bundle, device="cpu"))
    w.ask_open_files = lambda: [str(sample_path())]
    w.act.open.trigger()
    wait_maps(qtbot, w, timeout=120000)
    assert w.prediction.prediction().box_source == "none"
    assert w.prediction.lexicon_text() == f"{SECTION_TITLE}\n{NEEDS_BOX}"
