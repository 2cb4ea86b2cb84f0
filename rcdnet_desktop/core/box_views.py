"""Box-stable probabilities: views of a lesion box, and the words for a box-dependent result.

Two clinicians never draw the same box around a lesion, and a single classifier view reacts to
how much of the surroundings the box takes in: the same lesion boxed 10% larger or shifted by a
tenth of its size can land on the other side of the suspicious cut-off. So the engine classifies
a lesion box (drawn by the user or found by the localiser) through a small fixed set of *views*
of it, the box scaled about its centre and shifted by a share of its size, and averages their
logits; the probability then depends less on exactly where the edges were drawn. The box the
result carries stays the box as given; the heat maps are the first view's (the box classified).

Averaging views smooths the probability's small wobbles but not its trend with the amount of
surroundings a box takes in (every view of a larger box is larger). What removes that trend is
to classify the lesion itself: with ``snap_min_iou`` in the section and a lesion localiser in
the bundle, a user's box is replaced, for classification only, by the bounding box of the
lesion region the localiser outlines around it (:func:`~rcdnet_desktop.core.lesion.
lesion_in_box`), when their overlap (IoU) is at least that much; a box that matches no region
so well (a lesion the localiser misses, or a box drawn on purpose around something else) is
classified as drawn. The views are then views of that lesion box.

The set of views travels in the model card's ``box_views`` section (a card without one
classifies the box alone): ``{"views": [[scale, dx, dy], ...], "snap_min_iou": optional IoU in
(0, 1], ...free-form keys (how the set was chosen, what it measured)}``. The first view is
always ``[1, 0, 0]``, the box as given; ``dx`` and ``dy`` are shares of the box's width and
height. The training package chooses the settings on the training sites' validation images
(``rcdnet-train box-stability --choose``).

Where the views still disagree about the decision (some below the cut-off, some at or above
it), the prediction carries their probability range
(:attr:`~rcdnet_desktop.core.types.Prediction.box_p_range`) and
:func:`rcdnet_desktop.core.result.box_dependence_sentence` says so in one sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rcdnet_desktop.core.types import Box

SECTION = "box_views"
"""The model card's key for the set of views."""
MAX_VIEWS = 32
MAX_SHIFT = 1.0
SCALE_RANGE = (0.25, 4.0)


@dataclass(frozen=True)
class BoxView:
    """One view of a lesion box: scaled about its centre, then shifted.

    Attributes
    ----------
    scale : float
        Factor on the box's width and height (1: as given).
    dx, dy : float
        Shift of the centre as a share of the box's width (``dx``, positive to the right) and
        height (``dy``, positive downwards).
    """

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.dx == 0.0 and self.dy == 0.0

    def to_list(self) -> list[float]:
        return [self.scale, self.dx, self.dy]


AS_GIVEN = BoxView()


def apply(box: Box, view: BoxView, image_hw: tuple[int, int]) -> Box:
    """The box seen through ``view``, in image pixels, clipped to the image.

    Parameters
    ----------
    box : Box
        The lesion box as given or found (unpadded).
    view : BoxView
        Scale about the box's centre, then shift by shares of the box's own size.
    image_hw : (int, int)
        Height and width of the image; the result keeps at least one pixel inside it.
    """
    ih, iw = int(image_hw[0]), int(image_hw[1])
    cx = box.x + box.w / 2 + view.dx * box.w
    cy = box.y + box.h / 2 + view.dy * box.h
    w, h = box.w * view.scale, box.h * view.scale
    x0 = min(max(0, round(cx - w / 2)), iw - 1)
    y0 = min(max(0, round(cy - h / 2)), ih - 1)
    x1 = max(min(iw, round(cx + w / 2)), x0 + 1)
    y1 = max(min(ih, round(cy + h / 2)), y0 + 1)
    return Box(x0, y0, x1 - x0, y1 - y0)


def parse_views(section: dict[str, Any] | None) -> tuple[BoxView, ...]:
    """The card section's views, the box as given first; ``(AS_GIVEN,)`` for an empty section.

    Raises
    ------
    ValueError
        A malformed section (see :func:`validate_section` for the rules).
    """
    if not section:
        return (AS_GIVEN,)
    raw = section.get("views")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_VIEWS:
        raise ValueError(f"views must be a list of 1 to {MAX_VIEWS} [scale, dx, dy] triples")
    views = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 3 and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in item)):
            raise ValueError(f"each view must be [scale, dx, dy] numbers, got {item!r}")
        scale, dx, dy = (float(v) for v in item)
        if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
            raise ValueError(f"a view's scale must be within {SCALE_RANGE}, got {scale}")
        if abs(dx) > MAX_SHIFT or abs(dy) > MAX_SHIFT:
            raise ValueError(f"a view's shift must be within +-{MAX_SHIFT} of the box's size, "
                             f"got {dx}, {dy}")
        views.append(BoxView(scale, dx, dy))
    if not views[0].is_identity:
        raise ValueError("the first view must be [1, 0, 0]: the box as given (its heat maps "
                         "are the ones shown)")
    if len(set(views)) != len(views):
        raise ValueError("views must not repeat")
    return tuple(views)


def snap_min_iou(section: dict[str, Any] | None) -> float | None:
    """The section's ``snap_min_iou``, or None when a user's box is classified as drawn.

    Raises
    ------
    ValueError
        Not a number in (0, 1].
    """
    if not section or section.get("snap_min_iou") is None:
        return None
    v = section["snap_min_iou"]
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
        raise ValueError(f"snap_min_iou must be a number in (0, 1], got {v!r}")
    return float(v)


def validate_section(section: Any, bad: Callable[[str], Exception]) -> None:
    """Check the card's ``box_views`` section; raise ``bad(message)`` when it is malformed."""
    if not isinstance(section, dict):
        raise bad(f"{SECTION} must be an object (empty to classify the box alone)")
    if not section:
        return
    try:
        parse_views(section)
        snap_min_iou(section)
    except ValueError as exc:
        raise bad(f"{SECTION}.{exc}") from exc


def view_boxes(box: Box, views: Sequence[BoxView], image_hw: tuple[int, int]) -> list[Box]:
    """:func:`apply` of every view to one box (the as-given view gives the box itself)."""
    return [apply(box, v, image_hw) for v in views]

