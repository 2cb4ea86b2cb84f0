"""One case's outcome in a local validation: its result (or why it has none) and, where the
hospital outlined the lesion, where the automatic box lies on it.

No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.errors import UnreadableImageError
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.types import Prediction
from rcdnet_desktop.core.validation.cases import Case
from rcdnet_desktop.core.validation.localisation import (
    BoxOnMask,
    MaskError,
    box_on_mask,
    read_mask,
)


@dataclass(frozen=True)
class Outcome:
    """A case, its result, and its box against its mask.

    Attributes
    ----------
    case : Case
        The labelled image.
    prediction : Prediction or None
        The result, as ``rcdnet classify`` gives it; None when the file was not classified.
    error : str
        Why it was not classified (names the file).
    has_mask : bool
        A usable mask was given (read, same size as the image, not empty).
    box_on_mask : BoxOnMask or None
        The automatic lesion box against the mask; None without a usable mask, or when the
        localiser found no box (a miss).
    mask_problem : str
        Why a mask that was given could not be used.
    """

    case: Case
    prediction: Prediction | None = None
    error: str = ""
    has_mask: bool = False
    box_on_mask: BoxOnMask | None = None
    mask_problem: str = ""


def outcome(case: Case, item: BatchItem) -> Outcome:
    """The outcome of ``case`` from its review item (its mask, if any, read here)."""
    pred = item.prediction
    if pred is None:
        return Outcome(case, error=item.error or f"{case.path}: not classified")
    if not case.masks:
        return Outcome(case, pred)

    try:
        # The image's size: the review keeps only the small prediction, not the pixels.
        shape = read_image(case.path, frame=pred.frame).pixels.shape
        mask = read_mask(case.masks, shape)
    except (MaskError, UnreadableImageError) as exc:
        return Outcome(case, pred, mask_problem=str(exc))
    box = pred.box if pred.box_source == "auto" else None
    return Outcome(case, pred, has_mask=True,
                   box_on_mask=box_on_mask(box, mask) if box is not None else None)


__all__ = ["Outcome", "outcome"]
