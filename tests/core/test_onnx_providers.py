"""ONNX Runtime's CUDA provider for a process given a GPU (``rcdnet archive --device cuda``'s
model workers), chosen and reported without a GPU here: onnxruntime's list of providers and
its session are stood in for."""

from __future__ import annotations

import onnxruntime
import pytest

from rcdnet_desktop.core.model.device import ONNX_CUDA_DEVICE, ONNX_DEVICE
from rcdnet_desktop.core.model.engine import InferenceEngine
from rcdnet_desktop.core.model.onnx_graphs import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    NO_CUDA_PROVIDER,
    ONNX_CUDA_ENV,
    onnx_providers,
)
from tests.conftest import BUNDLED_MODEL_DIR


def _offer(monkeypatch, *providers: str) -> None:
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(providers))


class _SessionOnCuda(onnxruntime.InferenceSession):
    """A CPU session that says it runs on CUDA, as it would on a GPU node."""

    def __init__(self, data, sess_options=None, providers=None, **kwargs):
        assert providers == [CUDA_PROVIDER, CPU_PROVIDER]
        super().__init__(data, sess_options=sess_options, providers=[CPU_PROVIDER], **kwargs)

    def get_providers(self):
        return [CUDA_PROVIDER, CPU_PROVIDER]


def test_without_a_gpu_asked_sessions_run_on_the_cpu(monkeypatch):
    monkeypatch.delenv(ONNX_CUDA_ENV, raising=False)
    _offer(monkeypatch, CUDA_PROVIDER, CPU_PROVIDER)
    assert onnx_providers() == ([CPU_PROVIDER], "")


def test_a_gpu_asked_takes_the_cuda_provider_first(monkeypatch):
    monkeypatch.setenv(ONNX_CUDA_ENV, "1")
    _offer(monkeypatch, "TensorrtExecutionProvider", CUDA_PROVIDER, CPU_PROVIDER)
    assert onnx_providers() == ([CUDA_PROVIDER, CPU_PROVIDER], "")


def test_a_gpu_asked_of_an_onnxruntime_without_cuda_falls_back_and_says_so(monkeypatch,
                                                                           sample_malignant):
    monkeypatch.setenv(ONNX_CUDA_ENV, "1")
    _offer(monkeypatch, "AzureExecutionProvider", CPU_PROVIDER)
    assert onnx_providers() == ([CPU_PROVIDER], NO_CUDA_PROVIDER)

    engine = InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", backend="onnx")
    assert engine.device == ONNX_DEVICE
    assert NO_CUDA_PROVIDER in engine.device_note
    pred = engine.predict(sample_malignant)
    assert pred.device == ONNX_DEVICE and NO_CUDA_PROVIDER in pred.warnings


def test_cuda_offered_but_not_loaded_falls_back_and_says_so(monkeypatch):
    """onnxruntime lists CUDA but its session cannot load it (no CUDA libraries): the session
    runs on the CPU, and the engine says so rather than claim the GPU."""
    monkeypatch.setenv(ONNX_CUDA_ENV, "1")
    _offer(monkeypatch, CUDA_PROVIDER, CPU_PROVIDER)
    engine = InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", backend="onnx")
    assert engine.device == ONNX_DEVICE
    assert NO_CUDA_PROVIDER in engine.device_note


def test_sessions_on_cuda_report_the_gpu(monkeypatch, sample_malignant):
    monkeypatch.setenv(ONNX_CUDA_ENV, "1")
    _offer(monkeypatch, CUDA_PROVIDER, CPU_PROVIDER)
    monkeypatch.setattr(onnxruntime, "InferenceSession", _SessionOnCuda)
    engine = InferenceEngine(BUNDLED_MODEL_DIR, device="cpu", backend="onnx")
    assert engine.device == ONNX_CUDA_DEVICE and engine.device_note == ""
    assert engine.device_name == "GPU (ONNX Runtime)"
    pred = engine.predict(sample_malignant)
    assert pred.device == ONNX_CUDA_DEVICE
    assert not any("GPU" in w for w in pred.warnings)


@pytest.mark.parametrize("value", ["", "0", "yes"])
def test_only_1_asks_for_the_gpu(monkeypatch, value):
    monkeypatch.setenv(ONNX_CUDA_ENV, value)
    _offer(monkeypatch, CUDA_PROVIDER, CPU_PROVIDER)
    assert onnx_providers() == ([CPU_PROVIDER], "")
