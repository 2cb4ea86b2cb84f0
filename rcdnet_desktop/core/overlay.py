"""Heat-map colouring, blending over the image, and a plain-language summary of a map.

Used by the GUI (the two evidence panels), the CLI and the exports, so every picture of a heat
map in the program is coloured the same way. No Qt here.

Colour maps are OpenCV's. Each is turned once into a 256-entry RGB lookup table, cached, so
colouring a map is one numpy indexing operation; cv2 is imported only when a table is first
needed (it costs start-up time).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from rcdnet_desktop.core.types import Box, HeatMaps

COLORMAPS: dict[str, int] = {
    "jet": 2,  # cv2.COLORMAP_JET: the usual Grad-CAM look, the default
    "turbo": 20,  # cv2.COLORMAP_TURBO: jet-like but perceptually smoother
    "inferno": 14,  # cv2.COLORMAP_INFERNO
    "viridis": 16,  # cv2.COLORMAP_VIRIDIS: readable by colour-blind users
    "magma": 13,  # cv2.COLORMAP_MAGMA
    "hot": 11,  # cv2.COLORMAP_HOT
}
"""Colour-map name -> OpenCV colour-map constant, in the order a menu should list them."""

DEFAULT_COLORMAP = "jet"
DEFAULT_ALPHA = 0.45

# A map whose maximum is below this is treated as empty (no evidence anywhere): CAM maps are
# normalised to [0, 1], so a tiny maximum means the un-normalised map was all zero.
EMPTY_MAP_MAX = 1e-6
# The "highest region" is the connected part of the map at or above half its maximum (the
# full-width-at-half-maximum convention) that contains the peak.
HIGH_REGION_LEVEL = 0.5
# Concentration is measured as the share of the image area that holds half of the evidence
# (heat summed over pixels). A compact lesion-sized blob holds half its heat in a few per cent
# of a frame; a map spread over the whole image needs a quarter of it or more.
CONCENTRATED_MAX_AREA = 0.05
DIFFUSE_MIN_AREA = 0.25
# A second high area is mentioned only when it carries at least this share of the evidence
# held by all high areas, so small specks do not clutter the sentence.
SECONDARY_MIN_SHARE = 0.15
# Maps larger than this on a side are measured on an area-averaged copy this large: the shares
# and positions barely change, and an 8000 x 8000 map would otherwise take gigabytes of
# temporary arrays (sorting, cumulative sums, labels) and seconds.
SUMMARY_MAX_SIDE = 1024


@cache
def _lut(colormap: str) -> np.ndarray:
    """Return the (256, 3) uint8 RGB lookup table of ``colormap``."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r}; choose one of: {', '.join(COLORMAPS)}")
    import cv2

    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, COLORMAPS[colormap]).reshape(256, 3)
    lut = np.ascontiguousarray(bgr[:, ::-1])
    lut.setflags(write=False)
    return lut


def _check_heatmap(heatmap: np.ndarray) -> np.ndarray:
    heatmap = np.asarray(heatmap)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError(
            f"heat map must be a non-empty 2-D array (H, W), got shape {heatmap.shape}"
        )
    if not np.issubdtype(heatmap.dtype, np.floating) and not np.issubdtype(
        heatmap.dtype, np.integer
    ):
        raise ValueError(f"heat map must be numeric, got dtype {heatmap.dtype}")
    # NaN/inf would colour as garbage; treat them as "no evidence" and keep the range [0, 1].
    return np.clip(
        np.nan_to_num(heatmap.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0
    )


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 grey ``(H, W)`` or ``(H, W, 1)``, or RGB ``(H, W, 3)`` -> RGB ``(H, W, 3)``."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"image pixels must be uint8, got dtype {pixels.dtype}")
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    raise ValueError(f"image pixels must be (H, W) grey or (H, W, 3) RGB, got shape {pixels.shape}")


def colorize(heatmap: np.ndarray, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """Colour a heat map.

    Parameters
    ----------
    heatmap : numpy.ndarray
        Float map in [0, 1], shape (H, W). Values outside are clipped; NaN counts as 0.
    colormap : str
        A key of :data:`COLORMAPS`.

    Returns
    -------
    numpy.ndarray
        uint8 RGB image, shape (H, W, 3).

    Raises
    ------
    ValueError
        If the map is not 2-D or the colour map is unknown.
    """
    lut = _lut(colormap)
    h = _check_heatmap(heatmap)
    index = np.rint(h * 255.0).astype(np.uint8)
    return lut[index]


def blend(
    pixels: np.ndarray,
    heatmap: np.ndarray,
    alpha: float = DEFAULT_ALPHA,
    colormap: str = DEFAULT_COLORMAP,
) -> np.ndarray:
    """Lay a coloured heat map over an image.

    Parameters
    ----------
    pixels : numpy.ndarray
        uint8 image, (H, W) grey or (H, W, 3) RGB.
    heatmap : numpy.ndarray
        Float map in [0, 1] of the same H and W.
    alpha : float
        Opacity of the map, 0 (image only) to 1 (map only).
    colormap : str
        A key of :data:`COLORMAPS`.

    Returns
    -------
    numpy.ndarray
        uint8 RGB image, shape (H, W, 3): ``(1 - alpha) * image + alpha * colour``.

    Raises
    ------
    ValueError
        On mismatched sizes, a bad dtype or shape, an alpha outside [0, 1] or an unknown map.
    """
    rgb = as_rgb(pixels)
    h = np.asarray(heatmap)
    if h.ndim != 2 or h.shape != rgb.shape[:2]:
        raise ValueError(
            f"heat map shape {h.shape} does not match the image's (H, W) = {rgb.shape[:2]}"
        )
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    colour = colorize(h, colormap)
    if alpha == 0.0:
        return rgb.copy()
    if alpha == 1.0:
        return colour
    out = rgb.astype(np.float32) * (1.0 - alpha) + colour.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --- plain-language summary --------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceSummary:
    """Numbers behind :func:`describe_evidence`, for tests and for callers that format their own.

    Attributes
    ----------
    empty : bool
        True when the map holds no evidence at all (everything else is then zero/empty).
    peak : tuple of int
        (x, y) pixel of the map's maximum.
    centroid : tuple of float
        (x, y) heat-weighted centre of the highest region.
    position : str
        Where the highest region lies in image thirds: "upper left", "middle right", "centre"...
    half_energy_area : float
        Share of the image area (0-1) holding half of the evidence; small means concentrated.
    concentration : str
        "concentrated", "moderately spread" or "diffuse".
    high_region_area : float
        Share of the image area covered by the highest region.
    high_areas : int
        Number of separate areas at or above half the maximum that carry a noticeable share.
    roi_relation : str or None
        Where the peak lies relative to the lesion box: "inside", "margin" or "outside".
    roi_share : float or None
        Share of the evidence (0-1) inside the lesion box.
    """

    empty: bool
    peak: tuple[int, int] = (0, 0)
    centroid: tuple[float, float] = (0.0, 0.0)
    position: str = ""
    half_energy_area: float = 0.0
    concentration: str = ""
    high_region_area: float = 0.0
    high_areas: int = 0
    roi_relation: str | None = None
    roi_share: float | None = None


def _position_words(x: float, y: float, width: int, height: int) -> str:
    col = min(int(3 * x / width), 2)
    row = min(int(3 * y / height), 2)
    vertical = ("upper", "middle", "lower")[row]
    horizontal = ("left", "centre", "right")[col]
    if row == 1 and col == 1:
        return "centre"
    return f"{vertical} {horizontal}"


def _roi_relation(px: int, py: int, roi: Box) -> str:
    # The margin is a band across the box edge: a tenth of the box's shorter side, at least
    # 3 px, so a peak a few pixels either side of the drawn line counts as "at the margin".
    band = max(3.0, 0.1 * min(roi.w, roi.h))
    x0, y0, x1, y1 = roi.x, roi.y, roi.x + roi.w, roi.y + roi.h
    cx, cy = px + 0.5, py + 0.5
    inner = (x0 + band <= cx <= x1 - band) and (y0 + band <= cy <= y1 - band)
    outer = (x0 - band <= cx <= x1 + band) and (y0 - band <= cy <= y1 + band)
    if inner:
        return "inside"
    if outer:
        return "margin"
    return "outside"


def _reduced(heatmap: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The map area-averaged to at most :data:`SUMMARY_MAX_SIDE` a side, and the (x, y)
    factors back to the map's pixels; small maps (and non-float ones) as they are."""
    a = np.asarray(heatmap)
    if a.ndim != 2 or max(a.shape) <= SUMMARY_MAX_SIDE or a.dtype not in (np.float32,
                                                                            np.float64):
        return a, (1.0, 1.0)
    import cv2

    scale = SUMMARY_MAX_SIDE / max(a.shape)
    w, h = max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale))
    small = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
    return small, (a.shape[1] / w, a.shape[0] / h)


def summarize_evidence(heatmap: np.ndarray, roi: Box | None = None) -> EvidenceSummary:
    """Measure where a heat map's evidence lies; see :func:`describe_evidence` for the words.

    Parameters
    ----------
    heatmap : numpy.ndarray
        Float map in [0, 1], shape (H, W).
    roi : Box, optional
        The lesion box in the map's pixel coordinates.

    Returns
    -------
    EvidenceSummary

    Notes
    -----
    A map larger than :data:`SUMMARY_MAX_SIDE` on a side is measured on an area-averaged copy;
    peak and centroid are given back in the map's own pixels.
    """
    small, (sx, sy) = _reduced(heatmap)
    if (sx, sy) != (1.0, 1.0):
        small_roi = None if roi is None else Box(
            round(roi.x / sx), round(roi.y / sy), max(1, round(roi.w / sx)),
            max(1, round(roi.h / sy)))
        s = summarize_evidence(small, small_roi)
        if s.empty:
            return s
        return replace(s, peak=(min(int((s.peak[0] + 0.5) * sx), np.shape(heatmap)[1] - 1),
                                min(int((s.peak[1] + 0.5) * sy), np.shape(heatmap)[0] - 1)),
                       centroid=((s.centroid[0] + 0.5) * sx - 0.5,
                                 (s.centroid[1] + 0.5) * sy - 0.5))
    h = _check_heatmap(heatmap)
    height, width = h.shape
    peak_value = float(h.max())
    if peak_value <= EMPTY_MAP_MAX:
        return EvidenceSummary(empty=True)

    py, px = np.unravel_index(int(np.argmax(h)), h.shape)
    total = float(h.sum(dtype=np.float64))

    # Smallest share of the image that holds half of the heat.
    flat = np.sort(h, axis=None)[::-1]
    cumulative = np.cumsum(flat, dtype=np.float64)
    n_half = int(np.searchsorted(cumulative, 0.5 * total)) + 1
    half_area = n_half / h.size
    if half_area <= CONCENTRATED_MAX_AREA:
        concentration = "concentrated"
    elif half_area >= DIFFUSE_MIN_AREA:
        concentration = "diffuse"
    else:
        concentration = "moderately spread"

    import cv2

    mask = (h >= HIGH_REGION_LEVEL * peak_value).astype(np.uint8)
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    peak_label = int(labels[py, px])
    region = labels == peak_label
    weights = h * region
    ys, xs = np.nonzero(region)
    w = weights[ys, xs].astype(np.float64)
    cx = float((xs * w).sum() / w.sum())
    cy = float((ys * w).sum() / w.sum())
    energies = np.bincount(labels.ravel(), weights=h.ravel().astype(np.float64), minlength=count)
    high_energy = energies[1:]
    significant = int((high_energy >= SECONDARY_MIN_SHARE * high_energy.sum()).sum())

    roi_relation = None
    roi_share = None
    if roi is not None:
        x0 = min(max(roi.x, 0), width)
        y0 = min(max(roi.y, 0), height)
        x1 = min(max(roi.x + roi.w, 0), width)
        y1 = min(max(roi.y + roi.h, 0), height)
        roi_share = float(h[y0:y1, x0:x1].sum(dtype=np.float64) / total) if total > 0 else 0.0
        roi_relation = _roi_relation(int(px), int(py), roi)

    return EvidenceSummary(
        empty=False,
        peak=(int(px), int(py)),
        centroid=(cx, cy),
        position=_position_words(cx, cy, width, height),
        half_energy_area=half_area,
        concentration=concentration,
        high_region_area=float(region.mean()),
        high_areas=max(significant, 1),
        roi_relation=roi_relation,
        roi_share=roi_share,
    )


def _region_position(x: float, y: float, roi: Box) -> str:
    """Thirds of the lesion box for a point; a point beyond an edge counts as the nearest
    third (the maps are coarse, see :func:`describe_evidence`)."""
    col = min(max(int(3 * (x + 0.5 - roi.x) / max(roi.w, 1)), 0), 2)
    row = min(max(int(3 * (y + 0.5 - roi.y) / max(roi.h, 1)), 0), 2)
    if row == 1 and col == 1:
        return "centre"
    return f"{('upper', 'middle', 'lower')[row]} {('left', 'centre', 'right')[col]}"


NO_EVIDENCE = "No evidence for this class."
"""The sentence of a map that is zero everywhere."""
APPROXIMATE = "Approximate: not an outline of the lesion."
"""Said of every map that holds evidence: measured on held-out images and at an external
hospital, the maps' evidence lies only somewhat more in the lesion than its area would give,
and a centred Gaussian over the lesion box localises the lesion better
(docs/training/heatmaps.md). So the words name a rough place and claim nothing finer."""


def describe_evidence(heatmap: np.ndarray, roi: Box | None = None) -> str:
    """Say in plain words where a heat map's strongest evidence lies, and that it is rough.

    The place is the heat-weighted centre of the map's highest region (the connected area at
    or above half its maximum that holds the peak), in thirds of the lesion box when there is
    one and of the image otherwise. Separate high areas are counted when there are several.
    Nothing is said about the lesion itself: the maps are coarse (7 x 7 cells over the
    classified view) and do not localise lesions precisely (see :data:`APPROXIMATE`).

    Parameters
    ----------
    heatmap : numpy.ndarray
        Float map in [0, 1], shape (H, W).
    roi : Box, optional
        The lesion box, in the map's pixel coordinates.

    Returns
    -------
    str
        Two short sentences, e.g. "Strongest around the lower left of the lesion box.
        Approximate: not an outline of the lesion."
    """
    s = summarize_evidence(heatmap, roi)
    if s.empty:
        return NO_EVIDENCE
    if roi is not None:
        where = f"the {_region_position(*s.centroid, roi)} of the lesion box"
    else:
        where = f"the {s.position} of the image"
    text = f"Strongest around {where}"
    if s.high_areas > 1:
        text += f", in {s.high_areas} separate areas"
    return f"{text}. {APPROXIMATE}"


def evidence_sentences(maps: HeatMaps) -> tuple[str, str]:
    """The benign and malignant maps' sentences, placed against the lesion box as given.

    The one place the evidence is put into words: the screen, the exports and any other view
    call this, so a result reads the same everywhere. The box is ``maps.prediction.box`` (drawn
    by the user or found by the localiser, unpadded), not the padded region the model saw.
    """
    box = maps.prediction.box
    return (describe_evidence(maps.benign, box), describe_evidence(maps.malignant, box))
