"""How the viewer puts a prediction's input and warnings into words.

The result itself (band, decision at the cut-off, probability, headline, tone) is
:mod:`rcdnet_desktop.core.result`'s, shared with every export; this module adds what only the
viewer shows: where the lesion box came from, the pending input line, the warning banner and the
marks in the image list and the batch table.
"""

from __future__ import annotations

from rcdnet_desktop.core import result
from rcdnet_desktop.core.measure import Calibration
from rcdnet_desktop.core.result import (
    LESION_REGION_WORDS,
    OUTSIDE_INTENDED_USE,
    is_no_lesion_warning,
    no_lesion_found,
)
from rcdnet_desktop.core.types import Box, Prediction

BOX_SOURCE_WORDS = {
    "auto": "lesion box found automatically",
    "user": "lesion box drawn by you",
    "none": "whole image",
}
"""Where the classified region came from, by ``Prediction.box_source``."""

AUTO_BOX_TAG = "found automatically"
"""The label the image view puts on an automatic lesion box."""


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def box_source_words(p: Prediction) -> str:
    """``"lesion box found automatically"``, ``"lesion box drawn by you"`` or ``"whole image"``."""
    return BOX_SOURCE_WORDS.get(p.box_source, BOX_SOURCE_WORDS["none"])


def _box_size(box: Box, calibration: Calibration | None = None) -> str:
    mm = calibration.box_size_text(box) if calibration is not None else ""
    return f"{box.w} x {box.h} px{f' ({mm})' if mm else ''} at ({box.x}, {box.y})"


def input_words(p: Prediction, calibration: Calibration | None = None) -> str:
    """The input of a prediction in words, for the panel's "Input:" line.

    E.g. ``"lesion box found automatically, 60 x 48 px (15.7 x 12.6 mm) at (90, 76);
    localiser confidence 0.93"``. The size is that of the box as drawn or found (the model saw
    it with a margin); in mm when ``calibration`` gives the image's scale.
    """
    text = box_source_words(p)
    box = p.box if p.box is not None else p.roi
    if p.box_source != "none" and box is not None:
        text += f", {_box_size(box, calibration)}"
    if p.box_source == "auto" and p.finding is not None:
        text += f"; localiser confidence {p.finding.confidence:.2f}"
    if p.lesion_region is not None:
        text += f"; {LESION_REGION_WORDS}, {_box_size(p.lesion_region, calibration)}"
    if p.fused:
        text += "; averaged with the whole image"
    return text


def pending_input_words(user_box: Box | None, auto_box: bool,
                        calibration: Calibration | None = None) -> str:
    """The "Input:" line while the result is awaited.

    ``auto_box``: no box is drawn and the model has a lesion localiser, which will look for one.
    """
    if user_box is not None:
        return f"{BOX_SOURCE_WORDS['user']}, {_box_size(user_box, calibration)}"
    if auto_box:
        return "looking for the lesion automatically..."
    return BOX_SOURCE_WORDS["none"]


def other_warnings(p: Prediction) -> list[str]:
    """The prediction's warnings minus those the panel states on their own.

    The no-lesion line is said by the headline, and the UNTRAINED line has its own banner.
    """
    return [w for w in p.warnings
            if not is_no_lesion_warning(w) and not (p.untrained and "UNTRAINED" in w)]


def warning_banner(p: Prediction) -> str:
    """The words of the banner above the result: the warnings the panel does not state on
    their own, headed "Outside intended use" when a check flagged the image; "" when none."""
    words = other_warnings(p)
    if not words:
        return OUTSIDE_INTENDED_USE if p.outside_intended_use else ""
    head = OUTSIDE_INTENDED_USE if p.outside_intended_use else "Warning"
    if len(words) == 1:
        return f"{head}: {words[0]}"
    return f"{head}:" + "".join(f"\n\N{BULLET} {_capitalised(w)}" for w in words)


def list_mark(p: Prediction) -> str:
    """The short mark a warning puts in the image list ("" when none)."""
    if p.outside_intended_use:
        return OUTSIDE_INTENDED_USE.lower()
    if other_warnings(p):
        return "warning"
    if no_lesion_found(p):
        return "no lesion found"
    return ""


def status_words(p: Prediction) -> str:
    """A result's status in the batch table: "ok", or the warnings in words."""
    if not p.warnings:
        return "ok"
    head = OUTSIDE_INTENDED_USE.lower() if p.outside_intended_use else "warning"
    return f"{head}: {'; '.join(p.warnings)}"


def list_text(p: Prediction) -> str:
    """The prediction under a file name in the image list: the result's two short lines
    (:func:`rcdnet_desktop.core.result.list_text`), and a warning mark above them when there is
    a warning."""
    text = result.list_text(p)
    mark = list_mark(p)
    return f"\N{WARNING SIGN} {mark}\n{text}" if mark else text


__all__ = [
    "list_text",
    "AUTO_BOX_TAG",
    "BOX_SOURCE_WORDS",
    "box_source_words",
    "input_words",
    "list_mark",
    "other_warnings",
    "pending_input_words",
    "status_words",
    "warning_banner",
]
