"""Heat maps: the closed-form maps equal pytorch-grad-cam's GradCAM; other methods run cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rcdnet_desktop.core.explain import (
    GRADCAM_METHODS,
    METHOD_LABELS,
    closed_form_cams,
    gradcam_like_normalise,
    gradcam_maps,
    to_image_size,
)
from rcdnet_desktop.core.types import Box


@pytest.fixture(scope="module")
def model_input(engine, sample_malignant) -> torch.Tensor:
    return torch.from_numpy(engine.prepare(sample_malignant).tensor[None])


@pytest.fixture(scope="module")
def reference_gradcam(engine, model_input) -> np.ndarray:
    """pytorch-grad-cam's GradCAM maps (benign, malignant) on the real bundled model."""
    return gradcam_maps(engine.model, model_input, "gradcam")


def test_fast_maps_equal_pytorch_grad_cam_for_both_classes(engine, model_input,
                                                           reference_gradcam):
    model = engine.model
    with torch.inference_mode():
        raw = closed_form_cams(model.forward_features(model_input), model.fc.weight)
    fast = gradcam_like_normalise(raw[0].numpy(), 224)
    assert fast.shape == reference_gradcam.shape == (2, 224, 224)
    assert fast.dtype == np.float32
    # both maps carry signal, and they differ (they explain different classes)
    assert fast.max(axis=(1, 2)).min() > 0.99
    assert np.abs(fast[0] - fast[1]).max() > 0.1
    np.testing.assert_allclose(fast, reference_gradcam, rtol=0, atol=1e-5)


def test_engine_fast_maps_equal_gradcam_at_image_size(engine, sample_malignant):
    fast = engine.explain(sample_malignant)
    ref = engine.explain(sample_malignant, method="gradcam")
    for cls in (0, 1):
        np.testing.assert_allclose(fast.for_class(cls), ref.for_class(cls), rtol=0, atol=1e-5)
    assert fast.method == "fast" and ref.method == "gradcam"
    assert fast.prediction.p_malignant == pytest.approx(ref.prediction.p_malignant, abs=1e-6)


@pytest.mark.parametrize("method", sorted(GRADCAM_METHODS))
def test_grad_cam_methods_run_and_clean_up(engine, model_input, method):
    model = engine.model
    with torch.inference_mode():  # as callers on the fast path would be
        maps = gradcam_maps(model, model_input, method)
    assert maps.shape == (2, 224, 224) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1 and np.isfinite(maps).all()
    assert not model.training
    # hooks released, gradients freed
    assert not model.last_features._forward_hooks
    assert not model.last_features._backward_hooks
    assert all(p.grad is None for p in model.parameters())
    assert method in METHOD_LABELS


def test_gradcam_restores_training_mode(engine, model_input):
    model = engine.model
    model.train()
    try:
        gradcam_maps(model, model_input, "gradcam", classes=(1,))
        assert model.training
    finally:
        model.eval()


def test_unknown_method_is_refused(engine, model_input):
    with pytest.raises(ValueError, match="unknown heat-map method"):
        gradcam_maps(engine.model, model_input, "nope")


def test_closed_form_matches_autograd_gradients():
    """Grad-CAM weights (spatial mean of d logit / d A) are W / (h w): checked with autograd."""
    torch.manual_seed(0)
    feats = torch.rand(1, 8, 5, 6, requires_grad=True)
    fc = torch.nn.Linear(8, 2)
    for c in (0, 1):
        (grad,) = torch.autograd.grad(fc(feats.mean((2, 3)))[0, c], feats)
        expected = torch.relu((grad.mean((2, 3), keepdim=True) * feats).sum(1))[0]
        torch.testing.assert_close(closed_form_cams(feats, fc.weight)[0, c], expected)


def test_normalise_handles_flat_maps():
    out = gradcam_like_normalise(np.zeros((2, 7, 7), np.float32), 224)
    assert out.shape == (2, 224, 224) and not out.any()


def test_to_image_size_whole_image_and_roi():
    cam = np.linspace(0, 1, 224 * 224, dtype=np.float32).reshape(224, 224)
    full = to_image_size(cam, (300, 500))
    assert full.shape == (300, 500) and full.dtype == np.float32
    assert full.min() >= 0 and full.max() <= 1
    roi = Box(100, 50, 120, 80)
    placed = to_image_size(cam, (300, 500), roi)
    assert placed.shape == (300, 500)
    inside = placed[50:130, 100:220]
    assert inside.max() > 0.9
    outside = placed.copy()
    outside[50:130, 100:220] = 0
    assert not outside.any()
