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

    from rcdnet_desktop.core.inference import InferenceEngine

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
