"""The lesion box from a localiser's probability map: plain numpy and OpenCV, no torch.

:func:`find_lesion` turns the probability map of the lesion localiser
(:mod:`~rcdnet_desktop.core.localiser` in torch, or its ONNX graph) into a
:class:`~rcdnet_desktop.core.types.LesionFinding`: the connected region above
:data:`PROB_THRESHOLD` with the largest probability mass, its outline and bounding box in image
pixels, and a confidence (the region's mean probability).
"""

from __future__ import annotations

import numpy as np

from rcdnet_desktop.core.types import Box, LesionFinding

PROB_THRESHOLD = 0.5
MIN_AREA_SHARE = 0.002  # regions smaller than this share of the image are noise, not lesions


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

    h, w = prob.shape
    binary = (prob >= PROB_THRESHOLD).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    best, best_mass = 0, 0.0
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < MIN_AREA_SHARE * h * w:
            continue
        mass = float(prob[labels == k].sum())
        if mass > best_mass:
            best, best_mass = k, mass
    if best == 0:
        return None
    region = labels == best
    confidence = float(prob[region].mean())
    if confidence < min_confidence:
        return None
    sy, sx = image_hw[0] / h, image_hw[1] / w
    x, y, bw, bh = (int(v) for v in stats[best, :4])
    x0, y0 = int(np.floor(x * sx)), int(np.floor(y * sy))
    x1 = min(image_hw[1], int(np.ceil((x + bw) * sx)))
    y1 = min(image_hw[0], int(np.ceil((y + bh) * sy)))
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float32)
    outline = (outline + 0.5) * np.array([sx, sy], dtype=np.float32)
    return LesionFinding(box=Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0)),
                         outline=outline, confidence=confidence,
                         area_share=float(region.mean()))
