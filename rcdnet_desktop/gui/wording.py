"""How the viewer puts a prediction into words: likelihood band, lesion box source, no-lesion note.

Every widget that shows these (prediction panel, image list, batch table, image view) takes its
words from here, so the same result reads the same everywhere. The band itself is
:mod:`rcdnet_desktop.core.bands`'s (carried by the prediction); nothing here re-derives it.
"""

from __future__ import annotations

from rcdnet_desktop.core.inference import NO_LESION_WARNING
from rcdnet_desktop.core.measure import Calibration
from rcdnet_desktop.core.types import Box, Prediction

BOX_SOURCE_WORDS = {
    "auto": "lesion box found automatically",
    "user": "lesion box drawn by you",
    "none": "whole image",
}
"""Where the classified region came from, by ``Prediction.box_source``."""

AUTO_BOX_TAG = "found automatically"
"""The label the image view puts on an automatic lesion box."""

NO_LESION_TEXT = ("No lesion found with confidence: the whole image was classified. "
                  "Draw a box around the lesion to classify it.")
"""What the panel says when the automatic localiser found no lesion it was confident about."""

SUSPICIOUS_WORD = "suspicious"
SUSPICIOUS_TIP = ("Suspicious: the probability of malignancy is at or above the model's "
                  "threshold for flagging a result.")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def band_text(p: Prediction) -> str:
    """The likelihood band with its range, and "suspicious" when flagged.

    E.g. ``"moderate (10-50%)"`` or ``"high (50-95%), suspicious"``.
    """
    text = p.band.label if p.band is not None else ""
    if p.suspicious:
        text = f"{text}, {SUSPICIOUS_WORD}" if text else SUSPICIOUS_WORD
    return text


OUTSIDE_INTENDED_USE = "Outside intended use"


def band_headline(p: Prediction) -> str:
    """The panel's headline: the band, capitalised, e.g. ``"Moderate (10-50%)"``.

    Marked UNTRAINED like the class label when the weights are, and led by "Outside intended
    use" when an intended-use check flagged the image (the numbers stay visible below it).
    """
    text = _capitalised(band_text(p))
    if p.outside_intended_use:
        text = f"{OUTSIDE_INTENDED_USE} \N{EM DASH} {band_text(p)}"
    return f"UNTRAINED: {text}" if p.untrained else text


def band_note(p: Prediction) -> str:
    """What the band means, in one short sentence (shown small under the headline)."""
    band = p.band
    if band is None:  # pragma: no cover - Prediction always fills it
        return ""
    text = "Likelihood of malignancy"
    if band.birads_range:
        text += f": the BI-RADS {band.birads_range} range, not a BI-RADS assessment"
    return text + "."


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


def no_lesion_found(p: Prediction) -> bool:
    """True when the localiser looked and found no lesion with confidence (whole image used)."""
    head = NO_LESION_WARNING.split(":")[0]
    return p.box_source == "none" and any(w.startswith(head) for w in p.warnings)


def other_warnings(p: Prediction) -> list[str]:
    """The prediction's warnings minus those the panel states on their own.

    The no-lesion line has its own notice, and the UNTRAINED line its own banner.
    """
    head = NO_LESION_WARNING.split(":")[0]
    return [w for w in p.warnings
            if not w.startswith(head) and not (p.untrained and "UNTRAINED" in w)]


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
    """The prediction under a file name in the image list (two short lines, and a warning
    mark above them when there is a warning)."""
    text = f"{p.display_label}, {band_text(p)}\nP(malignant) {p.p_malignant:.2f}"
    mark = list_mark(p)
    return f"\N{WARNING SIGN} {mark}\n{text}" if mark else text


__all__ = [
    "AUTO_BOX_TAG",
    "BOX_SOURCE_WORDS",
    "NO_LESION_TEXT",
    "OUTSIDE_INTENDED_USE",
    "SUSPICIOUS_TIP",
    "band_headline",
    "band_note",
    "band_text",
    "box_source_words",
    "input_words",
    "list_mark",
    "list_text",
    "no_lesion_found",
    "other_warnings",
    "pending_input_words",
    "status_words",
    "warning_banner",
]
