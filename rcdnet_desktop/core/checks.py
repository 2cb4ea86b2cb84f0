"""Intended-use checks: flag an image that is not the kind the classifier was made for.

RcdNet was trained on greyscale (B-mode) breast ultrasound. FDA-cleared breast ultrasound CAD
refuses colour Doppler / elastography frames, tiny thumbnails, empty frames and other
modalities; this program classifies them anyway but reports every problem as a :class:`Flag`:
a machine-readable code from :data:`CHECK_CODES` (the ``checks`` column of ``rcdnet classify``)
and a sentence in plain words (the ``warnings``). A prediction with any flag is *outside
intended use*. The checks read what the file says (:func:`check_record`: DICOM modality, body
part, ultrasound region types) and what the pixels show (:func:`check_image`); the learned
out-of-distribution score on the network's own features is :mod:`rcdnet_desktop.core.ood`.
They are cheap (numpy; OpenCV labels colour patches when there are any; a few milliseconds on
a 1000x1000 frame) and never raise on odd input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rcdnet_desktop.core.types import ImageRecord

# --- codes -------------------------------------------------------------------------------------
COLOUR_OVERLAY = "colour_overlay"
NOT_B_MODE = "not_b_mode"
BLANK = "blank"
TOO_SMALL = "too_small"
NOT_BREAST_ULTRASOUND = "not_breast_ultrasound"
IMPLAUSIBLE_GEOMETRY = "implausible_geometry"
NOT_IMAGE = "not_image"
CHECK_CODES = (COLOUR_OVERLAY, NOT_B_MODE, BLANK, TOO_SMALL, NOT_BREAST_ULTRASOUND,
               IMPLAUSIBLE_GEOMETRY, NOT_IMAGE)
"""Every code a flag can carry, in the order the ``checks`` column lists them."""


@dataclass(frozen=True)
class Flag:
    """One intended-use problem: ``code`` from :data:`CHECK_CODES`, ``text`` in plain words."""

    code: str
    text: str


def codes(flags: Iterable[Flag]) -> tuple[str, ...]:
    """The distinct codes of ``flags`` in :data:`CHECK_CODES` order."""
    present = {f.code for f in flags}
    return tuple(c for c in CHECK_CODES if c in present)

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

# --- lesion boxes ------------------------------------------------------------------------------
# What the classifier sees of a lesion box is the box padded by the card's margin. The padded
# mask boxes it was trained on are as small as 34 px on the short side (BUSI; 9% of BUSI's are
# under 64 px, BrEaST's smallest is 47 px), so the whole-image rule above does not apply to a
# box: one is flagged only when it is smaller than anything seen in training.
BOX_MIN_SIDE_PX = 32

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
WARN_BOX_TOO_SMALL = (
    "smaller than any lesion box the model was trained on ({w}x{h} pixels; at least {min_side} "
    "pixels are needed on the shorter side)"
)
WARN_TOO_SMALL = (
    "image too small to classify reliably ({w}x{h} pixels; at least {min_side} pixels are "
    "needed on the shorter side)"
)
WARN_BLANK = "the frame is almost blank (nearly uniform): there is nothing to classify"
WARN_NOT_IMAGE = "the pixel data is not a 2-D greyscale or colour image"
WARN_MODALITY = ("the DICOM file says this is {what}, not ultrasound: the classifier was made "
                 "for breast ultrasound only")
WARN_BODY_PART = ("the DICOM file says the body part is {part}, not the breast: the classifier "
                  "was made for breast ultrasound only")
WARN_EXAM_TYPE = ("the DICOM file says this is {what} (Image Type {term}), not a breast scan: "
                  "the classifier was made for breast ultrasound only")
WARN_DOPPLER_REGION = ("the DICOM file marks a colour-flow or Doppler region in this frame: the "
                       "classifier was trained on greyscale B-mode images only")
WARN_NOT_B_MODE = ("the DICOM file says this frame shows {what}, not a B-mode image: the "
                   "classifier was trained on B-mode images only")

# Modality codes in words (DICOM PS3.3 C.7.3.1.1.1), for the message.
_MODALITY_WORDS = {
    "CT": "a CT scan", "MR": "an MRI scan", "CR": "a radiograph", "DX": "a radiograph",
    "MG": "a mammogram", "NM": "a nuclear medicine image", "PT": "a PET scan",
    "XA": "an X-ray angiogram", "RF": "a fluoroscopy image", "OT": "an image of another kind",
    "SC": "a secondary capture (a screenshot or scanned image)", "IVUS": "intravascular ultrasound",
    "OCT": "an optical coherence tomography image", "ES": "an endoscopy image",
    "XC": "a photograph", "OP": "an eye photograph", "SM": "a microscopy slide",
    "RTDOSE": "a radiotherapy dose map", "RTIMAGE": "a radiotherapy image", "SEG": "a segmentation",
}
# Modalities that are not ultrasound for sure. "SC" and "OT" are not here: scanners and PACS
# export ultrasound screenshots under them, so they say nothing about the content.
_NOT_ULTRASOUND = frozenset(_MODALITY_WORDS) - {"SC", "OT"}
# BodyPartExamined values that are the breast (PS3.16 CID 4031 defined terms).
_BREAST_PARTS = frozenset({"BREAST", "CHEST", "THORAX", "AXILLA", "CHESTWALL"})
# Ultrasound examinations (Image Type value 3, PS3.3 C.8.5.6.1.1) that are not of the breast,
# in words. BREAST, CHEST, SMALL PARTS, MUSCULOSKELETAL (the axilla), INTRAOPERATIVE,
# PEDIATRIC, US BIOPSY and vendor terms may be breast scans: they say nothing against it.
_NOT_BREAST_EXAMS = {
    "ABDOMINAL": "an abdominal scan", "ENDOCAVITARY": "an endocavitary scan",
    "ENDORECTAL": "an endorectal scan", "ENDOVAGINAL": "an endovaginal scan",
    "EPICARDIAL": "a heart scan", "FETAL HEART": "a fetal heart scan",
    "GYNECOLOGY": "a gynaecological scan", "INTRACARDIAC": "a heart scan",
    "INTRAVASCULAR": "an intravascular scan", "NEONATAL HEAD": "a newborn's head scan",
    "OBSTETRICAL": "an obstetric scan", "OPHTHALMIC": "an eye scan", "PELVIC": "a pelvic scan",
    "RETROPERITONEAL": "a retroperitoneal scan", "SCROTAL": "a scrotal scan",
    "TEE": "a transoesophageal echocardiogram", "THYROID": "a thyroid scan",
    "TRANSCRANIAL": "a transcranial scan", "TTE": "a transthoracic echocardiogram",
    "VASCULAR": "a vascular scan",
}
# SequenceOfUltrasoundRegions codes (PS3.3 C.8.5.5.1.1-2).
_DOPPLER_DATA_TYPES = frozenset({2, 3, 4, 5, 6, 7})  # colour flow, PW/CW spectral, traces
_SPATIAL_FORMAT_WORDS = {2: "an M-mode trace", 3: "a spectral Doppler trace", 4: "a waveform"}


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


def check_record(record: ImageRecord) -> tuple[Flag, ...]:
    """Flags from what the file says: DICOM modality, body part, an ultrasound image's
    examination (Image Type value 3) and ultrasound region types.

    Plain images (PNG, JPEG, ...) say nothing, so they get no flag here. Never raises.
    """
    if not getattr(record, "is_dicom", False):
        return ()
    study = record.study
    flags: list[Flag] = []
    modality = (study.modality or "").strip().upper()
    if modality in _NOT_ULTRASOUND:
        flags.append(Flag(NOT_BREAST_ULTRASOUND, WARN_MODALITY.format(
            what=f"{_MODALITY_WORDS[modality]} (modality {modality})")))
    part = (study.body_part or "").strip().upper()
    if part and part not in _BREAST_PARTS:
        flags.append(Flag(NOT_BREAST_ULTRASOUND, WARN_BODY_PART.format(part=part.lower())))
    exam = study.exam_type
    if exam in _NOT_BREAST_EXAMS:
        flags.append(Flag(NOT_BREAST_ULTRASOUND, WARN_EXAM_TYPE.format(
            what=_NOT_BREAST_EXAMS[exam], term=exam)))
    kinds = tuple(getattr(study, "region_kinds", ()) or ())
    if any(kind in _DOPPLER_DATA_TYPES for _fmt, kind in kinds):
        flags.append(Flag(COLOUR_OVERLAY, WARN_DOPPLER_REGION))
    other = [_SPATIAL_FORMAT_WORDS[f] for f, _k in kinds if f in _SPATIAL_FORMAT_WORDS]
    if other and not any(f == 1 for f, _k in kinds):  # no 2-D region at all
        flags.append(Flag(NOT_B_MODE, WARN_NOT_B_MODE.format(what=other[0])))
    return tuple(flags)


def check_box_region(region: np.ndarray) -> tuple[Flag, ...]:
    """The checks of what the model classifies of a lesion box (the padded box's pixels): those
    of :func:`check_image`, with the size rule of lesion boxes (:data:`BOX_MIN_SIDE_PX`)."""
    return check_image(region, min_side=BOX_MIN_SIDE_PX, too_small=WARN_BOX_TOO_SMALL)


def check_image(pixels: np.ndarray, *, min_side: int = MIN_SIDE_PX,
                too_small: str = WARN_TOO_SMALL) -> tuple[Flag, ...]:
    """Intended-use flags for one frame's pixels; empty when nothing is wrong.

    Parameters
    ----------
    pixels : np.ndarray
        The frame as read by :func:`rcdnet_desktop.core.io.read_image`: uint8, ``(H, W)`` grey
        or ``(H, W, 3)`` RGB. Other dtypes are rescaled to 0..255 first.
    min_side, too_small : int, str
        The size rule: pixels on the shorter side below which the image is too small, and the
        words for it (``{w}``, ``{h}``, ``{min_side}`` filled in).

    Returns
    -------
    tuple of Flag
        One per problem found: colour overlay, image too small, almost blank (inside the scan
        area, on-screen text ignored), implausible geometry. Never raises for array input of
        any shape.
    """
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        return (Flag(NOT_IMAGE, WARN_NOT_IMAGE),)
    flags: list[Flag] = []
    h, w = int(a.shape[0]), int(a.shape[1])
    if min(h, w) < min_side:
        flags.append(Flag(TOO_SMALL, too_small.format(w=w, h=h, min_side=min_side)))
    if h == 0 or w == 0:
        flags.append(Flag(BLANK, WARN_BLANK))
        return tuple(flags)

    if a.ndim == 3 and colour_fraction(a) > COLOUR_MIN_FRACTION:
        flags.append(Flag(COLOUR_OVERLAY, WARN_COLOUR))

    u8 = _to_uint8(a)
    grey = u8 if u8.ndim == 2 else _channel_max(u8)
    if _is_blank(grey):
        flags.append(Flag(BLANK, WARN_BLANK))
    elif min(h, w) >= MIN_SIDE_PX and _implausible_geometry(grey):
        flags.append(Flag(IMPLAUSIBLE_GEOMETRY, WARN_GEOMETRY))
    return tuple(flags)


# --- blank frames, with on-screen text ignored --------------------------------------------------
# Scanner text, calipers and markers are thin bright strokes; a 5x5 median removes strokes up to
# 2 px wide, so a probe-in-air frame (an empty sector plus text) reads as blank, while the
# speckle and tissue of a real frame survive it. Large frames are shrunk first (text shrinks too).
BLANK_MEDIAN_KSIZE = 5
_BLANK_MAX_SIDE = 320
# Grey level from which a pixel belongs to the scan area rather than the black background, and
# the smallest share of the frame a scan area covers (below it the frame is as good as black).
BLANK_BACKGROUND_LEVEL = 8
BLANK_MIN_AREA = 0.02
# The scan area is empty when most of it is one flat grey: this share of its pixels within
# this many grey levels of its median (on-screen text, a few per cent, does not change that;
# speckle spreads tissue over tens of grey levels).
BLANK_FLAT_SHARE = 0.8
BLANK_FLAT_TOLERANCE = 6


def _is_blank(grey: np.ndarray) -> bool:
    """Nearly uniform: a low standard deviation or one grey level almost everywhere, measured
    on the raw frame, then again inside the scan area once thin strokes (text) are removed."""
    if _uniform(grey):
        return True
    import cv2  # lazy: imported by the preprocessing anyway

    g = grey
    scale = _BLANK_MAX_SIDE / max(g.shape)
    if scale < 1.0:
        g = cv2.resize(g, (max(1, round(g.shape[1] * scale)), max(1, round(g.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    if min(g.shape) < BLANK_MEDIAN_KSIZE:
        return False
    g = cv2.medianBlur(np.ascontiguousarray(g), BLANK_MEDIAN_KSIZE)
    # The scan area: what is not the black background. An empty sector (probe in air) is a
    # faint, flat area; real tissue inside it has speckle and structure.
    area = g >= BLANK_BACKGROUND_LEVEL
    if area.mean() < BLANK_MIN_AREA:
        return True
    values = g[area].astype(np.int16)
    flat = np.abs(values - int(np.median(values))) <= BLANK_FLAT_TOLERANCE
    return float(flat.mean()) >= BLANK_FLAT_SHARE


def _uniform(grey: np.ndarray) -> bool:
    counts = np.bincount(grey.ravel(), minlength=256)
    mode_fraction = float(counts.max()) / grey.size
    return float(grey.std()) < BLANK_MAX_STD or mode_fraction > BLANK_MAX_MODE_FRACTION


# --- implausible geometry ----------------------------------------------------------------------
# Pixel data read with the wrong Rows/Columns (swapped, halved) or RGB bytes read as greyscale
# produce a frame whose rows do not continue each other: row i matches row i+k (k = 2, 3, ...)
# or row i+1 shifted sideways better than the row right below it. In a real image, tissue and
# speckle make each row most like the next one at the same place. The test compares, on sampled
# rows with texture, the normalised correlation of row i with row i+1 unshifted against the best
# correlation with rows i+1..i+4 at any other shift (circular, by FFT), and flags the frame when
# the other wins on most rows by a clear margin.
GEOMETRY_ROWS = 32
GEOMETRY_MAX_LAG = 4
GEOMETRY_MARGIN = 0.1
GEOMETRY_MIN_SHARE = 0.6
# ...and the other match must be a real one: in noise without structure nothing matches
# anything (correlations of a few tenths at most), which is not a sign of scrambled rows.
GEOMETRY_MIN_MATCH = 0.5
WARN_GEOMETRY = ("the image looks scrambled (its rows do not line up: wrong width or height in "
                 "the file, or colour data read as grey?): the result is meaningless")


def _implausible_geometry(grey: np.ndarray) -> bool:
    h, w = grey.shape
    if h < 2 * GEOMETRY_MAX_LAG + 8 or w < 16:
        return False
    rows = np.unique(np.linspace(h * 0.1, h * 0.9 - GEOMETRY_MAX_LAG - 1,
                                 GEOMETRY_ROWS).astype(int))
    needed = np.unique((rows[:, None] + np.arange(GEOMETRY_MAX_LAG + 1)).ravel())
    a = grey[needed].astype(np.float32)
    a -= a.mean(axis=1, keepdims=True)
    norms = np.sqrt((a * a).sum(axis=1))
    textured = norms > 4.0 * np.sqrt(w)  # row standard deviation above 4 grey levels
    spectra = np.fft.rfft(a, axis=1)
    idx = np.searchsorted(needed, rows[:, None] + np.arange(GEOMETRY_MAX_LAG + 1))  # (R, L+1)
    ok = textured[idx]
    corr = np.fft.irfft(spectra[idx[:, :1]] * np.conj(spectra[idx[:, 1:]]), n=w, axis=-1)
    corr /= norms[idx[:, :1], None] * norms[idx[:, 1:], None] + 1e-12   # (R, L, w)
    same = corr[:, 0, 0].copy()
    corr[:, 0, [0, 1, -1]] = -1.0  # the unshifted neighbour and its +-1 px jitter
    corr[~ok[:, 1:]] = -1.0  # untextured partner rows say nothing
    best_other = corr.max(axis=(1, 2))
    counted_rows = ok[:, 0] & ok[:, 1]
    counted = int(counted_rows.sum())
    wins = int((counted_rows & (best_other > same + GEOMETRY_MARGIN)
                & (best_other > GEOMETRY_MIN_MATCH)).sum())
    return counted >= GEOMETRY_ROWS // 4 and wins >= GEOMETRY_MIN_SHARE * counted
