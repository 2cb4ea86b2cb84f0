"""Move a finished bundle's suspicious cut-off to another sensitivity target.

The weights, graphs, guard, lexicon and heat maps do not depend on the cut-off, so a new target
needs no retraining and no new graphs: the cut-off is chosen again on the internal validation
images' predictions (``rcdnet-train evaluate``/``bundle`` reports, the default mode, the card's
temperature) by the rule ``bundle`` uses, and every figure of the card that depends on it is
measured again from the same predictions: the operating point (internal and external), each
mode's and each site's sensitivity, specificity, precision, F1, accuracy and confusion, and the
limitation sentence on the cut-off. Nothing else in the card changes except its version. The
box-views figures count decisions that change with the box and so depend on the cut-off too:
run ``rcdnet-train box-stability --write-card`` afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.metrics import softmax
from rcdnet_desktop.core.model.card import load_card

from .bundle import THRESHOLD_LIMITATION, _mode_for_card, threshold_limitation
from .bundle_write import save_card
from .evaluate import _mode_metrics, choose_threshold
from .paired import load_predictions

N_BOOT = 2000
# Figures of a card's metrics section that do not move with the cut-off (kept as they are).
_FIXED = ("auc", "ece_", "heatmap_", "gaussian_")


def _predictions(report_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """``mode -> {"logits", "y", "groups", "sites"}`` of every mode the report saved."""
    modes = [f.stem.removeprefix("predictions_")
             for f in sorted(Path(report_dir).glob("predictions_*.npz"))]
    out = {mode: load_predictions(report_dir, mode) for mode in modes}
    if not out:
        raise FileNotFoundError(f"{report_dir}: no predictions_<mode>.npz (an evaluate report)")
    return out


def _measured(pred: dict, temperature: float, threshold: float, n_boot: int, seed: int,
              sel: np.ndarray | None = None) -> dict:
    sel = np.ones(len(pred["y"]), bool) if sel is None else sel
    return _mode_metrics(pred["y"][sel], pred["logits"][sel], temperature, pred["groups"][sel],
                         n_boot, seed, threshold)


def _moved(section: dict, fresh: dict) -> dict:
    """``section`` with the cut-off's figures of ``fresh`` (a card mode entry) replaced."""
    return {**section, **{k: v for k, v in fresh.items() if not k.startswith(_FIXED)}}


def remeasure_section(section: dict, preds: dict, temperature: float, threshold: float,
                      n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """A card ``metrics`` section (pooled modes and ``site_<name>`` entries) at ``threshold``."""
    out = {**section, "threshold": threshold}
    for mode, pred in preds.items():
        if mode in section:
            fresh = _mode_for_card(_measured(pred, temperature, threshold, n_boot, seed))
            out[mode] = _moved(section[mode], fresh)
        for site in sorted(set(pred["sites"].tolist())):
            key = f"site_{site}"
            if key in section and mode in section[key]:
                fresh = _mode_for_card(_measured(pred, temperature, threshold, n_boot, seed,
                                                 pred["sites"] == site))
                out[key] = {**out[key], mode: _moved(section[key][mode], fresh)}
    return out


def _at(entry: dict) -> dict:
    return {k: {"value": entry[k], "ci95": entry[f"{k}_ci95"]} for k in ("recall", "specificity")}


def retarget(bundle: Path, internal_report: Path, external_report: Path | None,
             target: float, version: str, rule_note: str = "", n_boot: int = N_BOOT,
             seed: int = 0):
    """Rewrite ``bundle``'s card for the cut-off at ``target``; returns the new card."""
    card = load_card(bundle)
    op = dict(card.operating_point)
    mode = op.get("default_mode", "whole")
    internal = _predictions(internal_report)
    threshold = choose_threshold(internal[mode]["y"],
                                 softmax(internal[mode]["logits"], card.temperature)[:, 1],
                                 target)
    metrics = dict(card.metrics)
    metrics["internal_validation"] = remeasure_section(metrics["internal_validation"], internal,
                                                       card.temperature, threshold, n_boot, seed)
    external = _predictions(external_report) if external_report else {}
    if external:
        metrics["external"] = remeasure_section(metrics["external"], external, card.temperature,
                                                threshold, n_boot, seed)
    op.update({"suspicious_threshold": threshold,
               "threshold_rule": f"highest threshold with sensitivity >= {target:.2f} in the "
                                 f"{mode} mode on the pooled internal validation images"
                                 + (f" ({rule_note})" if rule_note else ""),
               "at_threshold_internal": _at(metrics["internal_validation"][mode])})
    if external:
        op["at_threshold_external"] = _at(metrics["external"][mode])
    limitation = threshold_limitation(
        threshold, mode, op["at_threshold_internal"], op.get("at_threshold_external"),
        rule="the threshold was chosen there")
    limitations = [limitation if t.startswith(THRESHOLD_LIMITATION) else t
                   for t in card.limitations]
    new = replace(card, version=version, operating_point=op, metrics=metrics,
                  limitations=limitations)
    return save_card(new, bundle)
