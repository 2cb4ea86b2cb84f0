"""Write the application's model bundle (weights, lesion localiser, model card).

The bundle is written with :func:`training.bundle_write.save_bundle` (float16 weights) and,
when there is one, :func:`~training.bundle_write.save_localiser`, then loaded back and
evaluated *as loaded*, so the metrics in the card are those of the exact weights the app runs
(float16 rounding included). On the validation split of the training sites (pooled) the
temperature is fitted and the suspicious threshold chosen (sensitivity >= 0.90 in the default
mode); then every external site given is evaluated with that temperature and threshold, and the
card is rewritten with all of it (the weights' bytes do not change: float16 values survive a
second cast). Last, both networks are exported as ONNX graphs into the bundle
(:func:`~training.bundle_write.save_onnx`, verified against the torch models).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rcdnet_desktop.core.bands import default_band_specs
from rcdnet_desktop.core.model.bundle import load_localiser, load_model
from rcdnet_desktop.core.model.card import ModelCard
from training.bundle_write import save_bundle, save_localiser, save_onnx

from .evaluate import N_BOOT, evaluate_model

SITE_DATA = {
    "busi": "BUSI (Al-Dhabyani et al., Data in Brief 28 (2020) 104863, CC0; Baheya hospital, "
            "Cairo, 2018): benign and malignant B-mode images with lesion masks; 'normal' "
            "images not used",
    "breast": "BrEaST / Breast-Lesions-USG (Pawlowska et al., Scientific Data 11, 148 (2024), "
              "doi:10.1038/s41597-024-02984-z; TCIA doi:10.7937/9WKK-Q141; CC BY 4.0; two "
              "Polish centres, several scanners): one image with a lesion mask per patient",
    "bus-uclm": "BUS-UCLM (Vallez et al., Scientific Data (2025), doi:10.1038/s41597-025-04562-3; "
                "CC BY-NC 4.0; Siemens ACUSON S2000, Spain): used only to measure, never to "
                "train or tune",
}
INTENDED_USE = (
    "Decision support for a breast lesion on a greyscale B-mode ultrasound image, read by a "
    "clinician: the bundled localiser proposes a lesion box (drawn dashed, 'found "
    "automatically'), or the clinician draws one, and the clinician reads the likelihood band, "
    "the calibrated probability of malignancy and both Grad-CAM evidence maps alongside their "
    "own assessment (BI-RADS), never instead of it."
)
NOT_FOR = [
    "screening, or finding lesions, without a clinician: the localiser proposes a box on an "
    "image a clinician chose, it does not search an examination for lesions",
    "images with Doppler, elastography or other colour overlays",
    "organs other than the breast (thyroid, liver, lymph nodes, ...)",
    "deciding on biopsy or treatment on its own; a likelihood band is not a BI-RADS assessment",
    "normal (lesion-free) images: the classifier was never trained on them and always answers "
    "benign or malignant",
]
LIMITATIONS = [
    "trained on two public data sets (BUSI: one hospital in Cairo, 2018; BrEaST: two Polish "
    "centres); other hospitals, scanners and presets may differ: the external figures below "
    "come from one further site with 36 patients and have wide confidence intervals",
    "BUSI images carry burned-in text, calipers and biopsy needles that can act as label "
    "shortcuts; the heat maps should be checked for evidence on such marks",
    "BUSI has near-duplicate images (re-crops of one scan), some with conflicting labels; the "
    "split keeps each near-duplicate group on one side and drops conflicting groups, but there "
    "are no patient identifiers, so two different scans of one patient may still cross it",
    "the automatic box can miss the lesion or pick another structure; when it does, the result "
    "describes the wrong region: check the dashed box, and draw your own when it is wrong",
    "temperature calibration was fitted on the training sites' validation images and does not "
    "carry over to another site unchanged: see the per-site calibration error below",
    "greyscale B-mode only; colour images are converted to grey",
    "input is squeezed to 224x224 without keeping the aspect ratio (as in training)",
]
DIFFERENCES = [
    "backbone is EfficientNet-Lite0 (no squeeze-excitation, ReLU6), the only ImageNet "
    "EfficientNet weights available offline here; the paper uses a larger EfficientNet",
    "normalisation is (x - 127) / 128 (tf_lite), which the TensorFlow-converted Lite0 weights "
    "need; the paper uses ImageNet mean/std",
    "contrast enhancement is CLAHE (clip 2, 8x8 tiles) and denoising a 3x3 median filter; the "
    "paper does not give its exact operators",
    "train/validation split 7:3 per site by near-duplicate group (dHash + thumbnail "
    "correlation; BrEaST: one image per patient), stratified, conflicting-label groups "
    "dropped; the paper's split is random by image",
    "augmentation magnitudes are ours (the paper names the operations only); Mixup alpha 0.2",
    "training mixes whole images with lesion-ROI crops (mask box padded by a random share per "
    "side) so one model serves whole images, automatic boxes and clinician-drawn boxes; the "
    "paper trains on whole images",
    "a separate lesion localiser proposes the box the classifier sees; the paper classifies "
    "whole images",
    "the final-epoch weights are shipped (no early stopping or model selection on the "
    "validation split)",
    "temperature scaling (fitted on the validation split) is applied to the probabilities, and "
    "results are read in likelihood bands with a suspicious threshold chosen for sensitivity "
    ">= 0.90 on the validation split, not at 0.5",
    "weights are stored as float16 and cast to float32 when loaded",
]


VALIDATED_ROI_FRACTION = 0.5  # the share compared with 25% and 75% on BUSI (docs/training)


def roi_training_text(roi_fraction: float) -> str:
    """The card's account of the whole/ROI mix, with why the recipe's default share was chosen."""
    text = (f"{roi_fraction:.0%} of training views are lesion-ROI crops (mask box padded by a "
            "random share per side), the rest whole images")
    if roi_fraction == VALIDATED_ROI_FRACTION:
        text += ("; this share was chosen on the BUSI validation split over 25% and 75% (same "
                 "recipe and seed): neither was measurably better in either input mode (paired "
                 "group-bootstrap AUC differences with 95% CIs containing 0, "
                 "docs/training/README.md), and 50% weights whole and box inputs equally")
    return text


def _mode_for_card(r: dict) -> dict:
    d = {}
    for k, v in r["metrics"].items():
        d[k] = round(v["value"], 4)
        d[f"{k}_ci95"] = [round(c, 4) for c in v["ci95"]]
    d["ece_before_temperature"] = round(r["ece_before"], 4)
    d["ece_after_temperature"] = round(r["ece_after"], 4)
    if r.get("ece_after_cross_fitted") is not None:
        d["ece_after_temperature_cross_fitted"] = round(r["ece_after_cross_fitted"], 4)
    d["confusion"] = r["confusion"]
    loc = r.get("localisation")
    if loc:
        d["heatmap_energy_in_mask"] = round(loc["energy_in_mask"], 4)
        d["heatmap_pointing_game"] = round(loc["pointing_game"], 4)
        d["gaussian_baseline_energy_in_mask"] = round(loc["baseline_energy_in_mask"], 4)
        d["gaussian_baseline_pointing_game"] = round(loc["baseline_pointing_game"], 4)
    return d


def metrics_for_card(report: dict, split: str) -> dict:
    """The card's summary of one evaluation: every mode, pooled and per site."""
    out = {"split": split, "n_images": report["n_images"], "n_malignant": report["n_malignant"],
           "threshold": report["threshold"], "bootstrap": report["bootstrap"]}
    for mode, r in report["modes"].items():
        out[mode] = _mode_for_card(r)
    for site, r in (report.get("sites") or {}).items():
        out[f"site_{site}"] = {"n_images": r["n_images"], "n_malignant": r["n_malignant"],
                               **{m: _mode_for_card(x) for m, x in r["modes"].items()}}
    if report.get("localiser"):
        out["localiser"] = report["localiser"]
    return out


def _sites(split_summary: dict) -> list[str]:
    """Training sites named by the split summary (made now or read back from the split CSV)."""
    return sorted(split_summary.get("sites") or split_summary.get("images_by_site") or {}) \
        or ["busi"]


THRESHOLD_LIMITATION = "at the suspicious threshold"


def threshold_limitation(threshold: float, mode: str, internal: dict,
                         external: dict | None = None, rule: str = "the threshold was chosen "
                                                                    "there") -> str:
    """The card's limitation sentence on the cut-off; ``internal``/``external`` are metric
    dicts (``recall`` and ``specificity``, each with ``value``)."""
    text = (f"{THRESHOLD_LIMITATION} ({threshold:.3f}) sensitivity is "
            f"{internal['recall']['value']:.2f} at specificity "
            f"{internal['specificity']['value']:.2f} on the internal validation images ({mode} "
            f"mode, in-sample: {rule})")
    if external:
        text += (f", and {external['recall']['value']:.2f} at "
                 f"{external['specificity']['value']:.2f} on the external site")
    return text + "; a result below it does not rule out malignancy"


def make_card(cfg, report: dict | None, split_summary: dict, version: str,
              temperature: float = 1.0, history: list | None = None,
              external: dict | None = None, operating_point: dict | None = None,
              localiser: dict | None = None, mode: str = "whole") -> ModelCard:
    """The model card; ``report`` is the internal evaluation, ``external`` the other sites'.

    ``mode`` is the input mode the app uses when no box is drawn (the operating point's).
    """
    train_cfg = cfg.to_dict()
    sites = _sites(split_summary)
    data_args = " ".join(f"--data /path/to/{s}" for s in sites)
    training = {
        "data": [SITE_DATA.get(s, s) for s in sites],
        "known_problems": LIMITATIONS[1:3],
        "split": {
            "method": "stratified 7:3 train/validation split per site by near-duplicate group "
                      f"(joined by patient where the site gives patient codes), seed {cfg.seed}; "
                      "groups with conflicting labels dropped",
            "dedup": {k: v for k, v in split_summary.items()},
            "file": "docs/training/split.csv",
        },
        "recipe": train_cfg,
        "roi_training": roi_training_text(cfg.roi_fraction),
        "epochs_run": len(history) if history else None,
        "rebuild": f"rcdnet-train train {data_args} --split docs/training/split.csv --out runs/x"
                   " (see docs/training/README.md for the localiser and the full bundle)",
    }
    limitations = list(LIMITATIONS)
    metrics: dict = {}
    if report:
        metrics["internal_validation"] = metrics_for_card(
            report, "internal validation (held-out 30% of each training site by group)")
        lw = report["modes"]["whole"]["localisation"]
        x = external["modes"][mode]["metrics"] if external else None
        limitations.append(threshold_limitation(report["threshold"], mode,
                                                report["modes"][mode]["metrics"], x))
        if lw:
            limitations.append(
                "heat maps are coarse (7x7 feature map): on whole images the predicted class's "
                f"map puts {lw['energy_in_mask']:.0%} of its energy inside the lesion mask (a "
                f"centred Gaussian: {lw['baseline_energy_in_mask']:.0%}); read them as a coarse "
                "hint, not a lesion outline")
    if external:
        metrics["external"] = metrics_for_card(
            external, "external site(s) never used for training or tuning, every image, CIs "
                      "resampled by patient")
    if not external:
        limitations.append("no external site was evaluated for this bundle: the figures are "
                           "internal validation only")
    return ModelCard(
        version=version, untrained=False, architecture={}, preprocessing=cfg.preprocess,
        weights={"file": "rcdnet_weights.pt", "sha256": "0" * 64, "dtype": "float16"},
        temperature=float(temperature), roi_margin=cfg.roi_margin, training=training,
        metrics=metrics, intended_use=INTENDED_USE, not_for=NOT_FOR, limitations=limitations,
        differences_from_paper=DIFFERENCES,
        notes="Metrics are for the bundled float16 weights as the app loads them, with the "
              "temperature below applied. Reports and plots: docs/training/.",
        localiser=localiser or {}, operating_point=operating_point or {})


def _operating_point(report: dict, external: dict | None, mode: str, target: float) -> dict:
    def at(r: dict) -> dict:
        m = r["modes"][mode]["metrics"]
        return {k: {"value": round(m[k]["value"], 4), "ci95": [round(c, 4) for c in
                                                               m[k]["ci95"]]}
                for k in ("recall", "specificity")}

    op = {"suspicious_threshold": report["threshold"],
          "threshold_rule": f"highest threshold with sensitivity >= {target:.2f} in the {mode} "
                            "mode on the pooled internal validation images",
          "bands": default_band_specs(),
          "at_threshold_internal": at(report)}
    if mode != "whole":  # without a localiser there is no automatic box to use
        op["default_mode"] = mode
    if external:
        op["at_threshold_external"] = at(external)
    return op


def build_and_evaluate_bundle(model, cfg, val_items: Sequence, val_groups: Sequence[int],
                              history: list | None, split_summary: dict, bundle_dir: Path,
                              report_dir: Path, version: str = "1.0.0", seed: int = 0,
                              progress: bool = True, n_boot: int = N_BOOT,
                              val_sites: Sequence[str] | None = None, localiser=None,
                              min_confidence: float = 0.5, default_mode: str = "auto",
                              target_sensitivity: float = 0.9,
                              external: tuple | None = None) -> tuple[ModelCard, dict]:
    """save_bundle (+ localiser) -> load back -> evaluate -> rewrite card with the figures ->
    export the ONNX graphs of the loaded networks (save_onnx).

    ``external`` is ``(items, groups, sites)`` of sites the model was not trained on.
    """
    model = model.cpu().eval()
    card = save_bundle(model, make_card(cfg, None, split_summary, version, history=history),
                       bundle_dir)
    if localiser is not None:
        card = save_localiser(localiser.cpu().eval(),
                              replace(card, localiser={"min_confidence": min_confidence}),
                              bundle_dir)
    loaded, card = load_model(bundle_dir)
    loc = load_localiser(bundle_dir, card)
    mode = default_mode if loc is not None else "whole"
    common = dict(localiser=loc, min_confidence=min_confidence, seed=seed, n_boot=n_boot,
                  progress=progress, title=f"RcdNet {version}")
    report = evaluate_model(loaded, val_items, report_dir, cfg.preprocess, cfg.roi_margin,
                            groups=val_groups, temperature=None, history=history,
                            split_summary=split_summary, train_config=cfg.to_dict(),
                            sites=val_sites, target_sensitivity=target_sensitivity,
                            threshold_mode=mode, **common)
    ext = None
    if external is not None:
        items, groups, sites = external
        common["title"] += " on an external site (" + ", ".join(sorted(set(sites))) + ")"
        ext = evaluate_model(loaded, items, Path(report_dir) / "external", cfg.preprocess,
                             cfg.roi_margin, groups=groups, temperature=report["temperature"],
                             sites=sites, threshold=report["threshold"], **common)
    loc_section = dict(card.localiser)
    if loc is not None:
        loc_section["metrics"] = {"internal_validation": report["localiser"],
                                  **({"external": ext["localiser"]} if ext else {})}
    final = make_card(cfg, report, split_summary, version, report["temperature"], history,
                      external=ext,
                      operating_point=_operating_point(report, ext, mode, target_sensitivity),
                      localiser=loc_section, mode=mode)
    card = save_bundle(loaded, final, bundle_dir)
    card = save_onnx(loaded, loc, card, bundle_dir)
    (Path(report_dir) / "model_card.json").write_text(json.dumps(card.to_dict(), indent=1))
    return card, report
