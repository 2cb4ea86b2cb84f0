"""Heat maps: the closed-form maps equal pytorch-grad-cam's GradCAM; other methods run cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rcdnet_desktop.core.model.explain import (
    GRADCAM_METHODS,
    METHOD_LABELS,
    closed_form_cams,
    contrastive_scores,
    decision_evidence,
    gradcam_like_normalise,
    gradcam_maps,
    split_evidence,
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


def test_contrastive_closed_form_equals_pytorch_grad_cam(engine, model_input):
    """ReLU(+-s) of the cells' shares of logit_m - logit_b is GradCAM for the targets
    logit_m - logit_b and logit_b - logit_m (to float precision, after its normalisation)."""
    model = engine.model
    with torch.inference_mode():
        feats = model.forward_features(model_input).numpy()
    raw = split_evidence(contrastive_scores(feats, model.fc.weight.detach().numpy()))[0]
    fast = gradcam_like_normalise(raw, 224)
    ref = gradcam_maps(model, model_input, "gradcam", contrast=True)
    assert fast.shape == ref.shape == (2, 224, 224)
    assert fast.max() > 0.99
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-5)


def test_engine_fast_maps_are_the_views_cells_relative_to_the_cut_off(engine, sample_malignant):
    """Recomputed with autograd from the torch model: the classified view's cells (gradient of
    logit_m - logit_b times the feature map), plus one uniform term so that they add up to the
    (fused) margin over the card's cut-off, split by sign, resized, one scale for both."""
    import cv2

    from rcdnet_desktop.core.bands import suspicious_threshold

    maps = engine.explain(sample_malignant)
    prep = engine.prepare(sample_malignant)
    views = [prep.tensor] + ([prep.whole] if prep.fuse else [])
    model = engine.model
    with torch.inference_mode(False), torch.enable_grad():
        with torch.no_grad():
            feats = model.forward_features(torch.from_numpy(np.stack(views)))
        feats = feats.clone().requires_grad_(True)
        logits = model.head(feats)
        score = logits[:, 1] - logits[:, 0]
        (grad,) = torch.autograd.grad(score.sum(), feats)
    cells = (grad * feats).sum(1)[0].detach().numpy().astype(np.float64)
    t, temp = suspicious_threshold(engine.card), engine.card.temperature
    margin = float(score.detach().numpy().mean()) - temp * np.log(t / (1 - t))
    share = 0.5 if prep.fuse else 1.0
    c = share * cells + (margin - share * cells.sum()) / cells.size
    parts = [np.maximum(-c, 0), np.maximum(c, 0)]
    parts = [m - m.min() for m in parts]  # an even floor says nothing about where
    raw = np.stack([np.maximum(cv2.resize(m.astype(np.float32), (224, 224)), 0)
                    for m in parts])
    raw /= raw.max()
    for k in (0, 1):
        expected = to_image_size(raw[k], prep.image_hw, prep.roi)
        np.testing.assert_allclose(maps.for_class(k), expected, rtol=0, atol=1e-4)
    assert maps.method == "fast" and maps.prediction.suspicious == (margin >= 0)
    assert maps.malignant.max() > 0.9  # suspicious: its evidence is there, at the top


@pytest.mark.parametrize("margin", [-2.0, -0.01, 0.01, 3.0])
@pytest.mark.parametrize("mean", [-0.5, 0.5])
def test_the_results_map_always_holds_evidence(margin, mean):
    """Whatever the cells say on their own, the malignant map is not empty when the result is
    suspicious (margin >= 0) and the benign map is not empty below the cut-off."""
    rng = np.random.default_rng(0)
    scores = rng.normal(mean, 0.05, (7, 7)).astype(np.float32)  # all one sign
    maps = decision_evidence(scores, margin, (7, 7))  # no resizing: the cells themselves
    assert maps.shape == (2, 7, 7) and maps.dtype == np.float32
    assert maps.max() == pytest.approx(1.0)
    assert maps[1 if margin >= 0 else 0].max() > 0
    # Cells split by sign: never both maps at one place.
    assert not (maps[0] * maps[1]).any() and maps.min() == 0


def test_a_map_whose_cells_all_lean_one_way_loses_its_even_floor():
    """Far above the cut-off every cell is malignant evidence: the even part says nothing
    about where, so the map shows the cells' differences (and the benign map is empty)."""
    scores = np.full((7, 7), 0.1, np.float32)
    scores[2, 3] = 0.3
    maps = decision_evidence(scores, 40.0, (7, 7))
    assert not maps[0].any()
    expected = np.zeros((7, 7), np.float32)
    expected[2, 3] = 1.0
    np.testing.assert_allclose(maps[1], expected, atol=1e-6)


def test_decision_evidence_of_nothing_is_empty():
    maps = decision_evidence(np.zeros((7, 7), np.float32), 0.0, 224)
    assert maps.shape == (2, 224, 224) and not maps.any()


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
