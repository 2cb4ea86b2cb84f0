"""The one preprocessing path shared by inference and training.

Region: a lesion box is padded by the model card's ``roi_margin`` on each side and clipped to
the image (:func:`pad_roi`), then cropped (:func:`crop`); without a box the whole image is used.
Steps: to greyscale, resize to the model's input size, CLAHE contrast enhancement, light
median denoising, greyscale to three channels, normalisation. The constants live in
:class:`PreprocessConfig`, which is stored in the model card next to the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rcdnet_desktop.core.errors import InferenceError
from rcdnet_desktop.core.types import Box

DEFAULT_ROI_MARGIN = 0.2
"""The model card's default ``roi_margin``: the share of a lesion box's width (height) added on
each side before it is cropped. A bundle's card, or a training run's config, sets its own."""

BoxInput = Box | Sequence[float]

# Per-channel mean/std in [0, 1] units.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow EfficientNet-Lite: (x - 127) / 128 with x in 0..255, written in [0, 1] units.
TF_LITE_MEAN = (127.0 / 255.0,) * 3
TF_LITE_STD = (128.0 / 255.0,) * 3

NORMALISATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "tf_lite": (TF_LITE_MEAN, TF_LITE_STD),
}


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing constants; serialised into the model card.

    Attributes
    ----------
    size : int
        Square input size in pixels (the paper's 224).
    clahe_clip, clahe_tile : float, int
        CLAHE clip limit and tile grid; ``clahe_clip <= 0`` disables CLAHE.
    median_kernel : int
        Median filter aperture for denoising; 0 or 1 disables it.
    normalisation : str
        Key of :data:`NORMALISATIONS`: "tf_lite" for the TensorFlow-converted Lite0 weights,
        "imagenet" for the paper's ImageNet mean/std.
    """

    size: int = 224
    clahe_clip: float = 2.0
    clahe_tile: int = 8
    median_kernel: int = 3
    normalisation: str = "tf_lite"

    @property
    def mean(self) -> tuple[float, float, float]:
        return NORMALISATIONS[self.normalisation][0]

    @property
    def std(self) -> tuple[float, float, float]:
        return NORMALISATIONS[self.normalisation][1]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessConfig:
        cfg = cls(**{k: d[k] for k in ("size", "clahe_clip", "clahe_tile", "median_kernel",
                                      "normalisation") if k in d})
        if cfg.normalisation not in NORMALISATIONS:
            raise ValueError(f"unknown normalisation {cfg.normalisation!r}")
        return cfg


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return a uint8 (H, W) greyscale view of a uint8 grey, RGB or RGBA image."""
    import cv2

    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    raise ValueError(f"unsupported image shape {image.shape}")


def enhance(image: np.ndarray, size: int | tuple[int, int] | None,
            config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """Greyscale, resize, CLAHE and denoise: returns uint8 (h, w).

    ``size`` is a square side, a (width, height) pair, or None to keep the image's size.
    Training caches this output (at a size a little over the input size) and augments it.
    """
    import cv2

    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    grey = to_grey(image)
    if size is not None:
        wh = (size, size) if isinstance(size, int) else tuple(size)
        if grey.shape[1] != wh[0] or grey.shape[0] != wh[1]:
            shrinking = wh[0] < grey.shape[1] and wh[1] < grey.shape[0]
            grey = cv2.resize(grey, wh, interpolation=cv2.INTER_AREA if shrinking
                              else cv2.INTER_LINEAR)
    if config.clahe_clip > 0:
        clahe = cv2.createCLAHE(clipLimit=config.clahe_clip,
                                tileGridSize=(config.clahe_tile, config.clahe_tile))
        grey = clahe.apply(np.ascontiguousarray(grey))
    if config.median_kernel > 1:
        grey = cv2.medianBlur(grey, config.median_kernel)
    return grey


def normalise(grey: np.ndarray, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """uint8 (h, w) greyscale -> float32 array (3, h, w), normalised per the config.

    Plain numpy, so the ONNX Runtime path runs without torch; the torch paths wrap the result
    with ``torch.from_numpy``. The arithmetic is float32 throughout, in the order torch used
    before (divide by 255, subtract the mean, divide by the std), so the numbers are the same.
    """
    x = np.ascontiguousarray(grey).astype(np.float32) / np.float32(255.0)
    mean = np.asarray(config.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(config.std, dtype=np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray((x[None] - mean) / std, dtype=np.float32)


def preprocess(image: np.ndarray, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """Image (uint8 grey/RGB/RGBA) -> model input, float32 array (3, size, size)."""
    return normalise(enhance(image, config.size, config), config)


def pad_roi(roi: BoxInput | None, image_hw: tuple[int, int],
            margin: float | Sequence[float]) -> Box | None:
    """The region the model sees: a lesion box padded and clipped to the image.

    Parameters
    ----------
    roi : Box or (x, y, w, h), optional
        The lesion box in image pixels, as given or found; None for the whole image.
    image_hw : (int, int)
        Height and width of the image (extra trailing dimensions are ignored).
    margin : float or (left, top, right, bottom)
        Share of the box's width (left, right) and height (top, bottom) added on each side:
        one number for every side (the model card's ``roi_margin``), or four (training's
        random padding).

    Returns
    -------
    Box or None
        The padded box, clipped to the image; None when ``roi`` is None.

    Raises
    ------
    InferenceError
        A box with no area, or one that lies outside the image.
    """
    if roi is None:
        return None
    try:
        x, y, w, h = (roi.as_tuple() if isinstance(roi, Box) else tuple(roi))
        x, y, w, h = float(x), float(y), float(w), float(h)
    except (TypeError, ValueError) as exc:
        raise InferenceError(f"a region of interest must be (x, y, w, h), got {roi!r}") from exc
    if not (w > 0 and h > 0 and np.isfinite([x, y, w, h]).all()):
        raise InferenceError(f"the region of interest {roi!r} has no area")
    ih, iw = int(image_hw[0]), int(image_hw[1])
    if x >= iw or y >= ih or x + w <= 0 or y + h <= 0:
        raise InferenceError(f"the region of interest {roi!r} lies outside the {iw}x{ih} image")
    left, top, right, bottom = ((float(margin),) * 4 if np.isscalar(margin)
                                else (float(m) for m in margin))
    x0 = max(0, int(np.floor(x - left * w)))
    y0 = max(0, int(np.floor(y - top * h)))
    x1 = min(iw, int(np.ceil(x + w + right * w)))
    y1 = min(ih, int(np.ceil(y + h + bottom * h)))
    return Box(x0, y0, x1 - x0, y1 - y0)


def crop(pixels: np.ndarray, region: Box | None) -> np.ndarray:
    """The pixels of ``region`` (a view, not a copy); the whole image when it is None."""
    if region is None:
        return pixels
    return pixels[region.y:region.y + region.h, region.x:region.x + region.w]
