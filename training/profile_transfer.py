"""Does a site profile's cut-off give the sensitivity asked for on the site's next patients?

A hospital makes its profile from the cases it has (``rcdnet validate CASES --profile-out FILE
--sensitivity S``) and then uses it on patients the profile never saw. This measures that by
splitting each site's patients at random into a half that makes the profile (the temperature
and the cut-off of :func:`rcdnet_desktop.core.site_profile.labelled_fit`, the app's own rule)
and a half it is used on, many times over. It reports how often the sensitivity on the second
half is within ``tolerance`` of the one asked for, and the same for the model card's cut-off
(no profile) on the same halves. The logits are those of ``rcdnet-train evaluate`` reports
(``predictions_<mode>.npz``), each site on its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.metrics import binary_metrics, softmax
from rcdnet_desktop.core.site_profile import ProfileError, labelled_fit

SPLITS = 500


def random_halves(groups: Sequence, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of a random half of the groups (patients): True = makes the profile."""
    codes = np.array(sorted(set(groups), key=str), dtype=object)
    fit = set(rng.permutation(codes)[: len(codes) // 2].tolist())
    return np.array([g in fit for g in groups])


def transfer(logits: np.ndarray, y: np.ndarray, groups: Sequence, target: float,
             card_temperature: float, card_cutoff: float, tolerance: float = 0.05,
             splits: int = SPLITS, seed: int = 0) -> dict:
    """Sensitivity on the held-out half with the profile's cut-off and with the card's."""
    rng = np.random.default_rng(seed)
    profile, card, skipped = [], [], 0
    for _ in range(splits):
        fit = random_halves(groups, rng)
        use = ~fit
        if len(set(y[use].tolist())) < 2:
            skipped += 1
            continue
        try:
            fitted = labelled_fit(logits[fit], y[fit], target, n_boot=0)
        except ProfileError:  # too few cancers or benign cases in this half
            skipped += 1
            continue
        p_use = softmax(logits[use], fitted["temperature"])[:, 1]
        profile.append(binary_metrics(y[use], p_use, fitted["cutoff"])["recall"])
        p_card = softmax(logits[use], card_temperature)[:, 1]
        card.append(binary_metrics(y[use], p_card, card_cutoff)["recall"])

    def summary(sens: list[float]) -> dict:
        s = np.asarray(sens)
        return {"mean": float(s.mean()), "median": float(np.median(s)),
                "p05_p95": (float(np.quantile(s, 0.05)), float(np.quantile(s, 0.95))),
                "within_tolerance": float(np.mean(np.abs(s - target) <= tolerance + 1e-12)),
                "mean_abs_error": float(np.mean(np.abs(s - target)))}

    return {"target": target, "tolerance": tolerance, "splits": len(profile),
            "skipped": skipped, "profile": summary(profile), "card": summary(card)}


def run(report_dirs: Sequence[Path], card, out_dir: Path, mode: str = "fusion",
        target: float = 0.90, seed: int = 0) -> dict:
    """Every site of the evaluation reports, with the card's temperature and cut-off."""
    from .paired import site_predictions

    out = {"target": target, "mode": mode, "sites": {}}
    cutoff = card.operating_point["suspicious_threshold"]
    for site, pred in site_predictions(report_dirs, mode).items():
        out["sites"][site] = transfer(pred["logits"], pred["y"], pred["groups"].tolist(), target,
                                      card.temperature, cutoff, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "profile_transfer.json").write_text(json.dumps(out, indent=1))
    return out
