"""Heat maps of the evidence for each class.

Fast path (method ``"fast"``, the default)
    RcdNet's last feature map ``A`` (shape ``(C, h, w)``) goes through global average pooling
    and a linear layer, so ``logit_c = sum_k W_ck mean(A_k) + b_c``. With two classes the
    softmax depends only on the difference ``logit_m - logit_b``, and that difference is a sum
    over the map's cells of

        s(i, j) = sum_k (W_mk - W_bk) / (h w) * A_k(i, j)

    (:func:`contrastive_scores`): each cell's share of the decision score. ``ReLU(s)`` is the
    evidence for malignant over benign and ``ReLU(-s)`` the evidence for benign over malignant
    (:func:`split_evidence`): exactly pytorch-grad-cam's ``GradCAM`` with the target
    ``logit_m - logit_b`` (and its opposite) before normalisation, computed from the forward
    pass with no backward pass (a test checks 1e-5 on the bundled model).

    What the app shows (:func:`decision_evidence`) adds one uniform term to every cell before
    the split: the part of the decision that no cell of the view localises (the linear layer's
    bias, the suspicious cut-off and, for a fused result, the whole-image view's share), so
    that the cells add up to the decision's margin over the cut-off. A suspicious result then
    always has some evidence for malignant on its map, and a result below the cut-off some
    evidence for benign (a map whose cells all lean one way loses its even floor, which says
    nothing about where). Both maps are in the same units and are scaled together, so their
    heights compare (see :mod:`~rcdnet_desktop.core.evidence_scale`).

    :func:`closed_form_cams` (torch) and :func:`closed_form_cams_np` (numpy) keep the
    per-class closed form ``ReLU(sum_k W_ck / (h w) A_k)`` (pytorch-grad-cam's ``GradCAM`` for
    one class), which :func:`gradcam_like_normalise` normalises exactly as that class does;
    the training package's measurements compare against it.

pytorch-grad-cam methods (:data:`GRADCAM_METHODS`)
    Computed with autograd on ``model.last_features`` for the same two contrastive targets, for
    comparison and for users who prefer another method. These are slower (a forward and a
    backward pass per class), and each map is normalised to its own maximum.

Finally :func:`to_image_size` brings a model-input-sized map back to the original image (or
into the rectangle of the region of interest on a full-size zero map).

The maps are coarse (7 x 7 cells over the classified view). Measured on held-out images and at
an external hospital (docs/training/heatmaps.md), they do not outline lesions: a centred
Gaussian over the lesion box localises the lesion better. Read them as roughly where the
evidence lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rcdnet_desktop.core.types import Box

if TYPE_CHECKING:
    import torch

    from rcdnet_desktop.core.model.network import RcdNet

FAST = "fast"
"""Closed-form Grad-CAM from the forward pass (the default)."""

GRADCAM_EPS = 1e-7
"""Epsilon of pytorch-grad-cam's ``scale_cam_image`` min-max normalisation."""

# Method key -> (pytorch_grad_cam class name, label for display).
GRADCAM_METHODS: dict[str, tuple[str, str]] = {
    "gradcam": ("GradCAM", "Grad-CAM"),
    "gradcam++": ("GradCAMPlusPlus", "Grad-CAM++"),
    "xgradcam": ("XGradCAM", "XGrad-CAM"),
    "layercam": ("LayerCAM", "LayerCAM"),
    "hirescam": ("HiResCAM", "HiResCAM"),
    "eigencam": ("EigenCAM", "EigenCAM (class-agnostic: same map for both classes)"),
    "eigengradcam": ("EigenGradCAM", "Eigen-Grad-CAM"),
}

METHOD_LABELS: dict[str, str] = {FAST: "Grad-CAM, contrastive (closed form)",
                                 **{k: v[1] for k, v in GRADCAM_METHODS.items()}}
"""Every heat-map method the inference engine accepts, with a display label."""


def pooling_gradient_scale(h: int, w: int) -> float:
    """``d logit_c / d A_k(i, j) / W_ck``: the gradient of global average pooling, ``1 / (h w)``.

    Shared by :func:`closed_form_cams` and :func:`closed_form_cams_np` so that both backends
    produce the same raw maps, which :func:`gradcam_like_normalise` then normalises.
    """
    return 1.0 / (int(h) * int(w))


def closed_form_cams(features: torch.Tensor, fc_weight: torch.Tensor) -> torch.Tensor:
    """Raw Grad-CAM maps of every class from the last feature map, with no backward pass.

    Parameters
    ----------
    features : torch.Tensor
        ``(B, C, h, w)`` last feature map (the input of global average pooling).
    fc_weight : torch.Tensor
        ``(K, C)`` weight of the final linear layer.

    Returns
    -------
    torch.Tensor
        ``(B, K, h, w)``: ``ReLU(sum_k W_ck / (h w) * A_k)`` — exactly Grad-CAM's map before
        normalisation, including the ``1 / (h w)`` of the pooling gradient (it matters for the
        epsilon of the normalisation that follows).

    See Also
    --------
    closed_form_cams_np : the same maps from numpy arrays (the ONNX Runtime backend).
    """
    import torch

    h, w = features.shape[-2:]
    scale = pooling_gradient_scale(h, w)
    return torch.relu(torch.einsum("kc,bchw->bkhw", fc_weight * scale, features))


def closed_form_cams_np(features: np.ndarray, fc_weight: np.ndarray) -> np.ndarray:
    """:func:`closed_form_cams` in numpy, for feature maps that come from an ONNX graph.

    Parameters
    ----------
    features : np.ndarray
        ``(B, C, h, w)`` float32 last feature map.
    fc_weight : np.ndarray
        ``(K, C)`` float32 weight of the final linear layer.

    Returns
    -------
    np.ndarray
        ``(B, K, h, w)`` float32 raw maps, to be normalised with :func:`gradcam_like_normalise`.
    """
    features = np.asarray(features, dtype=np.float32)
    h, w = features.shape[-2:]
    weight = np.asarray(fc_weight, dtype=np.float32) * np.float32(pooling_gradient_scale(h, w))
    cams = np.einsum("kc,bchw->bkhw", weight, features, optimize=True)
    return np.maximum(cams, 0, out=cams).astype(np.float32, copy=False)


def contrastive_scores(features: np.ndarray, fc_weight: np.ndarray) -> np.ndarray:
    """Each cell's share of ``logit_malignant - logit_benign`` (without the bias).

    Parameters
    ----------
    features : np.ndarray
        ``(B, C, h, w)`` last feature map (the input of global average pooling).
    fc_weight : np.ndarray
        ``(2, C)`` weight of the final linear layer (benign row, then malignant).

    Returns
    -------
    np.ndarray
        ``(B, h, w)`` float32 ``s`` with ``s.sum((1, 2)) + b_m - b_b`` equal to the logit
        difference: ``sum_k (W_mk - W_bk) / (h w) * A_k``, the pooling gradient included.
    """
    features = np.asarray(features, dtype=np.float32)
    w = np.asarray(fc_weight, dtype=np.float32)
    if w.shape[0] != 2:
        raise ValueError(f"contrastive maps need two classes, the linear layer has {w.shape[0]}")
    h, wd = features.shape[-2:]
    diff = (w[1] - w[0]) * np.float32(pooling_gradient_scale(h, wd))
    return np.einsum("c,bchw->bhw", diff, features, optimize=True).astype(np.float32, copy=False)


def split_evidence(scores: np.ndarray) -> np.ndarray:
    """Signed cell scores ``(..., h, w)`` -> ``(..., 2, h, w)``: ``ReLU(-s)`` (evidence for
    benign over malignant) and ``ReLU(s)`` (for malignant over benign), in class order.

    On :func:`contrastive_scores` these are pytorch-grad-cam's ``GradCAM`` maps for the targets
    ``logit_b - logit_m`` and ``logit_m - logit_b`` before its normalisation.
    """
    s = np.asarray(scores, dtype=np.float32)
    return np.stack([np.maximum(-s, 0), np.maximum(s, 0)], axis=-3)


def decision_evidence(scores: np.ndarray, margin: float, size: int | tuple[int, int],
                      share: float = 1.0) -> np.ndarray:
    """Both classes' maps of one view, relative to the cut-off and on one scale.

    Parameters
    ----------
    scores : np.ndarray
        ``(h, w)`` :func:`contrastive_scores` of the classified view.
    margin : float
        The decision's margin over the cut-off in logit units: ``logit_m - logit_b`` of the
        result (fused where it was fused) minus ``T * log(t / (1 - t))`` for the temperature
        ``T`` and cut-off ``t``. It is >= 0 exactly when the result is suspicious.
    size : int or (width, height)
        The model input size the maps are resized to (bilinear, as pytorch-grad-cam does).
    share : float
        This view's weight in the decision's logits: 1, or 1/2 for a result that averages the
        box view's logits with the whole image's.

    Returns
    -------
    np.ndarray
        ``(2, height, width)`` float32 in [0, 1] (benign, malignant), both divided by the same
        number (the larger peak), so their heights compare; zero when there is no evidence.

    Notes
    -----
    The cells are ``share * s(i, j) + u`` with one uniform term ``u`` chosen so that they add
    up to ``margin``: ``u`` holds what the view's cells do not localise (the bias, the cut-off,
    and the other view's share of a fused result). Since the cells add up to the margin, at
    least one cell is positive (malignant evidence) when the result is suspicious, and at least
    one negative (benign evidence) when it is below the cut-off. Where all cells have one sign,
    that map's floor (its smallest cell) is taken off: it is the same everywhere, so it says
    nothing about where the evidence is; the map then shows the cells' differences, and is
    empty only if every cell is equal.
    """
    import cv2

    s = np.asarray(scores, dtype=np.float64)
    h, w = s.shape
    cells = share * s + (float(margin) - share * float(s.sum())) / (h * w)
    parts = split_evidence(cells.astype(np.float32))
    # When every cell leans one way, that side's map has a floor: evidence spread evenly says
    # nothing about where, so only what rises above it is drawn (the other map is then empty).
    parts -= parts.min(axis=(1, 2), keepdims=True)
    wh = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    maps = np.stack([np.maximum(cv2.resize(m, wh, interpolation=cv2.INTER_LINEAR), 0)
                     for m in parts])
    top = float(maps.max())
    if not np.isfinite(top) or top <= 0:
        return np.zeros_like(maps)
    return (maps / np.float32(top)).astype(np.float32, copy=False)


def _scale_cam_image(cams: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """pytorch-grad-cam's ``scale_cam_image`` for 2-D maps: min-max, then cv2 resize."""
    import cv2

    out = []
    for img in cams:
        img = img - np.min(img)
        img = img / (GRADCAM_EPS + np.max(img))
        if size is not None:
            img = cv2.resize(np.float32(img), size)
        out.append(img)
    return np.float32(out)


def gradcam_like_normalise(cams: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Normalise raw maps exactly as pytorch-grad-cam's ``GradCAM`` does for one target layer.

    Parameters
    ----------
    cams : np.ndarray
        ``(N, h, w)`` non-negative raw maps.
    size : int or (width, height)
        The model input size the maps are resized to.

    Returns
    -------
    np.ndarray
        ``(N, height, width)`` float32 in [0, 1].
    """
    wh = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    scaled = _scale_cam_image(np.maximum(np.asarray(cams, dtype=np.float32), 0), wh)
    # BaseCAM.aggregate_multi_layers: clamp, mean over the (single) layer, min-max again.
    return _scale_cam_image(np.maximum(scaled, 0), None)


def to_image_size(cam: np.ndarray, image_hw: tuple[int, int], roi: Box | None = None) -> np.ndarray:
    """Bring one model-input-sized map back to the image it explains.

    Parameters
    ----------
    cam : np.ndarray
        ``(s, s)`` map in [0, 1] over the model input.
    image_hw : (int, int)
        Height and width of the original image (the whole frame).
    roi : Box, optional
        The (padded, clipped) box that was classified. The map is resized into that rectangle
        of a full-size zero map; without a box it is resized to the whole image.

    Returns
    -------
    np.ndarray
        ``(H, W)`` float32 in [0, 1].
    """
    import cv2

    h, w = int(image_hw[0]), int(image_hw[1])
    if roi is None:
        out = cv2.resize(np.float32(cam), (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        out = np.zeros((h, w), np.float32)
        out[roi.y:roi.y + roi.h, roi.x:roi.x + roi.w] = cv2.resize(
            np.float32(cam), (roi.w, roi.h), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0, out=out)


class ContrastTarget:
    """pytorch-grad-cam target ``logit_c - logit_other`` of a two-class model: the evidence
    for class ``c`` over the other class (what the softmax of two classes depends on)."""

    def __init__(self, category: int) -> None:
        self.category = int(category)

    def __call__(self, model_output):
        other = 1 - self.category
        if model_output.ndim == 1:
            return model_output[self.category] - model_output[other]
        return model_output[:, self.category] - model_output[:, other]


def gradcam_maps(model: RcdNet, x: torch.Tensor, method: str = "gradcam",
                 classes: Sequence[int] = (0, 1), contrast: bool = False) -> np.ndarray:
    """Maps from a pytorch-grad-cam method for each class, at the model input's size.

    Parameters
    ----------
    model : RcdNet
        Any device; left in eval mode (pytorch-grad-cam's constructor calls ``model.eval()``;
        the previous mode is restored afterwards).
    x : torch.Tensor
        ``(1, 3, s, s)`` model input on the model's device.
    method : str
        A key of :data:`GRADCAM_METHODS`.
    classes : sequence of int
        Target classes, one map each.
    contrast : bool
        Target ``logit_c - logit_other`` (:class:`ContrastTarget`, two classes only) instead
        of ``logit_c``: the same evidence the fast maps show.

    Returns
    -------
    np.ndarray
        ``(len(classes), s, s)`` float32 in [0, 1].

    Notes
    -----
    Runs under ``torch.inference_mode(False)`` and ``torch.enable_grad()`` because the methods
    need autograd, and releases the library's hooks in a ``finally`` rather than using its
    context manager (whose ``__exit__`` swallows IndexError). One class per call, with batch
    size 1, so the forward pass runs the same kernels as the fast path.

    Every method here needs only the gradient of the class score with respect to the target
    feature map, which does not depend on anything before it. So the autograd graph starts at
    ``model.last_features``: parameters are frozen for the call and a pre-hook hands that layer
    a detached copy of its input that requires grad. The backward pass then covers only pooling
    and the linear layer instead of the whole backbone (about 10x faster on a CPU, and no
    multi-second first-call warm-up of the convolution backward kernels).
    """
    import pytorch_grad_cam
    import torch
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if method not in GRADCAM_METHODS:
        raise ValueError(f"unknown heat-map method {method!r}; choose from "
                         f"{', '.join(METHOD_LABELS)}")
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one input of shape (1, 3, s, s), got {tuple(x.shape)}")
    cls = getattr(pytorch_grad_cam, GRADCAM_METHODS[method][0])
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]

    def start_graph_here(module, args):
        return (args[0].detach().requires_grad_(True),)

    maps = []
    with torch.inference_mode(False), torch.enable_grad():
        inp = x.clone()  # a normal tensor, in case x was made under inference_mode
        handle = model.last_features.register_forward_pre_hook(start_graph_here)
        cam = None
        try:
            for p, _ in flags:
                p.requires_grad_(False)
            cam = cls(model=model, target_layers=[model.last_features])
            for c in classes:
                target = ContrastTarget(c) if contrast else ClassifierOutputTarget(int(c))
                maps.append(cam(input_tensor=inp, targets=[target])[0])
        finally:
            if cam is not None:
                cam.activations_and_grads.release()
            handle.remove()
            for p, flag in flags:
                p.requires_grad_(flag)
            model.zero_grad(set_to_none=True)
            model.train(was_training)
    return np.stack(maps).astype(np.float32)
