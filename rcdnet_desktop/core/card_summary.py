"""The model card's first page, for clinicians: what the model is for, how good it is at another
hospital, what a result means at a given prevalence, what a band means, when not to use it.

No Qt here. Everything is read from the model card (a dict as
:func:`rcdnet_desktop.core.model.card.ModelCard.to_dict` gives it); nothing is measured here. The
predictive values follow from the sensitivity and specificity the card measured at the
suspicious cut-off at a hospital it was not trained on, for a prevalence of cancer among the
lesions a clinician would check (:data:`PREVALENCES`); their ranges come from the ends of those
two figures' 95% intervals, a simple bound rather than a new interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.result import FRAME_CONVENTION, rules_sentences

PREVALENCES = (0.05, 0.15, 0.30)
"""Shares of cancer among the lesions shown to the model, for the predictive values."""


@dataclass(frozen=True)
class Section:
    """One part of the page: a title, plain paragraphs, and optionally a table (header first)."""

    title: str
    paragraphs: tuple[str, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()


def ppv(sensitivity: float, specificity: float, prevalence: float) -> float:
    """Share of cancers among results at or above the cut-off."""
    tp = sensitivity * prevalence
    fp = (1.0 - specificity) * (1.0 - prevalence)
    return tp / (tp + fp) if tp + fp > 0 else float("nan")


def npv(sensitivity: float, specificity: float, prevalence: float) -> float:
    """Share of non-cancers among results below the cut-off."""
    tn = specificity * (1.0 - prevalence)
    fn = (1.0 - sensitivity) * prevalence
    return tn / (tn + fn) if tn + fn > 0 else float("nan")


def _figure(section: Any, key: str) -> tuple[float, float, float] | None:
    """``(value, low, high)`` of ``section[key]`` (``{"value", "ci95"}``), else None."""
    item = section.get(key) if isinstance(section, Mapping) else None
    if not isinstance(item, Mapping) or not isinstance(item.get("value"), int | float):
        return None
    lo, hi = (item.get("ci95") or [item["value"], item["value"]])[:2]
    return float(item["value"]), float(lo), float(hi)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _with_ci(v: tuple[float, float, float]) -> str:
    return f"{_pct(v[0])} (95% CI {_pct(v[1])}-{_pct(v[2])})"


def _external(card: Mapping[str, Any]) -> Section:
    op = card.get("operating_point") or {}
    sens = _figure(op.get("at_threshold_external"), "recall")
    spec = _figure(op.get("at_threshold_external"), "specificity")
    ext = (card.get("metrics") or {}).get("external") or {}
    mode = ext.get(op.get("default_mode", "fusion")) or {}
    text = []
    if sens and spec:
        n = ext.get("n_images")
        where = f" ({n} images from a hospital never used for training)" if n else ""
        text.append(f"At another hospital{where}, at the suspicious cut-off the model flagged "
                    f"{_with_ci(sens)} of the cancers and left {_with_ci(spec)} of the benign "
                    "lesions below the cut-off.")
    if isinstance(mode.get("auc"), int | float):
        lo, hi = (mode.get("auc_ci95") or [mode["auc"]] * 2)[:2]
        text.append(f"How well it ranks cancers above benign lesions there: AUC {mode['auc']:.2f} "
                    f"(95% CI {lo:.2f}-{hi:.2f}; 0.5 is chance, 1 is perfect). The paper it "
                    "follows reports 0.99 on its own test set; honest figures at other hospitals "
                    "are lower.")
    if not text:
        text.append("This model card gives no figures measured at another hospital: treat its "
                    "results as untested outside the sites it was trained on.")
    return Section("How good it is at another hospital", tuple(text))


def _predictive(card: Mapping[str, Any]) -> Section | None:
    op = card.get("operating_point") or {}
    sens = _figure(op.get("at_threshold_external"), "recall")
    spec = _figure(op.get("at_threshold_external"), "specificity")
    if not (sens and spec):
        return None
    rows: list[tuple[str, ...]] = [("cancers among the lesions shown", "suspicious: cancer",
                                    "below the cut-off: not cancer")]
    for prev in PREVALENCES:
        p = (ppv(sens[0], spec[0], prev), ppv(sens[1], spec[1], prev),
             ppv(sens[2], spec[2], prev))
        q = (npv(sens[0], spec[0], prev), npv(sens[1], spec[1], prev),
             npv(sens[2], spec[2], prev))
        rows.append((_pct(prev), f"{_pct(p[0])} ({_pct(p[1])}-{_pct(p[2])})",
                     f"{_pct(q[0])} ({_pct(q[1])}-{_pct(q[2])})"))
    return Section(
        "What a result means where you work",
        ("How often a suspicious result is a cancer, and a result below the cut-off is not, "
         "depends on how common cancer is among the lesions you show it. From the sensitivity "
         "and specificity measured at another hospital (ranges from the ends of their 95% "
         "intervals):",),
        tuple(rows))


def _bands(card: Mapping[str, Any]) -> Section:
    op = OperatingPoint.from_card(card)
    bands = ", ".join(f"{b.label}" + (f" = BI-RADS {b.birads_range}" if b.birads_range else "")
                      for b in op.bands)
    return Section("What the band, the decision and the colours mean",
                   (f"The likelihood bands: {bands}.",
                    *(r for r in rules_sentences(op) if r != FRAME_CONVENTION)))


def _not_for(card: Mapping[str, Any]) -> Section:
    items = [str(x) for x in card.get("not_for") or []]
    return Section("When not to use it",
                   tuple(f"Not for {x}." if not x.lower().startswith("not ") else f"{x}."
                         for x in items) or ("The model card lists no exclusions.",))


def clinician_page(card: Mapping[str, Any]) -> tuple[Section, ...]:
    """The first page of the model card, in plain words (see the module's docstring)."""
    intended = str(card.get("intended_use") or "not stated")
    sections = [Section("What it is for", (
        intended, "Decision support, not a diagnosis: the clinician's own reading decides."))]
    sections.append(_external(card))
    predictive = _predictive(card)
    if predictive is not None:
        sections.append(predictive)
    sections += [_bands(card), _not_for(card)]
    return tuple(sections)


def page_text(sections: Sequence[Section]) -> str:
    """The page as plain text (for a report or a terminal)."""
    out = []
    for s in sections:
        out.append(s.title)
        out.extend(s.paragraphs)
        out.extend("  " + " | ".join(row) for row in s.table)
        out.append("")
    return "\n".join(out)


__all__ = ["PREVALENCES", "Section", "clinician_page", "npv", "page_text", "ppv"]
