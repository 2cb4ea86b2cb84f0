"""Intended-use checks: warn when an image is not the kind the classifier was made for.

RcdNet was trained on greyscale (B-mode) breast ultrasound. FDA-cleared breast ultrasound CAD
refuses colour Doppler / elastography frames, tiny thumbnails and empty frames; this program
classifies them anyway but reports a warning in plain words with every prediction, so the user
is never misled silently. The checks are cheap (numpy; OpenCV labels colour patches when there
are any; a few milliseconds on a 1000x1000 frame) and never raise on odd input.
"""

from __future__ import annotations

import numpy as np

# --- colour overlay (Doppler / elastography) -------------------------------------------------
# A pixel is "colour" when its HSV saturation is high AND its chroma (max - min channel, in
# 0..255 units) is large: saturation alone is unstable for dark pixels (5, 0, 0 has saturation
# 1.0), and JPEG chroma subsampling leaves faint tints of a few units on grey ultrasound.
COLOUR_MIN_SATURATION = 0.35
COLOUR_MIN_CHROMA = 50
# Doppler boxes are solid patches; annotation text, calipers, measurement lines and the coloured
# logo strokes of scanners are 1-4 px wide. Eroding the colour mask twice with a 3x3 cross
# (5 px diameter) removes those thin strokes while a flow patch survives.
COLOUR_EROSION_STEPS = 2
# Scanner user interfaces draw flat colour panels along the frame's edges (Philips' blue title
# bar covers 13 % of pydicom's examples_palette.dcm). A colour patch that reaches the edge of the
# frame and is mostly one colour is taken for such chrome and not counted: "mostly" means this
# share of its pixels lies within COLOUR_FLAT_TOLERANCE (per channel, 0..255) of its median
# colour, which JPEG noise does not break. Doppler and elastography maps encode a quantity as a
# colour ramp and are never that uniform; a flat patch away from the edges still counts.
COLOUR_FLAT_SHARE = 0.6
COLOUR_FLAT_TOLERANCE = 20
# Share of the image's pixels that must remain coloured after erosion. A colour Doppler box over
# a vessel or a lesion typically colours 3-20 % of the frame; 1 % is clear of what survives
# erosion from text and small coloured markers (a 30x30 px logo on a 600x800 frame is 0.2 %).
COLOUR_MIN_FRACTION = 0.01

# --- size --------------------------------------------------------------------------------------
# The model's input is 224x224. Below 64 px on the short side an image would be upsampled more
# than 3.5x: the texture the classifier relies on is gone (thumbnails, icons, crops of crops).
MIN_SIDE_PX = 64

# --- blank frames ------------------------------------------------------------------------------
# Standard deviation of the grey levels (0..255) below which a frame carries no usable
# structure: a black/grey screen, a frozen frame with the probe in air. Real B-mode images have
# a standard deviation of 30-60 even with large black borders; speckle alone gives > 10.
BLANK_MAX_STD = 3.0
# Share of pixels holding the single most common grey level above which the frame is "nearly
# all one value". Ultrasound frames often have 30-60 % black border, never 97 %.
BLANK_MAX_MODE_FRACTION = 0.97

# Warning texts (kept as constants so the CLI, GUI and tests use the same words).
WARN_COLOUR = (
    "colour overlay detected (Doppler or elastography?): the classifier was trained on "
    "greyscale B-mode images only; the result is unreliable"
)
WARN_TOO_SMALL = (
    "image too small to classify reliably ({w}x{h} pixels; at least {min_side} pixels are "
    "needed on the shorter side)"
)
WARN_BLANK = "the frame is almost blank (nearly uniform): there is nothing to classify"
WARN_NOT_IMAGE = "the pixel data is not a 2-D greyscale or colour image"


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """Binary erosion with a 3x3 cross, ``steps`` times (pure numpy, borders count as off)."""
    m = mask
    for _ in range(steps):
        e = m.copy()
        e[1:, :] &= m[:-1, :]
        e[:-1, :] &= m[1:, :]
        e[:, 1:] &= m[:, :-1]
        e[:, :-1] &= m[:, 1:]
        e[0, :] = e[-1, :] = False
        e[:, 0] = e[:, -1] = False
        m = e
    return m


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    a = np.asarray(pixels, dtype=np.float64)
    if a.size == 0:
        return a.astype(np.uint8)
    a = np.nan_to_num(a)
    lo, hi = float(a.min()), float(a.max())
    if a.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        a = a * 255.0  # float image in [0, 1]
    elif hi > 255.0 or lo < 0.0:
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def colour_fraction(pixels: np.ndarray) -> float:
    """Share of pixels that belong to solid saturated colour patches (0 for greyscale).

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W)`` or ``(H, W, 3)`` (a fourth alpha channel is ignored), uint8 preferred.

    Returns
    -------
    float
        Fraction in [0, 1] of pixels that are saturated colour after thin strokes are removed.
    """
    if pixels.ndim != 3 or pixels.shape[2] < 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        return 0.0
    rgb = _to_uint8(pixels[..., :3])
    mx = _channel_max(rgb).astype(np.int16)
    mn = np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2]).astype(np.int16)
    chroma = mx - mn
    if int(chroma.max(initial=0)) < COLOUR_MIN_CHROMA:
        return 0.0  # fast path for grey images stored as RGB
    with np.errstate(divide="ignore", invalid="ignore"):
        sat = np.where(mx > 0, chroma / np.maximum(mx, 1), 0.0)
    mask = (chroma >= COLOUR_MIN_CHROMA) & (sat >= COLOUR_MIN_SATURATION)
    mask = _erode(mask, COLOUR_EROSION_STEPS)
    if not mask.any():
        return 0.0
    mask = _drop_flat_edge_panels(mask, rgb)
    return float(mask.mean())


def _channel_max(rgb: np.ndarray) -> np.ndarray:
    # Element-wise maxima of three planes: numpy reduces over a last axis of length 3 about
    # ten times slower, and this runs with every prediction.
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def _drop_flat_edge_panels(mask: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Remove colour components that touch the frame's edge and are nearly one flat colour."""
    import cv2  # lazy: only reached when an image has solid colour patches

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    h, w = mask.shape
    margin = COLOUR_EROSION_STEPS + 1  # erosion keeps components this far from the edge
    out = mask
    for i in range(1, n):
        x, y, bw, bh, _area = (int(v) for v in stats[i])
        if x > margin and y > margin and x + bw < w - margin and y + bh < h - margin:
            continue
        comp = labels == i
        colours = rgb[comp].astype(np.int16)
        median = np.median(colours, axis=0)
        near = np.all(np.abs(colours - median) <= COLOUR_FLAT_TOLERANCE, axis=1)
        if float(near.mean()) >= COLOUR_FLAT_SHARE:
            if out is mask:
                out = mask.copy()
            out[comp] = False
    return out


def check_image(pixels: np.ndarray) -> tuple[str, ...]:
    """Intended-use warnings for one frame, in plain words; empty when nothing is wrong.

    Parameters
    ----------
    pixels : np.ndarray
        The frame as read by :func:`rcdnet_desktop.core.io.read_image`: uint8, ``(H, W)`` grey
        or ``(H, W, 3)`` RGB. Other dtypes are rescaled to 0..255 first.

    Returns
    -------
    tuple of str
        One sentence per problem found: colour overlay, image too small, almost blank.
        Never raises for array input of any shape.
    """
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        return (WARN_NOT_IMAGE,)
    warnings: list[str] = []
    h, w = int(a.shape[0]), int(a.shape[1])
    if min(h, w) < MIN_SIDE_PX:
        warnings.append(WARN_TOO_SMALL.format(w=w, h=h, min_side=MIN_SIDE_PX))
    if h == 0 or w == 0:
        warnings.append(WARN_BLANK)
        return tuple(warnings)

    if a.ndim == 3 and colour_fraction(a) > COLOUR_MIN_FRACTION:
        warnings.append(WARN_COLOUR)

    u8 = _to_uint8(a)
    grey = u8 if u8.ndim == 2 else _channel_max(u8)
    counts = np.bincount(grey.ravel(), minlength=256)
    mode_fraction = float(counts.max()) / grey.size
    if float(grey.std()) < BLANK_MAX_STD or mode_fraction > BLANK_MAX_MODE_FRACTION:
        warnings.append(WARN_BLANK)
    return tuple(warnings)
