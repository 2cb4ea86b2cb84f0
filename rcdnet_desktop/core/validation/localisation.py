"""Does the automatic lesion box find the lesion a hospital outlined? Box against mask.

No Qt here. A box *hits* the lesion when its intersection over union with the mask's pixels is
at least :data:`IOU_HIT`, or when its centre lies inside the mask (:data:`HIT_RULE`): a box
somewhat larger or smaller than the lesion, but on it, counts; a box beside it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.errors import UnreadableImageError
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.types import Box

IOU_HIT = 0.1
"""Least intersection over union of the box with the mask's pixels for a hit."""

HIT_RULE = (f"the automatic box hits the lesion when its intersection over union with the "
            f"mask's pixels is at least {IOU_HIT:g}, or its centre lies inside the mask")
"""The rule in words, for the report."""


class MaskError(ValueError):
    """A mask cannot be used (unreadable, another size than its image, empty)."""


@dataclass(frozen=True)
class BoxOnMask:
    """Where a lesion box lies against a mask."""

    iou: float
    centre_inside: bool

    @property
    def hit(self) -> bool:
        """The box hits the lesion (:data:`HIT_RULE`)."""
        return self.iou >= IOU_HIT or self.centre_inside


def read_mask(paths: Sequence[Path], shape: tuple[int, ...]) -> np.ndarray:
    """The union of binary mask files as a bool array of ``shape[:2]``.

    Raises
    ------
    MaskError
        A file cannot be read, is another size than the image, or the masks are empty.
    """
    h, w = int(shape[0]), int(shape[1])
    union = np.zeros((h, w), dtype=bool)
    for p in paths:
        try:
            pixels = read_image(p).pixels
        except UnreadableImageError as exc:
            raise MaskError(f"mask {exc}") from exc
        if pixels.shape[:2] != (h, w):
            raise MaskError(f"mask {p}: {pixels.shape[1]} x {pixels.shape[0]} pixels, the image "
                            f"is {w} x {h}")
        grey = pixels.max(axis=2) if pixels.ndim == 3 else pixels
        union |= grey >= 128  # binary 0/255; the threshold keeps JPEG noise out
    if not union.any():
        raise MaskError(f"mask {', '.join(map(str, paths))}: it marks no pixel")
    return union


def box_on_mask(box: Box, mask: np.ndarray) -> BoxOnMask:
    """Intersection over union of ``box`` with the mask's pixels, and whether its centre is in
    the mask."""
    h, w = mask.shape
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(w, box.x + box.w), min(h, box.y + box.h)
    inside = int(mask[y0:y1, x0:x1].sum()) if x1 > x0 and y1 > y0 else 0
    union = box.w * box.h + int(mask.sum()) - inside
    cx, cy = int(box.x + box.w / 2), int(box.y + box.h / 2)
    centre = 0 <= cx < w and 0 <= cy < h and bool(mask[cy, cx])
    return BoxOnMask(inside / union if union else 0.0, centre)


__all__ = ["HIT_RULE", "IOU_HIT", "BoxOnMask", "MaskError", "box_on_mask", "read_mask"]
