"""The validation's plain summary: what a radiologist reads in a minute, from the figures.

No Qt here. Percentages and intervals are written one way (:func:`pct`, :func:`with_ci`);
the decision words are :mod:`rcdnet_desktop.core.result`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rcdnet_desktop.core.numbers import decimals_apart, fixed, shortest
from rcdnet_desktop.core.result import BELOW_CUTOFF, SUSPICIOUS


def pct(x: float | None, limits: Sequence[float] = ()) -> str:
    """A share as a percentage, e.g. ``"76%"``, with the decimals needed to keep it on the
    right side of each of ``limits`` (``"10.4%"`` beside a band's 10%); ``"-"`` when unknown."""
    if x is None:
        return "-"
    d = decimals_apart(100 * x, [100 * v for v in limits], 0)
    return f"{fixed(100 * x, d)}%"


def with_ci(fig: Mapping[str, Any], as_share: bool = True, key: str = "value") -> str:
    """``"76% (95% CI 66-85%)"``, or ``"0.86 (95% CI 0.79-0.92)"`` with ``as_share=False``;
    ``"too few cases"`` for a figure replaced by a sentence, ``"not defined (...)"`` for one
    whose denominator is empty. ``key`` names the value (``"rate"`` for shares of images)."""
    if "too_few" in fig:
        return "too few cases"
    v = fig.get(key)
    if v is None:
        return f"not defined ({fig['undefined']})" if fig.get("undefined") else "-"
    lo, hi = (fig.get("ci95") or [None, None])[:2]
    if as_share:
        text = pct(v)
        return text + (f" (95% CI {pct(lo)}-{pct(hi)[:-1]}%)" if lo is not None else "")
    text = f"{v:.2f}" if v < 0.995 else f"{v:.3f}"
    return text + (f" (95% CI {lo:.2f}-{hi:.2f})" if lo is not None and hi is not None else "")


def relation(here: Mapping[str, Any], card: Mapping[str, Any] | None) -> str:
    """How a figure here stands against the card's: ``"lower than"``, ``"higher than"`` (the
    95% intervals do not overlap) or ``"in line with"``; "" when either is missing."""
    if not card or here.get("value") is None or "too_few" in here:
        return ""
    lo, hi = (here.get("ci95") or [None, None])[:2]
    c_lo, c_hi = (card.get("ci95") or [card["value"], card["value"]])[:2]
    if lo is None or hi is None:
        return ""
    if hi < c_lo:
        return "lower than"
    if lo > c_hi:
        return "higher than"
    return "in line with"


def _cases(cases: Mapping[str, Any]) -> list[str]:
    out = [f"{cases['classified']} images of {cases['patients']} patients were classified "
           f"({cases['malignant']} with cancer, {cases['benign']} benign)"
           + (f"; {len(cases['not_classified'])} file(s) could not be classified (listed "
              "at the end)." if cases["not_classified"] else ".")]
    own = cases["patient_sources"].get("file", 0)
    if own:
        out.append(f"For {own} image(s) no patient was given (no patient column, no DICOM "
                   "PatientID): each counts as its own patient, so the intervals are too "
                   "narrow if a patient had several images.")
    return out


def _cutoff(fig: Mapping[str, Any]) -> list[str]:
    at, card = fig["at_cutoff"], fig.get("card_external") or {}
    cut = shortest(at["threshold"]) if at["threshold"] is not None else "?"
    out = [f"At the model card's cut-off (P(malignant) at or above {cut} is {SUSPICIOUS}):"]
    sentences = {"sensitivity": f"the model flagged {{}} of the cancers here as {SUSPICIOUS}",
                 "specificity": f"it left {{}} of the benign lesions {BELOW_CUTOFF}"}
    shown = [text.format(with_ci(at[name])) for name, text in sentences.items()
             if "too_few" not in at[name]]
    if shown:
        out[0] += " " + "; ".join(shown) + "."
    for name in sentences:
        if "too_few" in at[name]:
            out.append(at[name]["too_few"])
    ppv, npv = at["ppv"], at["npv"]
    if ppv.get("value") is not None and npv.get("value") is not None:
        share = fig["cases"]["prevalence"]
        out.append(f"With {pct(share)} of the cases here cancers, {with_ci(ppv)} of the "
                   f"{SUSPICIOUS} results were cancers (PPV) and {with_ci(npv)} of the results "
                   f"{BELOW_CUTOFF} were not (NPV); other shares of cancer give other values "
                   "(below).")
    if shown and "sensitivity" in card and "specificity" in card:
        out.append(f"At its external site (a hospital never used for training) the model card "
                   f"reports a sensitivity of {with_ci(card['sensitivity'])} and a specificity "
                   f"of {with_ci(card['specificity'])}.")
        for name in sentences:
            rel = relation(at[name], card.get(name))
            if rel:
                out.append(f"The {name} here is {rel} the card's"
                           + (" (the 95% intervals overlap)." if rel == "in line with"
                              else " (the 95% intervals do not overlap)."))
    return out


def _auc(fig: Mapping[str, Any]) -> list[str]:
    auc, card = fig["auc"], (fig.get("card_external") or {}).get("auc")
    if "too_few" in auc:
        return []
    text = (f"How well it ranks cancers above benign lesions here: AUC "
            f"{with_ci(auc, as_share=False)} (0.5 is chance, 1 is perfect).")
    rel = relation(auc, card)
    if card and rel:
        text += (f" That is {rel} the {with_ci(card, as_share=False)} the model card reports "
                 "at its external site" + (" (the 95% intervals overlap)." if rel ==
                                           "in line with" else
                                           " (the 95% intervals do not overlap)."))
    return [text]


def _bands(fig: Mapping[str, Any]) -> list[str]:
    rows = fig["bands"]
    judged = [b for b in rows if b["status"] != "too_few"]
    outside = [b for b in judged if b["status"] == "outside"]
    if not judged:
        return ["Too few images in every likelihood band to tell whether the bands hold here "
                "(at least 10 in a band are needed)."]
    if not outside:
        return [f"The likelihood bands hold here: in each band with enough images "
                f"({len(judged)} of {len(rows)}), the share of cancers lies in the band's "
                "range."]
    words = [f"{b['band']}: {pct(b['rate'], b['range'])} of {b['n']} images"
             + (", its 95% interval outside the range too" if b.get("ci_excludes_range")
                else "") for b in outside]
    return [f"In {len(outside)} of the {len(judged)} bands with enough images the share of "
            f"cancers here lies outside the band's range ({'; '.join(words)}): read the bands "
            "with care at this site."]


def _caveats(fig: Mapping[str, Any]) -> list[str]:
    out = []
    g = fig["guard"]
    if g["n"]:
        out.append(f"The intended-use guard flagged {g['flagged']} of {g['n']} images "
                   f"({pct(g['rate'])}) as outside intended use; they are counted in every "
                   "figure.")
    loc = fig["localiser"]
    if loc.get("rate") is not None:
        out.append(f"The automatic lesion box hit the outlined lesion in "
                   f"{with_ci(loc, key='rate')} of the "
                   f"{loc['masked']} images with a mask.")
    if fig["cases"]["patients"] < 30:
        out.append("With fewer than 30 patients every interval is wide: treat these figures "
                   "as a first look, not a verdict.")
    out.append("Decision support, not a diagnosis: these figures say how the model does on "
               "these cases, not how a clinician using it would.")
    return out


def summary(figures: Mapping[str, Any]) -> list[str]:
    """The summary's sentences, most important first."""
    return [*_cases(figures["cases"]), *_cutoff(figures), *_auc(figures), *_bands(figures),
            *_caveats(figures)]


__all__ = ["pct", "relation", "summary", "with_ci"]
