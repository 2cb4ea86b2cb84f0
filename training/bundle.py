"""Write the application's model bundle (weights + model card) from a trained model.

The bundle is written with :func:`rcdnet_desktop.core.weights.save_bundle` (float16 weights), then
loaded back and evaluated *as loaded*, so the metrics in the card are those of the exact weights
the app runs (float16 rounding included). The temperature is fitted on the validation split
during that evaluation and the card is rewritten with it and the metrics (the weights' bytes do
not change: float16 values survive a second cast).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rcdnet_desktop.core.weights import ModelCard, load_model, save_bundle

from .evaluate import N_BOOT, evaluate_model

INTENDED_USE = (
    "Decision support for a breast lesion already found by a clinician on a greyscale B-mode "
    "ultrasound image: the clinician draws a box around the lesion (preferred; the ROI mode) or "
    "classifies the whole image, and reads the benign/malignant probability and both Grad-CAM "
    "evidence maps alongside their own assessment (BI-RADS), never instead of it."
)
NOT_FOR = [
    "screening, or finding lesions, without a clinician: the model classifies a lesion a "
    "clinician has already found",
    "images with Doppler, elastography or other colour overlays",
    "organs other than the breast (thyroid, liver, lymph nodes, ...)",
    "deciding on biopsy or treatment on its own",
    "normal (lesion-free) images: the model was never trained on them and always answers "
    "benign or malignant",
]
LIMITATIONS = [
    "trained on BUSI only: one hospital (Baheya, Cairo, 2018), women aged 25-75, few devices; "
    "published external evaluations of BUSI-trained models report AUC 0.74-0.89 on other "
    "hospitals' images, so expect lower performance than the internal validation figures here",
    "BUSI images carry burned-in text, calipers and biopsy needles that can act as label "
    "shortcuts; the heat maps should be checked for evidence on such marks",
    "BUSI has near-duplicate images (re-crops of one scan), some with conflicting labels; the "
    "split keeps each near-duplicate group on one side and drops conflicting groups, but there "
    "are no patient identifiers, so two different scans of one patient may still cross it",
    "validation split only (no independent external test set was available): the confidence "
    "intervals describe sampling uncertainty on BUSI, not transfer to other sites",
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
    "train/validation split 7:3 by near-duplicate group (dHash + thumbnail correlation), "
    "stratified, conflicting-label groups dropped; the paper's split is random by image",
    "augmentation magnitudes are ours (the paper names the operations only): crop 85-100% of "
    "the area, aspect 0.9-1.1, rotation +-10 deg, zoom 0.9-1.1, horizontal flip p=0.5; Mixup "
    "alpha 0.2",
    "training mixes whole images with lesion-ROI crops (mask box padded by a random 10-30% per "
    "side) so one model serves both whole images and clinician-drawn boxes; the paper trains "
    "on whole images",
    "the final-epoch weights are shipped (no early stopping or model selection on the "
    "validation split)",
    "temperature scaling (fitted on the validation split) is applied to the probabilities",
    "no external test set was available, so only internal validation figures are reported",
    "weights are stored as float16 and cast to float32 when loaded",
]


VALIDATED_ROI_FRACTION = 0.5  # the share compared with 25% and 75% on BUSI (docs/training)


def roi_training_text(roi_fraction: float) -> str:
    """The card's account of the whole/ROI mix, with why the recipe's default share was chosen."""
    text = (f"{roi_fraction:.0%} of training views are lesion-ROI crops (mask box padded by a "
            "random 10-30% per side), the rest whole images")
    if roi_fraction == VALIDATED_ROI_FRACTION:
        text += ("; this share was chosen on the BUSI validation split over 25% and 75% (same "
                 "recipe and seed): neither was measurably better in either input mode (paired "
                 "group-bootstrap AUC differences with 95% CIs containing 0, "
                 "docs/training/README.md), and 50% weights the app's two input modes equally")
    return text


def metrics_for_card(report: dict) -> dict:
    out = {"split": "internal validation (held-out 30% by near-duplicate group)",
           "n_images": report["n_images"], "n_malignant": report["n_malignant"],
           "threshold": report["threshold"], "bootstrap": report["bootstrap"]}
    for mode, r in report["modes"].items():
        d = {}
        for k, v in r["metrics"].items():
            d[k] = round(v["value"], 4)
            d[f"{k}_ci95"] = [round(c, 4) for c in v["ci95"]]
        d["ece_before_temperature"] = round(r["ece_before"], 4)
        d["ece_after_temperature"] = round(r["ece_after"], 4)
        if r.get("ece_after_cross_fitted") is not None:
            d["ece_after_temperature_cross_fitted"] = round(r["ece_after_cross_fitted"], 4)
        d["confusion"] = r["confusion"]
        loc = r["localisation"]
        d["heatmap_energy_in_mask"] = round(loc["energy_in_mask"], 4)
        d["heatmap_pointing_game"] = round(loc["pointing_game"], 4)
        d["gaussian_baseline_energy_in_mask"] = round(loc["baseline_energy_in_mask"], 4)
        d["gaussian_baseline_pointing_game"] = round(loc["baseline_pointing_game"], 4)
        out[f"validation_{mode}"] = d
    return out


def make_card(cfg, report: dict | None, split_summary: dict, version: str,
              temperature: float = 1.0, history: list | None = None) -> ModelCard:
    train_cfg = cfg.to_dict()
    training = {
        "data": "BUSI (Al-Dhabyani et al., Data in Brief 28 (2020) 104863, CC0): benign and "
                "malignant B-mode images with lesion masks; 'normal' images not used",
        "known_problems": LIMITATIONS[1:3],
        "split": {
            "method": "stratified 7:3 train/validation split by near-duplicate group, seed "
                      f"{cfg.seed}; groups with conflicting labels dropped",
            "dedup": {k: v for k, v in split_summary.items()},
            "file": "docs/training/split.csv",
        },
        "recipe": train_cfg,
        "roi_training": roi_training_text(cfg.roi_fraction),
        "epochs_run": len(history) if history else None,
        "rebuild": "rcdnet-train train --data /path/to/busi --out runs/x",
    }
    limitations = list(LIMITATIONS)
    if report:
        w, r = report["modes"]["whole"], report["modes"]["roi"]
        lw, lr = w["localisation"], r["localisation"]
        limitations += [
            f"at the default threshold (0.5) sensitivity is {w['metrics']['recall']['value']:.2f} "
            f"(whole image) / {r['metrics']['recall']['value']:.2f} (lesion box) at specificity "
            f"{w['metrics']['specificity']['value']:.2f} / "
            f"{r['metrics']['specificity']['value']:.2f}: a benign call does not rule out "
            "malignancy",
            "heat maps are coarse (7x7 feature map): on whole images the predicted class's map "
            f"puts {lw['energy_in_mask']:.0%} of its energy inside the lesion mask (a centred "
            f"Gaussian: {lw['baseline_energy_in_mask']:.0%}) and its maximum falls inside the "
            f"lesion in {lw['pointing_game']:.0%} of images (Gaussian: "
            f"{lw['baseline_pointing_game']:.0%}); inside a lesion box, where the lesion is "
            f"centred by construction, {lr['energy_in_mask']:.0%} and {lr['pointing_game']:.0%} "
            f"(Gaussian: {lr['baseline_energy_in_mask']:.0%}, "
            f"{lr['baseline_pointing_game']:.0%}). Read them as a coarse hint, not a lesion "
            "outline",
        ]
    return ModelCard(
        version=version, untrained=False, architecture={}, preprocessing=cfg.preprocess,
        weights={"file": "rcdnet_weights.pt", "sha256": "0" * 64, "dtype": "float16"},
        temperature=float(temperature), roi_margin=cfg.roi_margin, training=training,
        metrics=metrics_for_card(report) if report else {}, intended_use=INTENDED_USE,
        not_for=NOT_FOR, limitations=limitations, differences_from_paper=DIFFERENCES,
        notes="Metrics are for the bundled float16 weights as the app loads them, with the "
              "temperature below applied. Reports and plots: docs/training/.")


def build_and_evaluate_bundle(model, cfg, val_items: Sequence, val_groups: Sequence[int],
                              history: list | None, split_summary: dict, bundle_dir: Path,
                              report_dir: Path, version: str = "1.0.0", seed: int = 0,
                              progress: bool = True,
                              n_boot: int = N_BOOT) -> tuple[ModelCard, dict]:
    """save_bundle -> load back -> evaluate (fit T) -> rewrite card with T and metrics."""
    model = model.cpu().eval()
    save_bundle(model, make_card(cfg, None, split_summary, version, history=history), bundle_dir)
    loaded, _ = load_model(bundle_dir)
    report = evaluate_model(loaded, val_items, report_dir, cfg.preprocess, cfg.roi_margin,
                            groups=val_groups, temperature=None, history=history,
                            split_summary=split_summary, train_config=cfg.to_dict(), seed=seed,
                            n_boot=n_boot, progress=progress, title=f"RcdNet {version}")
    card = make_card(cfg, report, split_summary, version, report["temperature"], history)
    card = save_bundle(loaded, card, bundle_dir)
    (Path(report_dir) / "model_card.json").write_text(json.dumps(card.to_dict(), indent=1))
    return card, report
