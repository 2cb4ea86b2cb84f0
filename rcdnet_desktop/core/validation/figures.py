"""Every figure of a local validation, computed from the cases' outcomes, as JSON-ready data.

No Qt here. The decision is each result's own (``Prediction.suspicious``, at the model card's
cut-off) and the band its own (``Prediction.band``), exactly as ``rcdnet classify`` reports
them. Confidence intervals:

* AUC, sensitivity, specificity, PPV, NPV (also at fixed prevalences) and the calibration error
  come from a bootstrap that resamples **patients** (:func:`rcdnet_desktop.core.metrics.
  bootstrap_ci` with the patients as groups; :data:`N_BOOT` resamples, seeded): images of one
  patient are not independent, and a hospital's cases come several to a patient.
* The rate of cancer in a band, the guard's flag rate and the localiser's hit rate are
  proportions of images with a Wilson interval (images, not patients: a narrower interval than
  a patient-level one when patients have several images; the report says so).

A figure that needs more cases than there are (:data:`MIN_PER_CLASS` of each class,
:data:`MIN_PATIENTS` patients) is replaced by a sentence saying so and how many more would be
needed (:func:`cases_needed`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rcdnet_desktop.core.card_summary import PREVALENCES, npv, ppv
from rcdnet_desktop.core.metrics import (
    Z95,
    auc_score,
    bootstrap_ci,
    ece,
    roc_points,
    two_class,
    wilson,
)
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.result import BELOW_CUTOFF, SUSPICIOUS, decision_code
from rcdnet_desktop.core.types import Prediction
from rcdnet_desktop.core.validation.cases import PATIENT_SOURCES
from rcdnet_desktop.core.validation.localisation import HIT_RULE, IOU_HIT
from rcdnet_desktop.core.validation.outcomes import Outcome

N_BOOT = 2000
"""Bootstrap resamples for the confidence intervals."""
SEED = 0
"""The bootstrap's seed: the same cases give the same intervals."""
MIN_PER_CLASS = 10
"""Fewest malignant (and benign) cases for a figure that needs them."""
MIN_PATIENTS = 5
"""Fewest patients for a figure with a patient-resampled interval."""
MIN_BAND = 10
"""Fewest images in a band to compare its rate of cancer with the band's range."""
MIN_MASKED = 10
"""Fewest cases with a mask for the localiser's hit rate."""
HALF_WIDTH = 0.10
"""The 95% CI half-width the "how many more" sentences aim at."""
CALIBRATION_BINS = 10
"""Equal-width bins of P(malignant) in the calibration plot."""
ECE_BINS = 15
"""Bins of the calibration error, as the model card computes it."""
ECE_DEFINITION = (f"expected calibration error of the top-label confidence, {ECE_BINS} "
                  "equal-width bins, as the model card computes it")


def cases_needed(p: float, half_width: float = HALF_WIDTH) -> int:
    """Cases for a 95% CI of about ``half_width`` around a proportion ``p`` (normal
    approximation): ``1.96**2 p (1 - p) / half_width**2``, rounded up, at least
    :data:`MIN_PER_CLASS`."""
    p = min(max(p, 0.05), 0.95)  # an observed 0 or 1 would need "no" case
    return max(MIN_PER_CLASS, math.ceil(Z95 ** 2 * p * (1 - p) / half_width ** 2))


def _num(x: float | None) -> float | None:
    """A JSON number: NaN and infinity become null."""
    if x is None:
        return None
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


def _at_cutoff(y: np.ndarray, sus: np.ndarray) -> dict[str, float]:
    tp = int((y & sus).sum())
    fn = int((y & ~sus).sum())
    tn = int((~y & ~sus).sum())
    fp = int((~y & sus).sum())

    def div(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {"sensitivity": div(tp, tp + fn), "specificity": div(tn, tn + fp),
            "ppv": div(tp, tp + fp), "npv": div(tn, tn + fn)}


def _statistic(p: np.ndarray, sus: np.ndarray):
    """The bootstrap's statistic: every patient-resampled figure of one resample, from the
    resampled labels and the indices of the resampled images."""

    def figures(y: np.ndarray, idx: np.ndarray) -> dict[str, float]:
        yb = y.astype(bool)
        pb = p[idx]
        out = _at_cutoff(yb, sus[idx])
        out["auc"] = auc_score(y, pb)
        out["ece"] = ece(y, two_class(pb), ECE_BINS)
        for prev in PREVALENCES:
            out[f"ppv_at_{prev:g}"] = ppv(out["sensitivity"], out["specificity"], prev)
            out[f"npv_at_{prev:g}"] = npv(out["sensitivity"], out["specificity"], prev)
        return out

    return figures


def _card_figures(card: Mapping[str, Any]) -> dict[str, Any]:
    """What the model card measured at its external site: sensitivity and specificity at the
    cut-off, AUC of its default mode, with their 95% intervals (absent ones left out)."""
    op = card.get("operating_point") or {}
    at = op.get("at_threshold_external") or {}
    out: dict[str, Any] = {}
    for key, name in (("recall", "sensitivity"), ("specificity", "specificity")):
        item = at.get(key)
        if isinstance(item, Mapping) and isinstance(item.get("value"), int | float):
            out[name] = {"value": float(item["value"]), "ci95": list(item.get("ci95") or [])}
    ext = (card.get("metrics") or {}).get("external") or {}
    mode = ext.get(op.get("default_mode", "fusion")) or {}
    if isinstance(mode.get("auc"), int | float):
        out["auc"] = {"value": float(mode["auc"]), "ci95": list(mode.get("auc_ci95") or [])}
    if isinstance(ext.get("n_images"), int):
        out["n_images"] = ext["n_images"]
    return out


class _Counts:
    """The numbers the too-few rules look at."""

    def __init__(self, malignant: int, benign: int, patients: int) -> None:
        self.malignant, self.benign, self.patients = malignant, benign, patients

    def short(self, need_malignant: bool, need_benign: bool) -> list[str]:
        """What is missing, in words ("6 more cancers", ...); empty when nothing is."""
        out = []
        if need_malignant and self.malignant < MIN_PER_CLASS:
            out.append(f"{MIN_PER_CLASS - self.malignant} more cancer(s)")
        if need_benign and self.benign < MIN_PER_CLASS:
            out.append(f"{MIN_PER_CLASS - self.benign} more benign lesion(s)")
        if self.patients < MIN_PATIENTS:
            out.append(f"{MIN_PATIENTS - self.patients} more patient(s)")
        return out

    def have(self) -> str:
        return (f"{self.malignant} cancer(s) and {self.benign} benign lesion(s) from "
                f"{self.patients} patient(s)")


_NAMES = {"sensitivity": "the sensitivity", "specificity": "the specificity", "auc": "the AUC",
          "ppv": "the PPV", "npv": "the NPV", "ece": "the calibration error"}


def _too_few(name: str, counts: _Counts, need_malignant: bool, need_benign: bool,
             p_guess: float | None) -> str | None:
    """The sentence that replaces figure ``name`` when there are too few cases, else None."""
    missing = counts.short(need_malignant, need_benign)
    if not missing:
        return None
    need = []
    if need_malignant:
        need.append(f"{MIN_PER_CLASS} cancers")
    if need_benign:
        need.append(f"{MIN_PER_CLASS} benign lesions")
    text = (f"Too few cases to estimate {_NAMES.get(name, name)} here: it needs at least "
            f"{' and '.join(need)} from {MIN_PATIENTS} patients, and there are "
            f"{counts.have()} ({', '.join(missing)} needed).")
    if name in ("sensitivity", "specificity"):
        denom = counts.malignant if name == "sensitivity" else counts.benign
        what = "cancers" if name == "sensitivity" else "benign lesions"
        guess = 0.5 if p_guess is None else p_guess
        n = cases_needed(guess)
        text += (f" For a 95% CI of about \u00b1{HALF_WIDTH:.2f} at a {name} of {guess:.2f}, "
                 f"about {n} {what} are needed (1.96\u00b2 p(1-p) / {HALF_WIDTH:.2f}\u00b2): "
                 f"{max(0, n - denom)} more, and more still when several images come from "
                 "one patient.")
    return text


_UNDEFINED = {"sensitivity": "no cancer here", "specificity": "no benign lesion here",
              "ppv": f"no {SUSPICIOUS} result here", "npv": f"no result {BELOW_CUTOFF} here",
              "auc": "one class only", "ece": "no result"}
"""Why a figure has no value although there are enough cases: its denominator is empty."""


def _figure(name: str, point: Mapping[str, float], ci: Mapping[str, tuple[float, float]],
            too_few: str | None, **extra: Any) -> dict[str, Any]:
    if too_few:
        return {"too_few": too_few, **extra}
    lo, hi = ci.get(name, (float("nan"), float("nan")))
    out = {"value": _num(point.get(name)), "ci95": [_num(lo), _num(hi)], **extra}
    if out["value"] is None:
        out["undefined"] = _UNDEFINED[name.split("_at_")[0]]
    return out


def _bands(preds: Sequence[Prediction], y: np.ndarray, op: OperatingPoint) -> list[dict]:
    out = []
    for band in op.bands:
        sel = np.array([p.band is not None and p.band.name == band.name for p in preds],
                       dtype=bool)
        n, k = int(sel.sum()), int(y[sel].sum())
        lo, hi = wilson(k, n)
        row: dict[str, Any] = {"band": band.label, "name": band.name,
                               "birads_range": band.birads_range,
                               "range": [band.lower, band.upper], "n": n, "malignant": k,
                               "rate": _num(k / n) if n else None, "ci95": [_num(lo), _num(hi)]}
        if n < MIN_BAND:
            row["status"] = "too_few"
        elif band.lower <= k / n <= band.upper:
            row["status"] = "within"
        else:
            row["status"] = "outside"
            row["ci_excludes_range"] = bool(hi < band.lower or lo > band.upper)
        out.append(row)
    return out


def _guard(preds: Sequence[Prediction]) -> dict[str, Any]:
    n = len(preds)
    flagged = sum(bool(p.checks) for p in preds)
    lo, hi = wilson(flagged, n)
    by_check = Counter(c for p in preds for c in p.checks)
    return {"n": n, "flagged": flagged, "rate": _num(flagged / n) if n else None,
            "ci95": [_num(lo), _num(hi)], "by_check": dict(sorted(by_check.items()))}


def _localiser(outcomes: Sequence[Outcome], auto_box: bool) -> dict[str, Any]:
    masked = [o for o in outcomes if o.prediction is not None and o.has_mask]
    problems = [o.mask_problem for o in outcomes if o.mask_problem]
    out: dict[str, Any] = {"rule": HIT_RULE, "masked": len(masked),
                           "mask_problems": problems, "used": auto_box}
    if not auto_box:
        out["note"] = "The lesion localiser was not used (--no-auto-box): no hit rate."
        return out
    boxed = [o.box_on_mask for o in masked if o.box_on_mask is not None]
    hits = sum(b.hit for b in boxed)
    lo, hi = wilson(hits, len(masked))
    out.update(with_auto_box=len(boxed), no_box=len(masked) - len(boxed),
               hits_iou=sum(b.iou >= IOU_HIT for b in boxed),
               hits_centre=sum(b.centre_inside for b in boxed), hits=hits)
    if not masked:
        out["note"] = "No case has a usable lesion mask: no hit rate."
    elif len(masked) < MIN_MASKED:
        out["too_few"] = (f"Too few cases with a mask to estimate the localiser's hit rate: "
                          f"{len(masked)}, at least {MIN_MASKED} needed "
                          f"({MIN_MASKED - len(masked)} more).")
    else:
        out.update(rate=_num(hits / len(masked)), ci95=[_num(lo), _num(hi)])
    return out


def _box_stability(preds: Sequence[Prediction]) -> dict[str, Any]:
    boxed = [p for p in preds if p.box_source != "none"]
    k = sum(p.box_dependent for p in boxed)
    lo, hi = wilson(k, len(boxed))
    return {"n": len(boxed), "box_dependent": k,
            "rate": _num(k / len(boxed)) if boxed else None, "ci95": [_num(lo), _num(hi)]}


def _calibration_bins(y: np.ndarray, p: np.ndarray) -> list[dict[str, Any]]:
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=True), 0, CALIBRATION_BINS - 1)
    out = []
    for b in range(CALIBRATION_BINS):
        sel = index == b
        n = int(sel.sum())
        if n:
            lo, hi = wilson(int(y[sel].sum()), n)
            out.append({"range": [float(edges[b]), float(edges[b + 1])], "n": n,
                        "mean_p": _num(p[sel].mean()), "rate": _num(y[sel].mean()),
                        "ci95": [_num(lo), _num(hi)]})
    return out


def _case_row(o: Outcome) -> dict[str, Any]:
    row: dict[str, Any] = {"path": str(o.case.path), "label": int(o.case.label),
                           "patient": o.case.patient, "patient_source": o.case.patient_source}
    pred = o.prediction
    if pred is None:
        row["error"] = o.error
        return row
    row.update(p_malignant=_num(pred.p_malignant), decision=decision_code(pred),
               band=pred.band.label if pred.band is not None else "",
               box_source=pred.box_source, checks=list(pred.checks))
    if o.has_mask:
        b = o.box_on_mask
        row["box_on_mask"] = (None if b is None else
                              {"iou": _num(b.iou), "centre_inside": b.centre_inside,
                               "hit": b.hit})
    if o.mask_problem:
        row["mask_problem"] = o.mask_problem
    return row


def validation_figures(outcomes: Sequence[Outcome], op: OperatingPoint,
                       card: Mapping[str, Any] | None = None, *, n_boot: int = N_BOOT,
                       seed: int = SEED, auto_box: bool = True) -> dict[str, Any]:
    """Every figure of the validation (see the module's notes), as JSON-ready data.

    Parameters
    ----------
    outcomes : sequence of Outcome
        One per case, classified or not.
    op : OperatingPoint
        The model card's operating point (cut-off and bands).
    card : mapping, optional
        The model card as a dict, for what it measured at its external site.
    n_boot, seed : int
        Bootstrap resamples and seed.
    auto_box : bool
        The lesion localiser was let find the boxes.
    """
    card = card or {}
    ok = [o for o in outcomes if o.prediction is not None]
    preds = [o.prediction for o in ok]
    assert all(p is not None for p in preds)
    y = np.array([o.case.label for o in ok], dtype=int)
    p = np.array([pr.p_malignant for pr in preds], dtype=float)  # type: ignore[union-attr]
    sus = np.array([bool(pr.suspicious) for pr in preds], dtype=bool)  # type: ignore[union-attr]
    patients = [o.case.patient for o in ok]
    counts = _Counts(int(y.sum()), int(len(y) - y.sum()), len(set(patients)))

    statistic = _statistic(p, sus)
    idx = np.arange(len(y))
    point = statistic(y, idx) if len(y) else {}
    enough_for_ci = n_boot > 0 and counts.patients >= 2 and counts.malignant and counts.benign
    ci = (bootstrap_ci(y, idx, statistic, groups=patients, n_boot=n_boot, seed=seed)
          if enough_for_ci else {})
    card_fig = _card_figures(card)

    def guess(name: str) -> float | None:
        value = point.get(name)
        if value is not None and math.isfinite(value):
            return value
        return (card_fig.get(name) or {}).get("value")

    few = {name: _too_few(name, counts, need_m, need_b, guess(name))
           for name, need_m, need_b in (("sensitivity", True, False),
                                        ("specificity", False, True), ("auc", True, True),
                                        ("ppv", True, True), ("npv", True, True),
                                        ("ece", True, True))}
    tp = int((y.astype(bool) & sus).sum())
    fp = int((~y.astype(bool) & sus).sum())
    at_cutoff = {
        "threshold": _num(op.threshold),
        "confusion": {"tp": tp, "fn": counts.malignant - tp, "tn": counts.benign - fp,
                      "fp": fp},
        "sensitivity": _figure("sensitivity", point, ci, few["sensitivity"],
                               n=counts.malignant, k=tp),
        "specificity": _figure("specificity", point, ci, few["specificity"],
                               n=counts.benign, k=counts.benign - fp),
        "ppv": _figure("ppv", point, ci, few["ppv"], n=tp + fp, k=tp),
        "npv": _figure("npv", point, ci, few["npv"], n=len(y) - tp - fp,
                       k=counts.benign - fp),
    }
    site_prevalence = counts.malignant / len(y) if len(y) else None
    prevalence_rows = []
    for prev in PREVALENCES:
        prevalence_rows.append({
            "prevalence": prev,
            "ppv": _figure(f"ppv_at_{prev:g}", point, ci, few["ppv"]),
            "npv": _figure(f"npv_at_{prev:g}", point, ci, few["npv"])})
    roc_fpr, roc_tpr = roc_points(y, p)
    return {
        "model": {"version": card.get("version", ""), "threshold": _num(op.threshold)},
        "cases": {
            "files": len(outcomes), "classified": len(ok),
            "not_classified": [{"path": str(o.case.path), "reason": o.error}
                               for o in outcomes if o.prediction is None],
            "malignant": counts.malignant, "benign": counts.benign,
            "patients": counts.patients,
            "patient_sources": {k: sum(o.case.patient_source == k for o in ok)
                                for k in PATIENT_SOURCES},
            "prevalence": _num(site_prevalence),
        },
        "bootstrap": {"n": n_boot if enough_for_ci else 0, "seed": seed, "unit": "patient",
                      "level": 0.95},
        "at_cutoff": at_cutoff,
        "auc": _figure("auc", point, ci, few["auc"]),
        "predictive_values": {
            "note": "PPV and NPV from the sensitivity and specificity here, at the share of "
                    "cancer among the cases here (the observed PPV and NPV) and at fixed "
                    "shares",
            "site": {"prevalence": _num(site_prevalence), "ppv": at_cutoff["ppv"],
                     "npv": at_cutoff["npv"]},
            "fixed": prevalence_rows,
        },
        "calibration": {"ece": _figure("ece", point, ci, few["ece"]),
                        "ece_definition": ECE_DEFINITION,
                        "bins": _calibration_bins(y, p)},
        "roc": {"fpr": [_num(v) for v in roc_fpr], "tpr": [_num(v) for v in roc_tpr]},
        "bands": _bands(preds, y, op),  # type: ignore[arg-type]
        "guard": _guard(preds),  # type: ignore[arg-type]
        "localiser": _localiser(outcomes, auto_box),
        "box_stability": _box_stability(preds),  # type: ignore[arg-type]
        "card_external": card_fig,
        "per_case": [_case_row(o) for o in outcomes],
    }


__all__ = ["CALIBRATION_BINS", "ECE_DEFINITION", "HALF_WIDTH", "MIN_BAND", "MIN_MASKED",
           "MIN_PATIENTS", "MIN_PER_CLASS", "N_BOOT", "SEED", "cases_needed",
           "validation_figures"]
