"""The one result vocabulary: likelihood band, calibrated P and the decision at the cut-off.

No Qt here. A clinician acts on what the screen, the printout and the PACS say, so every place
that shows a result -- the prediction panel, the image list, the batch table, the PNG and PDF
reports (and the DICOM Secondary Capture made from them), the Structured Report, the CSV and the
model card dialog -- takes its words, its numbers and its colour from :func:`describe`, and
only renders them.

The rules, each stated once:

* **The decision** is the model card's suspicious cut-off (``Prediction.suspicious``):
  :data:`SUSPICIOUS` at or above it, :data:`BELOW_CUTOFF` below it. The class with the higher
  probability (which changes at 0.5, not at the cut-off) is never shown as a decision: nothing
  says "benign" for a result at or above the cut-off.
* **The band** is the likelihood band of P (:mod:`rcdnet_desktop.core.bands`), aligned with the
  BI-RADS likelihood-of-malignancy ranges but not a BI-RADS assessment.
* **The tone** (:func:`tone`): *alert* for a suspicious result, *reassuring* only inside the
  BI-RADS 3 range (P at most :data:`REASSURING_MAX`) for a lesion box whose result does not
  depend on how the box is drawn, *outside* when an intended-use check flagged the image, and
  *neutral* for everything else (the 2-10% band is BI-RADS 4A, a biopsy category; a whole
  image classified without a box is less reliable).
* **The numbers** (:func:`probability_text`): P is printed with the same rounding as the
  cut-off and the band limits it is compared with, and with enough decimals that the printed
  numbers never contradict the decision or the band (:mod:`rcdnet_desktop.core.numbers`).
* **A site profile** in use (:mod:`rcdnet_desktop.core.site_profile`) is said wherever a result
  is shown, in the words of :func:`site_sentence`; the cut-off is then the site's, and
  :func:`cutoff_sentence` says what the site measured there instead of the card's figures.
* **Frames** are counted from 1 wherever a person reads them (:func:`frame_number`): the
  viewer, the CSV, file names, the reports and the SR (DICOM's frame numbers start at 1 too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rcdnet_desktop.core.numbers import decimals_apart, fixed, shortest
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.types import Prediction

if TYPE_CHECKING:
    from rcdnet_desktop.core.site_profile import SiteProfile

SUSPICIOUS = "suspicious"
"""The decision at or above the model card's cut-off."""
BELOW_CUTOFF = "below the cut-off"
"""The decision below it (not "benign": the model cannot rule cancer out)."""
DECISION_CODES = {True: "suspicious", False: "below_cutoff"}
"""The decision as a machine-readable value (CSV ``decision`` column, JSON output)."""

REASSURING_MAX = 0.02
"""The top of the BI-RADS 3 likelihood range (<= 2%): the only range shown as reassuring."""

TONES = ("reassuring", "neutral", "alert", "outside")
"""How a result is coloured: green, neutral, red, amber (outside intended use)."""

OUTSIDE_INTENDED_USE = "Outside intended use"
NO_LESION_HEADLINE = "No lesion found: draw a box around the lesion"
"""The headline when the localiser found no lesion with confidence."""
WHOLE_IMAGE_TAG = "whole image, less reliable"
"""How a result from the whole image (no lesion box) is labelled wherever its band is shown."""
WHOLE_IMAGE_NOTE = ("The whole image was classified, without a lesion box: less reliable "
                    "than a box around the lesion. Draw one to classify the lesion.")
LESION_REGION_WORDS = "classified as the lesion the localiser outlines in it"
"""Said with the input when a drawn box was classified as the lesion region the localiser
outlines in it (``Prediction.lesion_region``), so the box stays what the reader drew while the
result does not move with its edges."""
SUSPICIOUS_TIP = ("Suspicious: the probability of malignancy is at or above the model's "
                  "cut-off for flagging a result.")
UNTRAINED_PREFIX = "UNTRAINED"

FRAME_CONVENTION = ("Frames are counted from 1 (the first frame is frame 1), as DICOM counts "
                    "them, in the viewer, the CSV, file names, the reports and the SR.")

SITE_CARD_NOTE = ("A site profile is in use: results are decided at its operating point, not "
                  "at the model card's described below.")
"""Said above the model card when a site profile is in use (the card's figures are the
card's; the profile's are in :func:`site_sentence`)."""

NO_LESION_PREFIX = "no lesion found with confidence"
"""How the engine's no-lesion warning begins (:data:`rcdnet_desktop.core.model.engine.
NO_LESION_WARNING`)."""


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def frame_number(index: int) -> int:
    """The frame a person reads for frame ``index`` (0-based in the code): ``index + 1``."""
    return int(index) + 1


def decision_word(p: Prediction) -> str:
    """:data:`SUSPICIOUS` or :data:`BELOW_CUTOFF`."""
    return SUSPICIOUS if p.suspicious else BELOW_CUTOFF


def decision_code(p: Prediction) -> str:
    """``"suspicious"`` or ``"below_cutoff"`` (CSV and JSON)."""
    return DECISION_CODES[bool(p.suspicious)]


def whole_image(p: Prediction) -> bool:
    """The whole image was classified (no lesion box)."""
    return p.box_source == "none"


def is_no_lesion_warning(warning: str) -> bool:
    """``warning`` is the engine's "no lesion found" line (the headline says it instead)."""
    return warning.startswith(NO_LESION_PREFIX)


def no_lesion_found(p: Prediction) -> bool:
    """The localiser looked and found no lesion with confidence (the whole image was used)."""
    return whole_image(p) and any(is_no_lesion_warning(w) for w in p.warnings)


def tone(p: Prediction) -> str:
    """One of :data:`TONES` (see the module's rules)."""
    if p.outside_intended_use:
        return "outside"
    if p.suspicious:
        return "alert"
    if whole_image(p) or p.box_dependent or p.untrained:
        return "neutral"
    band = p.band
    return "reassuring" if band is not None and band.upper <= REASSURING_MAX else "neutral"


def threshold_of(p: Prediction, op: OperatingPoint | None) -> float:
    """The cut-off ``p`` was decided at: the prediction's own, else the operating point's."""
    if p.threshold is not None:
        return float(p.threshold)
    return (op or OperatingPoint.from_card(None)).threshold


def decimals_for(p: Prediction, op: OperatingPoint | None = None, least: int = 2) -> int:
    """Decimals for P and its cut-off so that neither the decision nor the band is
    contradicted by the printed numbers (at least ``least``)."""
    limits = [threshold_of(p, op)]
    if p.band is not None:
        limits += [p.band.lower, p.band.upper]
    return decimals_apart(p.p_malignant, limits, least)


def probability_text(p: Prediction, op: OperatingPoint | None = None, least: int = 2) -> str:
    """P(malignant) as printed everywhere, e.g. ``"0.35"``, ``"0.155"`` beside a 0.158 cut-off."""
    return fixed(p.p_malignant, decimals_for(p, op, least))


def cutoff_text(p: Prediction, op: OperatingPoint | None = None, least: int = 2) -> str:
    """The cut-off with the same rounding as :func:`probability_text`."""
    return fixed(threshold_of(p, op), decimals_for(p, op, least))


def band_text(p: Prediction) -> str:
    """The band with its range, e.g. ``"moderate (10-50%)"``."""
    return p.band.label if p.band is not None else ""


def band_and_decision(p: Prediction) -> str:
    """E.g. ``"moderate (10-50%), suspicious"`` or ``"low (2-10%), below the cut-off"``;
    ``", whole image, less reliable"`` follows when no lesion box was used."""
    text = f"{band_text(p)}, {decision_word(p)}"
    return f"{text}, {WHOLE_IMAGE_TAG}" if whole_image(p) else text


def band_note(p: Prediction) -> str:
    """What the band means, e.g. ``"Likelihood of malignancy: the BI-RADS 4A range, not a
    BI-RADS assessment."``"""
    band = p.band
    text = "Likelihood of malignancy"
    if band is not None and band.birads_range:
        text += f": the BI-RADS {band.birads_range} range, not a BI-RADS assessment"
    return text + "."


def cutoff_sentence(p: Prediction, op: OperatingPoint | None = None) -> str:
    """Where P lies against the cut-off, and what the cut-off found where the card measured it:
    e.g. "At or above the suspicious cut-off (0.16). At this cut-off the model found 90% of
    cancers in internal validation and 76% at another hospital."
    """
    op = op or OperatingPoint.from_card(None)
    where = "At or above" if p.suspicious else "Below"
    text = f"{where} the suspicious cut-off ({cutoff_text(p, op)})."
    found = op.sensitivity_words()
    if found:
        text += f" At this cut-off the model found {found}"
        text += ": a result below it does not rule cancer out." if not p.suspicious else "."
    return text


def _with_interval(value: float, ci: tuple[float, float] | None) -> str:
    text = fixed(value, 2)
    return f"{text} [{fixed(ci[0], 2)}, {fixed(ci[1], 2)}]" if ci is not None else text


def site_sentence(profile: SiteProfile | None) -> str:
    """The site profile in use, said wherever a result is shown; "" without one.

    E.g. "Site profile 'Hospital X' (2026-12-07, 212 cases of 40 patients): cut-off 0.21,
    sensitivity 0.90 [0.82, 0.95] and specificity 0.61 [0.50, 0.70] there; its own
    calibration (temperature 1.30); input guard limit 24.5 for its scanners."
    """
    if profile is None:
        return ""
    made = (f"{profile.cases} cases of {profile.patients} patients" if profile.patients
            else f"{profile.cases} images")
    parts = []
    if profile.cutoff is not None:
        part = f"cut-off {shortest(profile.cutoff)}"
        measured = [f"{name} {_with_interval(value, ci)}" for name, value, ci in (
            ("sensitivity", profile.sensitivity, profile.sensitivity_ci),
            ("specificity", profile.specificity, profile.specificity_ci)) if value is not None]
        if measured:
            part += ", " + " and ".join(measured) + " there"
        parts.append(part)
    if profile.temperature is not None:
        parts.append(f"its own calibration (temperature {fixed(profile.temperature, 2)})")
    if profile.guard_limit is not None:
        parts.append(f"input guard limit {fixed(profile.guard_limit, 1)} for its scanners")
    return (f"Site profile '{profile.site}' ({profile.created}, {made}): "
            + "; ".join(parts) + ".")


def site_name(op: OperatingPoint | None) -> str:
    """The name of the site profile in use at ``op`` ("" for the card's defaults): the CSV's
    ``site`` column."""
    return op.site.site if op is not None and op.site is not None else ""


def box_dependence_sentence(p: Prediction) -> str:
    """Said when boxes drawn slightly differently fall on both sides of the cut-off."""
    if not p.box_dependent:
        return ""
    lo, hi = p.box_p_range
    cut = threshold_of(p, None)
    d = max(decimals_apart(lo, (cut,)), decimals_apart(hi, (cut,)))
    return (f"Depends on the box: drawn slightly differently, P ranges from {fixed(lo, d)} to "
            f"{fixed(hi, d)}, on both sides of the cut-off.")


def caveats(p: Prediction) -> tuple[str, ...]:
    """Sentences that limit how far the result can be trusted (whole image, box-dependent)."""
    out = []
    if whole_image(p):
        out.append(WHOLE_IMAGE_NOTE)
    sentence = box_dependence_sentence(p)
    if sentence:
        out.append(sentence)
    return tuple(out)


def headline(p: Prediction) -> str:
    """The headline: band and decision, led by what limits it.

    E.g. ``"Moderate (10-50%), suspicious"``, ``"Outside intended use - moderate (10-50%),
    suspicious"``, or, when no lesion was found, ``"No lesion found: draw a box around the
    lesion"`` over ``"Whole image, less reliable: low (2-10%), below the cut-off"``.
    """
    body = f"{band_text(p)}, {decision_word(p)}"
    if no_lesion_found(p):
        text = f"{NO_LESION_HEADLINE}\n{_capitalised(WHOLE_IMAGE_TAG)}: {body}"
    elif whole_image(p):
        text = f"{_capitalised(body)} ({WHOLE_IMAGE_TAG})"
    else:
        text = _capitalised(body)
    if p.outside_intended_use:
        text = f"{OUTSIDE_INTENDED_USE} \N{EM DASH} {text[:1].lower()}{text[1:]}"
    return f"{UNTRAINED_PREFIX}: {text}" if p.untrained else text


@dataclass(frozen=True)
class ResultWords:
    """A result as every view shows it (see :func:`describe`)."""

    headline: str
    decision: str
    decision_code: str
    band: str
    band_note: str
    probability: str
    cutoff: str
    cutoff_sentence: str
    caveats: tuple[str, ...]
    tone: str
    site: str = ""

    @property
    def probability_line(self) -> str:
        """E.g. ``"P(malignant) = 0.35 (calibrated)"``."""
        return f"P(malignant) = {self.probability} (calibrated)"


def describe(p: Prediction, op: OperatingPoint | None = None) -> ResultWords:
    """Everything a view says about ``p``, at the operating point ``op`` (the model card's)."""
    return ResultWords(
        headline=headline(p), decision=decision_word(p), decision_code=decision_code(p),
        band=band_text(p), band_note=band_note(p), probability=probability_text(p, op),
        cutoff=cutoff_text(p, op), cutoff_sentence=cutoff_sentence(p, op),
        caveats=caveats(p), tone=tone(p), site=site_sentence(op.site if op else None))


def rules_sentences(op: OperatingPoint) -> tuple[str, ...]:
    """How every view reads a result at this operating point, in plain sentences (the model
    card dialog shows them above the card's raw figures)."""
    cut = shortest(op.threshold)
    found = op.sensitivity_words()
    out = [f"A result is {SUSPICIOUS} when P(malignant) is at or above the cut-off {cut}, "
           f"and {BELOW_CUTOFF} under it. The decision is this cut-off's, not the class with "
           "the higher probability: a result under 0.5 can be suspicious."]
    if found:
        out.append(f"At this cut-off the model found {found}; a result below it does not rule "
                   "cancer out.")
    if op.site is not None:
        out.append(site_sentence(op.site))
    out.append("The likelihood band puts P beside the BI-RADS likelihood-of-malignancy ranges; "
               "it is not a BI-RADS assessment.")
    out.append("Colours: red for a suspicious result; green only in the BI-RADS 3 range (P at "
               f"most {fixed(REASSURING_MAX, 2)}) for a lesion box whose result does not depend "
               "on how the box is drawn; amber outside intended use; neutral for everything "
               "else, including any result from the whole image.")
    out.append(FRAME_CONVENTION)
    return tuple(out)


def list_text(p: Prediction) -> str:
    """Two short lines for the image list: ``"moderate (10-50%), suspicious"`` and
    ``"P(malignant) 0.35"``."""
    head = f"{UNTRAINED_PREFIX} " if p.untrained else ""
    return f"{head}{band_and_decision(p)}\nP(malignant) {probability_text(p)}"


__all__ = [
    "BELOW_CUTOFF", "DECISION_CODES", "FRAME_CONVENTION", "LESION_REGION_WORDS",
    "NO_LESION_HEADLINE", "OUTSIDE_INTENDED_USE", "REASSURING_MAX", "SITE_CARD_NOTE",
    "SUSPICIOUS", "SUSPICIOUS_TIP", "TONES",
    "WHOLE_IMAGE_NOTE", "WHOLE_IMAGE_TAG", "ResultWords", "band_and_decision", "band_note",
    "band_text", "box_dependence_sentence", "caveats", "cutoff_sentence",
    "cutoff_text", "decimals_for", "decision_code", "decision_word", "describe", "frame_number",
    "headline", "is_no_lesion_warning", "list_text", "no_lesion_found", "probability_text",
    "rules_sentences", "site_name", "site_sentence", "threshold_of", "tone", "whole_image",
]
