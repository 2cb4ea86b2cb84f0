"""InferenceEngine on the real bundled model: predictions, heat maps, ROI, frames, devices."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rcdnet_desktop.core import result
from rcdnet_desktop.core.checks import WARN_BOX_TOO_SMALL, WARN_COLOUR, WARN_TOO_SMALL
from rcdnet_desktop.core.errors import InferenceError, WeightsError
from rcdnet_desktop.core.model.device import DEVICE_ENV, resolve_device
from rcdnet_desktop.core.model.engine import InferenceEngine
from rcdnet_desktop.core.preprocess import pad_roi
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, Prediction


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def _engine_like(engine, **card_changes) -> InferenceEngine:
    """A new engine sharing the session engine's model, with a modified card."""
    return InferenceEngine(model=engine.model, card=replace(engine.card, **card_changes),
                           device="cpu")


# --- predictions -----------------------------------------------------------------------------

def test_predict_on_real_sample(engine, sample_malignant):
    pred = engine.predict(sample_malignant)
    assert isinstance(pred, Prediction)
    assert pred.p_benign + pred.p_malignant == pytest.approx(1.0, abs=1e-6)
    assert 0 < pred.p_malignant < 1
    assert pred.device == "cpu"
    assert pred.model_version == engine.card.version
    assert pred.untrained == engine.card.untrained and pred.roi is None and pred.frame == 0
    assert pred.label in ("benign", "malignant")


def test_untrained_card_says_so_in_label_and_warnings(engine, sample_benign):
    pred = _engine_like(engine, untrained=True, version="0.0.0-untrained").predict(sample_benign)
    assert pred.untrained and result.headline(pred).startswith("UNTRAINED")
    assert any("UNTRAINED" in w for w in pred.warnings)


def test_grey_rgb_and_rgba_inputs_agree(engine, sample_benign):
    import cv2

    grey = cv2.cvtColor(sample_benign, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([sample_benign, np.full(grey.shape, 255, np.uint8)])
    p = [engine.predict(x).p_malignant for x in (grey, sample_benign, rgba)]
    assert p[0] == pytest.approx(p[1], abs=1e-6) and p[1] == pytest.approx(p[2], abs=1e-6)


def test_explain_maps_at_image_size(engine, sample_malignant):
    maps = engine.explain(sample_malignant)
    assert isinstance(maps, HeatMaps)
    h, w = sample_malignant.shape[:2]
    for m in (maps.benign, maps.malignant):
        assert m.shape == (h, w) and m.dtype == np.float32
        assert m.min() >= 0 and m.max() <= 1
    # One scale for both: the stronger map tops it; a suspicious result's map is never empty.
    assert max(maps.benign.max(), maps.malignant.max()) > 0.9
    assert maps.prediction.suspicious and maps.malignant.max() > 0
    assert maps.prediction == engine.predict(sample_malignant)


def test_explain_with_roi_is_zero_outside_padded_box(engine, sample_malignant):
    h, w = sample_malignant.shape[:2]
    box = Box(150, 100, 100, 80)
    maps = engine.explain(sample_malignant, roi=box)
    used = maps.prediction.roi
    assert used == Box(130, 84, 140, 112)  # 20 % of the size added on each side
    for m in (maps.benign, maps.malignant):
        assert m.shape == (h, w) and m.dtype == np.float32
        assert m.min() >= 0 and m.max() <= 1
        outside = m.copy()
        outside[used.y:used.y + used.h, used.x:used.x + used.w] = 0
        assert not outside.any()
    # Both maps on one scale (the stronger one tops it); the other class's map can be empty,
    # the map of the result (malignant when suspicious) cannot.
    assert max(maps.benign.max(), maps.malignant.max()) > 0.9
    assert maps.for_class(int(maps.prediction.suspicious)).any()
    # classifying the box is classifying the padded crop
    crop = sample_malignant[used.y:used.y + used.h, used.x:used.x + used.w]
    assert maps.prediction.p_malignant == pytest.approx(engine.predict(crop).p_malignant,
                                                        abs=1e-6)


def test_pad_roi_clips_to_image():
    assert pad_roi(None, (100, 200), 0.2) is None
    assert pad_roi(Box(10, 10, 50, 20), (100, 200), 0.2) == Box(0, 6, 70, 28)
    assert pad_roi((180, 90, 40, 40), (100, 200), 0.2) == Box(172, 82, 28, 18)
    assert pad_roi(Box(10, 10, 50, 20), (100, 200), 0.0) == Box(10, 10, 50, 20)
    # Per side (left, top, right, bottom), as training's random padding uses it.
    assert pad_roi(Box(10, 10, 50, 20), (100, 200), (0.0, 0.5, 0.2, 0.0)) == Box(10, 0, 60, 30)


@pytest.mark.parametrize("roi", [Box(10, 10, 0, 5), (5, 5, -3, 4), (700, 100, 10, 10),
                                 (-20, 10, 20, 10), (1, 2, 3), "box", (0, 0, float("nan"), 4)])
def test_bad_roi_raises(engine, sample_benign, roi):
    with pytest.raises(InferenceError):
        engine.predict(sample_benign, roi=roi)


def test_roi_margin_comes_from_card(engine, sample_benign):
    eng = _engine_like(engine, roi_margin=0.0)
    assert eng.predict(sample_benign, roi=Box(50, 60, 70, 80)).roi == Box(50, 60, 70, 80)


def test_bad_pixels_raise(engine):
    with pytest.raises(InferenceError, match="uint8"):
        engine.predict(np.zeros((100, 100), np.uint16))
    with pytest.raises(InferenceError):
        engine.predict(np.zeros((0, 10), np.uint8))
    with pytest.raises(InferenceError):
        engine.predict("not an image")


def test_multi_frame_classifies_the_requested_frame(engine, sample_malignant, sample_benign):
    frames = [sample_benign, sample_malignant, np.ascontiguousarray(sample_benign[::-1])]
    rec = ImageRecord(path=Path("cine.dcm"), pixels=frames[0], frame_count=3,
                      source_format="DICOM", frame_loader=lambda i: frames[i])
    for i in (0, 2):
        pred = engine.predict(rec, frame=i)
        assert pred.frame == i
        assert pred.p_malignant == pytest.approx(engine.predict(frames[i]).p_malignant,
                                                 abs=1e-6)
    assert engine.explain(rec, frame=1).prediction.frame == 1
    with pytest.raises(InferenceError, match="out of range"):
        engine.predict(rec, frame=3)
    with pytest.raises(InferenceError):
        engine.predict(sample_benign, frame=1)


def test_intended_use_warnings_are_reported(engine, sample_benign):
    doppler = sample_benign.copy()
    doppler[100:200, 150:300] = (220, 30, 30)
    assert WARN_COLOUR in engine.predict(doppler).warnings
    tiny = np.ascontiguousarray(sample_benign[:40, :40])
    assert WARN_TOO_SMALL.format(w=40, h=40, min_side=64) in engine.predict(tiny).warnings
    small_box = engine.predict(sample_benign, roi=Box(300, 300, 20, 30))
    assert small_box.roi == Box(296, 294, 28, 42)
    assert ("lesion box: " + WARN_BOX_TOO_SMALL.format(w=28, h=42, min_side=32)
            in small_box.warnings)
    assert not any(w.startswith("lesion box") for w in engine.predict(
        sample_benign, roi=Box(200, 200, 150, 150)).warnings)
    # A small lesion like many the model was trained on (padded, 58 px on its short side) is
    # not "too small": only a box smaller than any seen in training is.
    small_lesion = engine.predict(sample_benign, roi=Box(300, 300, 60, 42))
    assert min(small_lesion.roi.w, small_lesion.roi.h) < 64
    assert not any(w.startswith("lesion box") for w in small_lesion.warnings)


def test_temperature_scales_log_odds(engine, sample_malignant):
    p1 = _engine_like(engine, temperature=1.0).predict(sample_malignant).p_malignant
    p2 = _engine_like(engine, temperature=2.0).predict(sample_malignant).p_malignant
    assert _logit(p2) == pytest.approx(_logit(p1) / 2, abs=1e-4)


def test_trained_card_has_no_untrained_warning(engine, sample_benign):
    pred = _engine_like(engine, untrained=False, version="1.0.0").predict(sample_benign)
    assert not pred.untrained and pred.model_version == "1.0.0"
    assert not any("UNTRAINED" in w for w in pred.warnings)
    assert not result.headline(pred).startswith("UNTRAINED")


# --- batches and prepared inputs ------------------------------------------------------------

def test_predict_many_matches_single_predictions(engine, sample_benign, sample_malignant):
    images = [sample_benign, sample_malignant, sample_benign[50:, 30:]]
    rois = [None, Box(150, 100, 100, 80), None]
    single = [engine.predict(im, roi=r) for im, r in zip(images, rois, strict=True)]
    eng = InferenceEngine(model=engine.model, card=engine.card, device="cpu", batch_size=2)
    many = eng.predict_many(images, rois=rois)
    for a, b in zip(single, many, strict=True):
        assert b.p_malignant == pytest.approx(a.p_malignant, abs=1e-5)
        assert b.roi == a.roi and b.warnings == a.warnings
    maps = eng.explain_many(images, rois=rois)
    for im, r, m in zip(images, rois, maps, strict=True):
        ref = engine.explain(im, roi=r)
        np.testing.assert_allclose(m.malignant, ref.malignant, atol=1e-4)
        np.testing.assert_allclose(m.benign, ref.benign, atol=1e-4)
    with pytest.raises(ValueError):
        engine.predict_many(images, rois=[None])


def test_prepare_on_worker_threads(engine, sample_benign, sample_malignant):
    images = [sample_benign, sample_malignant, sample_benign[::2, ::2]]
    with ThreadPoolExecutor(3) as pool:
        prepared = list(pool.map(engine.prepare, images))
    preds = engine.predict_prepared(prepared)
    assert [p.p_malignant for p in preds] == pytest.approx(
        [engine.predict(im).p_malignant for im in images], abs=1e-5)


def test_fast_explain_is_one_forward_pass_without_autograd(engine, sample_benign):
    calls = []

    def hook(module, args, output):
        calls.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))

    handle = engine.model.last_features.register_forward_hook(hook)
    try:
        engine.explain(sample_benign)
    finally:
        handle.remove()
    assert calls == [(False, True)]


def test_unknown_method(engine, sample_benign):
    with pytest.raises(InferenceError, match="unknown heat-map method"):
        engine.explain(sample_benign, method="magic")
    assert "fast" in engine.methods and "gradcam++" in engine.methods


# --- weights ---------------------------------------------------------------------------------

def test_missing_bundle_refuses_to_start(tmp_path):
    with pytest.raises(WeightsError):
        InferenceEngine(tmp_path, device="cpu")


def test_model_and_card_go_together(engine):
    with pytest.raises(ValueError):
        InferenceEngine(model=engine.model)


# --- devices ---------------------------------------------------------------------------------

def _no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_resolve_device_auto_and_override(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    _no_gpu(monkeypatch)
    assert resolve_device() == (torch.device("cpu"), "")
    assert resolve_device("auto") == (torch.device("cpu"), "")
    dev, note = resolve_device("cuda")
    assert dev == torch.device("cpu") and "cuda was requested" in note
    dev, note = resolve_device("mps")
    assert dev == torch.device("cpu") and "MPS" in note
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device()[0] == torch.device("cuda")
    assert resolve_device("cuda:0")[0] == torch.device("cuda", 0)
    assert resolve_device("cpu")[0] == torch.device("cpu")
    assert resolve_device("cuda:1")[0] == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_device_env_var(monkeypatch, engine):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert resolve_device()[0] == torch.device("cpu")
    eng = InferenceEngine(model=engine.model, card=engine.card)
    assert eng.device == "cpu"
    monkeypatch.setenv(DEVICE_ENV, "CUDA")
    assert resolve_device()[0] == torch.device("cuda")
    assert resolve_device("cpu")[0] == torch.device("cpu")  # the argument wins


def test_requested_gpu_missing_is_reported(monkeypatch, engine, sample_benign):
    _no_gpu(monkeypatch)
    eng = InferenceEngine(model=engine.model, card=engine.card, device="cuda")
    assert eng.device == "cpu"
    pred = eng.predict(sample_benign)
    assert pred.device == "cpu"
    assert any("cuda was requested" in w for w in pred.warnings)


@pytest.fixture
def flaky_gpu_engine(engine, monkeypatch):
    """An engine that believes it runs on CUDA, whose GPU calls raise ``engine.gpu_error``."""
    eng = InferenceEngine(model=engine.model, card=engine.card, device="cpu")
    backend = eng._runtime.classifier  # the torch backend: the one place that falls back to the CPU
    monkeypatch.setattr(backend, "torch_device", torch.device("cuda"))
    eng.gpu_error = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    eng.gpu_calls = 0
    forward = backend._forward

    def fake_forward(model, device, batch, with_cams):
        if device.type == "cuda":
            eng.gpu_calls += 1
            raise eng.gpu_error
        return forward(model, device, batch, with_cams)

    gradcam = backend._gradcam

    def fake_gradcam(model, device, x, method):
        if device.type == "cuda":
            eng.gpu_calls += 1
            raise eng.gpu_error
        return gradcam(model, device, x, method)

    monkeypatch.setattr(backend, "_forward", fake_forward)
    monkeypatch.setattr(backend, "_gradcam", fake_gradcam)
    return eng


@pytest.mark.parametrize("error", [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
    RuntimeError("CUDA error: an illegal memory access was encountered"),
    RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"),
])
def test_gpu_failure_falls_back_to_cpu(flaky_gpu_engine, engine, sample_malignant, error):
    eng = flaky_gpu_engine
    eng.gpu_error = error
    assert eng.device == "cuda"
    ref = engine.explain(sample_malignant)
    maps = eng.explain(sample_malignant)
    assert eng.gpu_calls == 1
    pred = maps.prediction
    assert pred.device == "cpu"
    assert any("GPU" in w and "CPU" in w for w in pred.warnings)
    assert pred.p_malignant == pytest.approx(ref.prediction.p_malignant, abs=1e-6)
    np.testing.assert_allclose(maps.malignant, ref.malignant, atol=1e-6)
    assert eng.device == "cuda"  # the next call tries the GPU again
    assert eng.predict(sample_malignant).device == "cpu"
    assert eng.gpu_calls == 2


def test_gpu_failure_falls_back_for_grad_cam_methods(flaky_gpu_engine, sample_benign):
    maps = flaky_gpu_engine.explain(sample_benign, method="gradcam")
    assert flaky_gpu_engine.gpu_calls == 2  # the forward pass and the Grad-CAM pass
    assert maps.prediction.device == "cpu"
    assert sum("GPU" in w for w in maps.prediction.warnings) >= 1
    assert maps.benign.shape == sample_benign.shape[:2]


def test_other_errors_are_not_swallowed(flaky_gpu_engine, sample_benign):
    flaky_gpu_engine.gpu_error = RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    with pytest.raises(RuntimeError, match="shapes"):
        flaky_gpu_engine.predict(sample_benign)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_cuda_agrees_with_cpu(engine, sample_malignant):
    eng = InferenceEngine(model=engine.model, card=engine.card, device="cuda")
    assert eng.device.startswith("cuda")
    assert engine.model.fc.weight.device.type == "cpu"  # the shared CPU model is untouched
    pred = eng.predict(sample_malignant)
    assert pred.device.startswith("cuda")
    assert pred.p_malignant == pytest.approx(engine.predict(sample_malignant).p_malignant,
                                             abs=2e-3)
    maps = eng.explain(sample_malignant)
    assert maps.benign.shape == sample_malignant.shape[:2]
    ref = engine.explain(sample_malignant)
    np.testing.assert_allclose(maps.malignant, ref.malignant, atol=1e-3)
