"""The lesion box from a localiser's probability map: plain numpy and OpenCV, no torch.

:func:`find_lesion` turns the probability map of the lesion localiser
(:mod:`~rcdnet_desktop.core.model.localiser` in torch, or its ONNX graph) into a
:class:`~rcdnet_desktop.core.types.LesionFinding`: the connected region above
:data:`PROB_THRESHOLD` with the largest probability mass, its outline and bounding box in image
pixels, and a confidence (the region's mean probability).

:func:`lesion_in_box` finds, among the same regions, the one a given box (drawn by a user) was
drawn around: the lesion's own extent, the same however loosely or tightly the box was drawn
(the model card's ``box_views.snap_min_iou``, :mod:`~rcdnet_desktop.core.box_views`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rcdnet_desktop.core.types import Box, LesionFinding

PROB_THRESHOLD = 0.5
MIN_AREA_SHARE = 0.002  # regions smaller than this share of the image are noise, not lesions


def box_iou(a: Box | Sequence[float], b: Box | Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes (or :class:`Box`)."""
    a = a.as_tuple() if isinstance(a, Box) else a
    b = b.as_tuple() if isinstance(b, Box) else b
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _regions(prob: np.ndarray, image_hw: tuple[int, int]):
    """The map's regions above :data:`PROB_THRESHOLD` that are not noise: the label image and
    ``(label, box in image pixels, probability mass, confidence)`` per region."""
    import cv2

    h, w = prob.shape
    binary = (prob >= PROB_THRESHOLD).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    sy, sx = image_hw[0] / h, image_hw[1] / w
    out = []
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < MIN_AREA_SHARE * h * w:
            continue
        inside = prob[labels == k]
        x, y, bw, bh = (int(v) for v in stats[k, :4])
        x0, y0 = int(np.floor(x * sx)), int(np.floor(y * sy))
        x1 = min(image_hw[1], int(np.ceil((x + bw) * sx)))
        y1 = min(image_hw[0], int(np.ceil((y + bh) * sy)))
        out.append((k, Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0)), float(inside.sum()),
                    float(inside.mean())))
    return labels, out


def find_lesion(prob: np.ndarray, image_hw: tuple[int, int],
                min_confidence: float = 0.0) -> LesionFinding | None:
    """The most probable lesion region of a probability map, in image pixels, or None.

    Parameters
    ----------
    prob : ndarray (h, w)
        Lesion probability over the model's input view (the whole image squeezed to h x w).
    image_hw : (int, int)
        Height and width of the image the view was made from.
    min_confidence : float
        Regions whose mean probability is below this are not reported (the model card's value).
    """
    import cv2

    labels, regions = _regions(prob, image_hw)
    if not regions:
        return None
    best, box, _, confidence = max(regions, key=lambda r: r[2])
    if confidence < min_confidence:
        return None
    region = labels == best
    h, w = prob.shape
    sy, sx = image_hw[0] / h, image_hw[1] / w
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float32)
    outline = (outline + 0.5) * np.array([sx, sy], dtype=np.float32)
    return LesionFinding(box=box, outline=outline, confidence=confidence,
                         area_share=float(region.mean()))


def lesion_in_box(prob: np.ndarray, image_hw: tuple[int, int], box: Box, min_iou: float,
                  min_confidence: float = 0.0) -> Box | None:
    """The bounding box of the lesion region a drawn box was drawn around, or None.

    The region (above :data:`PROB_THRESHOLD`, with at least ``min_confidence``) whose bounding
    box overlaps ``box`` most, when that overlap (IoU) is at least ``min_iou``: a box drawn a
    little larger, smaller or off-centre around the same lesion gives the same region. None
    when no region matches the box that well (the box is then used as drawn).
    """
    _, regions = _regions(prob, image_hw)
    scored = [(box_iou(r_box, box), r_box) for _, r_box, _, conf in regions
              if conf >= min_confidence]
    if not scored:
        return None
    iou, best = max(scored, key=lambda s: s[0])
    return best if iou >= min_iou else None
