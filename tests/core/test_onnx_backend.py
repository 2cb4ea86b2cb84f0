"""The ONNX Runtime backend of InferenceEngine agrees with the torch backend on the real bundle."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.model import device
from rcdnet_desktop.core.model.bundle import load_localiser, load_model
from rcdnet_desktop.core.model.device import BACKEND_ENV
from rcdnet_desktop.core.model.engine import InferenceEngine
from rcdnet_desktop.core.model.explain import (
    closed_form_cams,
    closed_form_cams_np,
    contrastive_scores,
)
from rcdnet_desktop.core.types import ImageRecord
from tests.conftest import BUNDLED_MODEL_DIR, SAMPLES


@pytest.fixture(scope="module")
def engines() -> tuple[InferenceEngine, InferenceEngine]:
    """The bundled model with its localiser on both backends, sharing one torch model."""
    model, card = load_model(BUNDLED_MODEL_DIR)
    localiser = load_localiser(BUNDLED_MODEL_DIR, card)
    onnx = InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", model=model, card=card,
                           localiser=localiser, backend="onnx")
    torch_ = InferenceEngine(device="cpu", model=model, card=card, localiser=localiser,
                             backend="torch")
    return onnx, torch_


def _records() -> list[tuple[str, ImageRecord, int]]:
    out = [(p.name, read_image(p), 0) for p in sorted(SAMPLES.glob("*.png"))]
    assert len(out) >= 2
    out.append(("examples_ybr_color.dcm", read_image(get_testdata_file("examples_ybr_color.dcm")),
                3))
    return out


RECORDS = _records()


def test_bundled_engine_runs_onnx_on_the_cpu(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    eng = InferenceEngine(device="cpu")
    assert eng.backend == "onnx" and eng.device == "cpu-onnx"
    assert eng.device_note == "" and eng.device_name == "CPU (ONNX Runtime)"
    assert eng.predict(RECORDS[0][1]).device == "cpu-onnx"


def test_torch_backend_reports_cpu(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    eng = InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", backend="torch")
    assert eng.backend == "torch" and eng.device == "cpu"
    assert eng.predict(RECORDS[0][1]).device == "cpu"


def test_backend_from_the_environment(engines, monkeypatch):
    onnx, _ = engines
    monkeypatch.setenv(BACKEND_ENV, "torch")
    eng = InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", model=onnx.model, card=onnx.card)
    assert eng.device == "cpu"
    monkeypatch.setenv(BACKEND_ENV, "ONNX")
    eng = InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", model=onnx.model, card=onnx.card)
    assert eng.device == "cpu-onnx"
    monkeypatch.setenv(BACKEND_ENV, "tensorflow")
    with pytest.raises(ValueError, match="tensorflow"):
        InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", model=onnx.model, card=onnx.card)


def test_engines_without_a_bundle_folder_run_torch(engine, monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert engine.card.onnx  # the card names graphs, but no folder was given to read them
    assert InferenceEngine(model=engine.model, card=engine.card, device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="model_dir"):
        InferenceEngine(model=engine.model, card=engine.card, device="cpu", backend="onnx")


@pytest.mark.parametrize("name,record,frame", RECORDS, ids=[r[0] for r in RECORDS])
def test_onnx_and_torch_agree(engines, name, record, frame):
    onnx, torch_ = engines
    a, b = onnx.prepare(record, frame=frame), torch_.prepare(record, frame=frame)
    assert a.box == b.box and a.box_source == b.box_source and a.roi == b.roi
    if a.box_source == "auto":
        assert a.finding.confidence == pytest.approx(b.finding.confidence, abs=1e-4)
    assert a.tensor.dtype == np.float32 and np.array_equal(a.tensor, b.tensor)
    batch = np.stack([a.tensor])
    fo = onnx._runtime.classifier.forward(batch, True)
    ft = torch_._runtime.classifier.forward(batch, True)
    np.testing.assert_allclose(fo.guard, ft.guard, rtol=0,
                               atol=1e-4 * max(1.0, float(np.abs(ft.guard).max())))
    assert (fo.device, ft.device) == ("cpu-onnx", "cpu")
    np.testing.assert_allclose(fo.logits, ft.logits, rtol=0, atol=1e-4)
    # The heat maps' cells: the graph's feature map and its linear weight vs torch's.
    so = contrastive_scores(fo.features, onnx._runtime.classifier.head_weight())
    st = contrastive_scores(ft.features, torch_._runtime.classifier.head_weight())
    np.testing.assert_allclose(so, st, rtol=0, atol=1e-4 * max(1.0, float(np.abs(st).max())))

    mo, mt = onnx.explain_prepared([a])[0], torch_.explain_prepared([b])[0]
    po, pt = mo.prediction, mt.prediction
    assert po.device == "cpu-onnx" and pt.device == "cpu"
    assert po.p_malignant == pytest.approx(pt.p_malignant, abs=1e-5)
    assert po.p_benign == pytest.approx(pt.p_benign, abs=1e-5)
    assert po.label == pt.label and po.band == pt.band and po.suspicious == pt.suspicious
    assert po.box == pt.box and po.box_source == pt.box_source and po.fused == pt.fused
    assert po.warnings == pt.warnings
    for cam_o, cam_t in ((mo.benign, mt.benign), (mo.malignant, mt.malignant)):
        assert cam_o.shape == cam_t.shape == record.frame(frame).shape[:2]
        np.testing.assert_allclose(cam_o, cam_t, rtol=0, atol=1e-4)


def test_numpy_closed_form_equals_torch(engines):
    onnx, _ = engines
    rng = np.random.default_rng(0)
    w = onnx._runtime.classifier.head_weight()  # read from the verified graph
    feats = rng.gamma(1.0, 1.0, (2, w.shape[1], 7, 7)).astype(np.float32)
    np.testing.assert_allclose(closed_form_cams_np(feats, w),
                               closed_form_cams(torch.from_numpy(feats),
                                                torch.from_numpy(w)).numpy(),
                               rtol=1e-5, atol=1e-7)


def test_gradcam_methods_still_run_on_the_onnx_engine(engines):
    onnx, torch_ = engines
    record = RECORDS[1][1]
    mo = onnx.explain(record, method="gradcam")
    mt = torch_.explain(record, method="gradcam")
    assert mo.prediction.device == "cpu-onnx" and mo.method == "gradcam"
    np.testing.assert_allclose(mo.malignant, mt.malignant, rtol=0, atol=1e-4)


def test_a_changed_byte_in_the_graph_is_refused(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLED_MODEL_DIR, bundle)
    graph = bundle / "rcdnet.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0x01
    graph.write_bytes(bytes(data))
    for backend in ("auto", "onnx"):
        with pytest.raises(WeightsError, match=r"rcdnet\.onnx"):
            InferenceEngine(bundle, device="cpu", backend=backend)
    assert InferenceEngine(bundle, device="cpu", backend="torch").device == "cpu"


def test_a_missing_localiser_graph_is_refused(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLED_MODEL_DIR, bundle)
    (bundle / "localiser.onnx").unlink()
    with pytest.raises(WeightsError, match=r"localiser\.onnx"):
        InferenceEngine(bundle, device="cpu")


def test_without_onnxruntime_the_engine_runs_torch_and_says_so(engines, monkeypatch):
    onnx, _ = engines
    monkeypatch.setattr(device, "onnxruntime_missing", lambda: "No module named 'x'")
    eng = InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", model=onnx.model, card=onnx.card)
    assert eng.device == "cpu"
    assert "ONNX Runtime is not available" in eng.device_note
    pred = eng.predict(RECORDS[0][1], auto_box=False)
    assert any("ONNX Runtime" in w for w in pred.warnings)

