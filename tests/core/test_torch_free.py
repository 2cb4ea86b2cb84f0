"""The default path (ONNX Runtime on the CPU) never imports torch.

Each check runs in a fresh interpreter, because this test session has torch imported already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_CLASSIFY = textwrap.dedent("""
    import json, sys
    import numpy as np
    import rcdnet_desktop, rcdnet_desktop.cli, rcdnet_desktop.gui.app  # module import only
    from rcdnet_desktop.core.model.engine import InferenceEngine
    from rcdnet_desktop.core.io import read_image
    from rcdnet_desktop.core.resources import sample_path

    engine = InferenceEngine()
    record = read_image(sample_path())
    pred = engine.predict(record)
    maps = engine.explain(record)
    user = engine.predict(record, roi=(10, 10, 80, 60))
    whole = engine.predict(record, auto_box=False)
    print(json.dumps({
        "device": engine.device, "backend": engine.backend,
        "p": [pred.p_benign, pred.p_malignant], "box_source": pred.box_source,
        "fused": pred.fused, "has_localiser": engine.has_localiser,
        "maps_same": bool(np.isclose(maps.prediction.p_malignant, pred.p_malignant)),
        "maps_shape": list(maps.malignant.shape), "image_shape": list(record.frame(0).shape),
        "maps_range": [float(maps.malignant.min()), float(maps.malignant.max()),
                       float(maps.benign.min()), float(maps.benign.max())],
        "user": user.box_source, "whole": whole.box_source,
        "torch": "torch" in sys.modules,
        "torch_mods": sorted(m for m in sys.modules if m.split(".")[0] == "torch")[:5],
    }))
""")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RCDNET_BACKEND", "RCDNET_MODEL_DIR")}
    env["RCDNET_DEVICE"] = "cpu"  # a GPU on the test machine would rightly choose torch
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=300)


def test_default_classification_does_not_import_torch():
    proc = _run(["-c", _CLASSIFY])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torch"] is False, out["torch_mods"]
    assert out["device"] == "cpu-onnx" and out["backend"] == "onnx"
    p_benign, p_malignant = out["p"]
    assert 0.0 <= p_malignant <= 1.0 and abs(p_benign + p_malignant - 1.0) < 1e-6
    assert out["has_localiser"] and out["box_source"] in ("auto", "none")
    assert out["maps_same"] and out["maps_shape"] == out["image_shape"][:2]
    lo_m, hi_m, lo_b, hi_b = out["maps_range"]
    assert 0.0 <= lo_m <= hi_m <= 1.0 and 0.0 <= lo_b <= hi_b <= 1.0 and max(hi_m, hi_b) > 0
    assert out["user"] == "user" and out["whole"] == "none"


def test_cli_classify_folder_does_not_import_torch(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from rcdnet_desktop.cli import main
        rc = main(["classify", {str(REPO / "resources" / "samples")!r},
                   "--csv", {str(tmp_path / "out.csv")!r}])
        print("RC", rc, "TORCH", "torch" in sys.modules)
    """)
    proc = _run(["-c", script])
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last == "RC 0 TORCH False", proc.stdout + proc.stderr
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert len(rows) >= 3 and "cpu-onnx" in rows[1]


@pytest.mark.parametrize("method", ["gradcam"])
def test_gradcam_method_loads_torch_lazily(method):
    script = textwrap.dedent(f"""
        import sys
        from rcdnet_desktop.core.model.engine import InferenceEngine
        from rcdnet_desktop.core.io import read_image
        from rcdnet_desktop.core.resources import sample_path
        engine = InferenceEngine()
        before = "torch" in sys.modules
        maps = engine.explain(read_image(sample_path()), method={method!r})
        print("BEFORE", before, "AFTER", "torch" in sys.modules, maps.method)
    """)
    proc = _run(["-c", script])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"BEFORE False AFTER True {method}"


def test_missing_torch_is_explained_in_plain_words(monkeypatch):
    from rcdnet_desktop.core.errors import InferenceError
    from rcdnet_desktop.core.model import device

    monkeypatch.setattr(device, "torch_available", lambda: False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    with pytest.raises(InferenceError, match=r"needs PyTorch.*rcdnet-desktop\[torch\]"):
        device.require_torch("the heat-map method 'Grad-CAM++'")


_VIEWER = textwrap.dedent("""
    import json, sys, tempfile
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication
    from rcdnet_desktop.core.resources import sample_path
    from rcdnet_desktop.gui.window.main_window import MainWindow
    from rcdnet_desktop.gui.settings import Settings

    app = QApplication([])
    ini = tempfile.NamedTemporaryFile(suffix=".ini", delete=False).name
    window = MainWindow(settings=Settings(QSettings(ini, QSettings.Format.IniFormat)),
                        device="cpu")
    window.show()
    window.open_paths([sample_path()])
    import time
    deadline = time.time() + 120
    while time.time() < deadline and (window.controller.engine is None
                                      or not window.act_outline.isEnabled()):
        QCoreApplication.processEvents()
        time.sleep(0.01)
    print(json.dumps({"engine": window.controller.engine is not None,
                      "outline_enabled": window.act_outline.isEnabled(),
                      "torch": "torch" in sys.modules}))
    window.close()
""")


def test_viewer_start_does_not_import_torch():
    """The window enables the outline action from the engine without loading torch's weights
    (asking the engine for its torch localiser would import torch and cost a second)."""
    out = _run(["-c", _VIEWER])
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"engine": True, "outline_enabled": True, "torch": False}, got
