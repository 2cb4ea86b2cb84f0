"""Training views: augmentation of the whole image or of a padded lesion box.

Consistency with inference: the app classifies either the whole image or a lesion box padded by
the model card's ``roi_margin`` (each side by that fraction of the box's width and height), and
in both cases calls ``preprocess()`` = ``enhance()`` (resize straight to 224, CLAHE, median) +
``normalise()``. Training does the same steps in the same order, with the same padding function
(:func:`~rcdnet_desktop.core.preprocess.pad_roi`): it picks the region (whole image, or the mask
box padded by a random 10-30% per side), applies the geometric augmentation to the *decoded*
pixels at the region's native resolution, and only then calls the shared ``enhance()`` to 224
and ``normalise()``. CLAHE therefore always sees a region shaped like the one it sees at
inference. The margin of the evaluation view is the run's ``roi_margin`` (the card's), never a
copy of it. The random crop keeps 85-100% of the region's area (close to the
whole view used at inference) and slight scaling/rotation are small, so the augmented views stay
around the inference view rather than far from it.

The paper names the augmentations (random crop, horizontal flip, small rotation, slight scaling,
Mixup) but not their magnitudes; the defaults below are ours and are options.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from rcdnet_desktop.core.preprocess import (
    DEFAULT_ROI_MARGIN,
    PreprocessConfig,
    crop,
    enhance,
    pad_roi,
)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation options (see module docstring).

    The fields from ``contrast`` on are generic, scanner-agnostic augmentations (gain and
    contrast, gamma, speckle, blur, a shifted lesion box); they are off by default, as in the
    paper's recipe, and :data:`GENERIC` switches them on.
    """

    crop_scale: tuple[float, float] = (0.85, 1.0)  # random crop: share of the region's area
    crop_ratio: tuple[float, float] = (0.9, 1.1)  # aspect change of the crop
    hflip: float = 0.5  # probability of a horizontal flip
    rotation: float = 10.0  # degrees, uniform in [-rotation, rotation]
    scale: tuple[float, float] = (0.9, 1.1)  # slight zoom
    roi_pad: tuple[float, float] = (0.1, 0.3)  # random padding per side of the lesion box
    enabled: bool = True
    contrast: tuple[float, float] = (1.0, 1.0)  # factor about the patch's mean
    brightness: float = 0.0  # grey levels added, uniform in [-brightness, brightness]
    gamma: tuple[float, float] = (1.0, 1.0)
    speckle: float = 0.0  # std of multiplicative, slightly correlated noise (max, drawn per view)
    blur: float = 0.0  # probability of a slight Gaussian blur (sigma 0.5-1.5 px at 224)
    box_shift: float = 0.0  # lesion box moved by up to this share of its width/height
    tgc: float = 0.0  # depth gain: rows scaled by 1 + s * (depth - 0.5), s in [-tgc, tgc]
    export: float = 0.0  # probability of re-exporting the scan first (:func:`reexport`)
    export_keep: tuple[float, float] = (0.4, 0.85)  # share of each side a tighter crop keeps
    export_depth: tuple[float, float] = (1.0, 1.0)  # share of the rows kept from the top
    export_long_side: tuple[float, float] = (250.0, 900.0)  # pixels after resampling
    export_aspect: tuple[float, float] = (0.8, 1.25)
    export_jpeg: float = 0.5  # probability of a JPEG round trip
    export_quality: tuple[int, int] = (40, 90)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def intensity(self) -> bool:
        return (self.contrast != (1.0, 1.0) or self.brightness > 0 or self.gamma != (1.0, 1.0)
                or self.speckle > 0 or self.blur > 0 or self.tgc > 0)


EXPORTED = AugmentConfig()  # the export ranges of :func:`reexport` by default (the guard's)


GENERIC = {  # ``--augment generic``: wider geometry plus scanner-like intensity changes
    "crop_scale": (0.6, 1.0), "crop_ratio": (0.75, 1.33), "rotation": 15.0,
    "scale": (0.85, 1.15), "roi_pad": (0.0, 0.4), "contrast": (0.7, 1.3), "brightness": 20.0,
    "gamma": (0.7, 1.5), "speckle": 0.15, "blur": 0.2, "box_shift": 0.1,
}


SITE = {  # ``--augment site``: the paper's geometry plus scanner and export differences
    "export": 0.5, "export_keep": (0.6, 1.0), "export_depth": (0.6, 1.0),
    "export_long_side": (200.0, 900.0), "export_aspect": (0.85, 1.18), "export_jpeg": 0.5,
    "export_quality": (30, 90), "tgc": 0.4, "contrast": (0.8, 1.25), "gamma": (0.8, 1.25),
    "speckle": 0.1,
}


def reexport(pixels: np.ndarray, rng: np.random.Generator, aug: AugmentConfig = EXPORTED,
             box=None) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The same scan as another hospital might export it, and the lesion box moved with it.

    A tighter crop (``export_keep`` of each side; it always contains ``box``), the bottom rows
    cut as a shallower depth setting would (``export_depth``), resampled to a long side in
    ``export_long_side`` with the aspect changed by ``export_aspect``, and with probability
    ``export_jpeg`` a JPEG round trip at a quality in ``export_quality``. ``pixels`` is grey
    or RGB uint8; ``box`` is (x, y, w, h) in its pixels or None.
    """
    import io

    import cv2
    from PIL import Image

    h, w = pixels.shape[:2]
    bx, by, bw, bh = box if box is not None else (0, 0, 1, 1)
    fh, fw = rng.uniform(*aug.export_keep, 2)
    ch, cw = max(8, int(h * fh), min(h, bh)), max(8, int(w * fw), min(w, bw))
    lo_y, lo_x = (max(0, by + bh - ch), max(0, bx + bw - cw)) if box is not None else (0, 0)
    hi_y, hi_x = (min(by, h - ch), min(bx, w - cw)) if box is not None else (h - ch, w - cw)
    y = int(rng.integers(lo_y, max(lo_y, hi_y) + 1))
    x = int(rng.integers(lo_x, max(lo_x, hi_x) + 1))
    if aug.export_depth != (1.0, 1.0):  # drawn only when on: the guard's sequence stays as it was
        lesion_end = by + bh - y if box is not None else 8
        ch = min(ch, max(8, lesion_end, int(ch * rng.uniform(*aug.export_depth))))
    crop = pixels[y:y + ch, x:x + cw]
    long_side = rng.uniform(*aug.export_long_side)
    aspect = rng.uniform(*aug.export_aspect)
    scale = long_side / max(ch, cw)
    size = (max(16, int(cw * scale * aspect)), max(16, int(ch * scale)))
    out = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if rng.random() < aug.export_jpeg:
        buf = io.BytesIO()
        low, high = aug.export_quality
        Image.fromarray(out).save(buf, "JPEG", quality=int(rng.integers(low, high + 1)))
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    new_box = None
    if box is not None:
        sx, sy = size[0] / cw, size[1] / ch
        x0, y0 = int((bx - x) * sx), int((by - y) * sy)
        new_box = (max(0, x0), max(0, y0), max(1, min(size[0] - max(0, x0), round(bw * sx))),
                   max(1, min(size[1] - max(0, y0), round(bh * sy))))
    return np.ascontiguousarray(out), new_box


def eval_view(grey: np.ndarray, box, mode: str, config: PreprocessConfig,
              margin: float = DEFAULT_ROI_MARGIN) -> np.ndarray:
    """uint8 224 grey exactly as the app computes it ("whole" or "roi").

    The "roi" view is the app's crop: :func:`~rcdnet_desktop.core.preprocess.pad_roi` with the
    card's (or the run's) ``roi_margin``, then :func:`~rcdnet_desktop.core.preprocess.crop`.
    """
    if mode == "roi" and box is not None:
        grey = crop(grey, pad_roi(box, grey.shape, margin))
    return enhance(grey, config.size, config)


def warp_region(grey: np.ndarray, region: tuple[int, int, int, int],
                rng: np.random.Generator, aug: AugmentConfig,
                mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Random crop inside ``region`` (x, y, w, h), slight zoom and rotation, at native size.

    ``mask`` (bool, same shape as ``grey``) gets the same transform (nearest neighbour).
    """
    import cv2

    rx, ry, rw, rh = region
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
    if mask is None:
        return patch, None
    mpatch = cv2.warpAffine(mask.astype(np.uint8), m, (out_w, out_h), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return patch, mpatch


def vary_intensity(grey: np.ndarray, rng: np.random.Generator,
                   aug: AugmentConfig) -> np.ndarray:
    """Scanner-like changes of a uint8 patch: contrast, brightness, gamma, speckle, blur."""
    import cv2

    if not aug.intensity:
        return grey
    g = grey.astype(np.float32)
    g = (g - g.mean()) * rng.uniform(*aug.contrast) + g.mean() \
        + rng.uniform(-aug.brightness, aug.brightness)
    g = 255.0 * (np.clip(g, 0, 255) / 255.0) ** rng.uniform(*aug.gamma)
    if aug.tgc > 0:  # time-gain compensation set differently: gain changes with depth
        depth = np.linspace(-0.5, 0.5, g.shape[0], dtype=np.float32)[:, None]
        g *= 1.0 + rng.uniform(-aug.tgc, aug.tgc) * depth
    if aug.speckle > 0:
        noise = rng.standard_normal(g.shape).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), 1.0) * 2.0  # grain of a few pixels, std ~1
        g *= 1.0 + rng.uniform(0, aug.speckle) * noise
    if rng.random() < aug.blur:
        sigma = rng.uniform(0.5, 1.5) * max(g.shape) / 224.0
        g = cv2.GaussianBlur(g, (0, 0), sigma)
    return np.clip(g + 0.5, 0, 255).astype(np.uint8)


def _jittered_box(box, rng: np.random.Generator, aug: AugmentConfig, shape):
    """The lesion box padded by random fractions per side and, with ``box_shift``, moved."""
    x, y, w, h = box
    if aug.box_shift > 0:
        x += round(rng.uniform(-aug.box_shift, aug.box_shift) * w)
        y += round(rng.uniform(-aug.box_shift, aug.box_shift) * h)
    return pad_roi((x, y, w, h), shape, tuple(rng.uniform(*aug.roi_pad, size=4))).as_tuple()


def train_view(grey: np.ndarray, box, use_roi: bool, rng: np.random.Generator,
               aug: AugmentConfig, config: PreprocessConfig,
               margin: float = DEFAULT_ROI_MARGIN) -> np.ndarray:
    """One augmented uint8 grey view at the model's input size.

    With augmentation off it is :func:`eval_view`, the lesion box padded by ``margin`` (the
    run's ``roi_margin``).
    """
    if not aug.enabled:
        return eval_view(grey, box, "roi" if use_roi else "whole", config, margin)
    if aug.export > 0 and rng.random() < aug.export:
        grey, box = reexport(grey, rng, aug, box)
    H, W = grey.shape
    region = _jittered_box(box, rng, aug, grey.shape) if use_roi and box is not None \
        else (0, 0, W, H)
    patch, _ = warp_region(grey, region, rng, aug)
    out = enhance(vary_intensity(patch, rng, aug), config.size, config)
    if rng.random() < aug.hflip:
        out = np.ascontiguousarray(out[:, ::-1])
    return out


def localiser_view(grey: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator | None,
                   aug: AugmentConfig, config: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """A whole-image view and its lesion mask at the input size (augmented when ``rng``)."""
    import cv2

    if mask is None:
        mask = np.zeros(grey.shape, dtype=bool)
    flip = False
    if rng is not None and aug.enabled:
        grey, mask = warp_region(grey, (0, 0, grey.shape[1], grey.shape[0]), rng, aug, mask)
        grey = vary_intensity(grey, rng, aug)
        flip = rng.random() < aug.hflip
    out = enhance(grey, config.size, config)
    m = cv2.resize(mask.astype(np.uint8), (config.size, config.size),
                   interpolation=cv2.INTER_NEAREST) > 0
    if flip:
        out, m = np.ascontiguousarray(out[:, ::-1]), np.ascontiguousarray(m[:, ::-1])
    return out, m


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
