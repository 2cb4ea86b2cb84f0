"""Training views: augmentation of the whole image or of a padded lesion box.

Consistency with inference: the app classifies either the whole image or a user-drawn lesion box
padded by the model card's ``roi_margin`` (each side by that fraction of the box's width and
height), and in both cases calls ``preprocess()`` = ``enhance()`` (resize straight to 224, CLAHE,
median) + ``normalise()``. Training does the same steps in the same order: it picks the region
(whole image, or the mask box padded by a random 10-30% per side), applies the geometric
augmentation to the *decoded* pixels at the region's native resolution, and only then calls the
shared ``enhance()`` to 224 and ``normalise()``. CLAHE therefore always sees a region shaped like
the one it sees at inference. The random crop keeps 85-100% of the region's area (close to the
whole view used at inference) and slight scaling/rotation are small, so the augmented views stay
around the inference view rather than far from it.

The paper names the augmentations (random crop, horizontal flip, small rotation, slight scaling,
Mixup) but not their magnitudes; the defaults below are ours and are options.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from rcdnet_desktop.core.preprocess import PreprocessConfig, enhance

ROI_MARGIN = 0.2  # the model card's roi_margin: inference pads the lesion box by this per side


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation options (see module docstring)."""

    crop_scale: tuple[float, float] = (0.85, 1.0)  # random crop: share of the region's area
    crop_ratio: tuple[float, float] = (0.9, 1.1)  # aspect change of the crop
    hflip: float = 0.5  # probability of a horizontal flip
    rotation: float = 10.0  # degrees, uniform in [-rotation, rotation]
    scale: tuple[float, float] = (0.9, 1.1)  # slight zoom
    roi_pad: tuple[float, float] = (0.1, 0.3)  # random padding per side of the lesion box
    enabled: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def pad_box(box: tuple[int, int, int, int], pads: tuple[float, float, float, float],
            shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pad (x, y, w, h) by fractions (left, top, right, bottom) of w/h, clipped to the image."""
    x, y, w, h = box
    left, top, right, bottom = pads
    x0 = max(0, math.floor(x - left * w))
    y0 = max(0, math.floor(y - top * h))
    x1 = min(shape[1], math.ceil(x + w + right * w))
    y1 = min(shape[0], math.ceil(y + h + bottom * h))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def roi_region(grey: np.ndarray, box: tuple[int, int, int, int],
               margin: float = ROI_MARGIN) -> np.ndarray:
    """The inference ROI view: the box padded by ``margin`` on every side, cropped."""
    x, y, w, h = pad_box(box, (margin,) * 4, grey.shape)
    return grey[y:y + h, x:x + w]


def eval_view(grey: np.ndarray, box, mode: str, config: PreprocessConfig,
              margin: float = ROI_MARGIN) -> np.ndarray:
    """uint8 224 grey exactly as the app computes it ("whole" or "roi")."""
    if mode == "roi" and box is not None:
        grey = roi_region(grey, box, margin)
    return enhance(grey, config.size, config)


def train_view(grey: np.ndarray, box, use_roi: bool, rng: np.random.Generator,
               aug: AugmentConfig, config: PreprocessConfig) -> np.ndarray:
    """One augmented uint8 grey view at the model's input size."""
    import cv2

    if not aug.enabled:
        return eval_view(grey, box, "roi" if use_roi else "whole", config)
    H, W = grey.shape
    if use_roi and box is not None:
        rx, ry, rw, rh = pad_box(box, tuple(rng.uniform(*aug.roi_pad, size=4)), grey.shape)
    else:
        rx, ry, rw, rh = 0, 0, W, H
    # Random crop inside the region (area share and aspect change close to 1).
    area = rng.uniform(*aug.crop_scale)
    ratio = math.exp(rng.uniform(math.log(aug.crop_ratio[0]), math.log(aug.crop_ratio[1])))
    cw = min(rw, max(1.0, rw * math.sqrt(area * ratio)))
    ch = min(rh, max(1.0, rh * math.sqrt(area / ratio)))
    cx = rx + rng.uniform(0, rw - cw) + cw / 2
    cy = ry + rng.uniform(0, rh - ch) + ch / 2
    # Slight zoom and small rotation about the crop centre; output at the crop's native size.
    zoom = rng.uniform(*aug.scale)
    angle = rng.uniform(-aug.rotation, aug.rotation)
    out_w, out_h = max(1, round(cw)), max(1, round(ch))
    m = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
    m[0, 2] += out_w / 2 - cx
    m[1, 2] += out_h / 2 - cy
    patch = cv2.warpAffine(grey, m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = enhance(patch, config.size, config)
    if rng.random() < aug.hflip:
        out = np.ascontiguousarray(out[:, ::-1])
    return out


def mixup(x, y_onehot, alpha: float, gen):
    """Mixup of a batch with its own permutation; ``gen`` is a torch.Generator."""
    import torch

    if alpha <= 0:
        return x, y_onehot
    lam = float(torch.distributions.Beta(alpha, alpha).sample().item()) if gen is None else \
        float(np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
              .beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=gen, device="cpu").to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y_onehot + (1 - lam) * y_onehot[perm]
