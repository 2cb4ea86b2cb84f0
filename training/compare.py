"""Baselines and ablations in one harness: same split, same recipe, same evaluation.

Each entry trains with the recipe of the main model (only the named change applied), is evaluated
on the same validation split in both input modes, and lands in a table laid out like the
paper's Table 1 (precision, recall, F1, accuracy, plus AUC with its 95% CI).

torchvision baselines use ImageNet weights only if they are already in the local torch cache
(nothing can be downloaded here); otherwise they are trained from scratch and the table says so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from .paired import has_predictions, paired_difference

log = logging.getLogger(__name__)

# name -> (arch, recipe overrides, description)
VARIANTS: dict[str, tuple[str, dict, str]] = {
    "rcdnet": ("rcdnet", {}, "RcdNet (Lite0 + DSC + CBAM), full recipe"),
    "rcdnet-no-cbam": ("rcdnet-no-cbam", {}, "ablation: without CBAM"),
    "rcdnet-no-dsc": ("rcdnet-no-dsc", {}, "ablation: without the DSC block"),
    "rcdnet-no-mixup": ("rcdnet", {"mixup_alpha": 0.0}, "ablation: without Mixup"),
    "rcdnet-no-label-smoothing": ("rcdnet", {"label_smoothing": 0.0},
                                  "ablation: without label smoothing"),
    "rcdnet-roi-0.25": ("rcdnet", {"roi_fraction": 0.25},
                        "whole/ROI mix: 25% lesion-box views instead of 50%"),
    "rcdnet-roi-0.75": ("rcdnet", {"roi_fraction": 0.75},
                        "whole/ROI mix: 75% lesion-box views instead of 50%"),
    "lite0": ("lite0", {}, "plain EfficientNet-Lite0 fine-tuning (no DSC, no CBAM)"),
    "mobilenet_v2": ("mobilenet_v2", {}, "MobileNetV2 (torchvision)"),
    "regnet_y_400mf": ("regnet_y_400mf", {}, "RegNetY-400MF (torchvision)"),
    "resnet50": ("resnet50", {}, "ResNet50 (torchvision)"),
    "resnext50_32x4d": ("resnext50_32x4d", {}, "ResNeXt50-32x4d (torchvision)"),
    "vit_b_16": ("vit_b_16", {}, "ViT-B/16 (torchvision)"),
}
HEAVY = ("resnet50", "resnext50_32x4d", "vit_b_16")
REFERENCE = "rcdnet"  # the shipped model: every other row is compared with it


def run_compare(prep, base_cfg, out_dir: Path, names=None, table: Path | None = None,
                progress: bool = True, extra_reports: dict[str, Path] | None = None) -> Path:
    """Train + evaluate each variant (skipping finished ones), then write the table."""
    from .evaluate import evaluate_model
    from .models import build_model
    from .train import train

    out_dir = Path(out_dir)
    names = list(names or VARIANTS)
    tr, va, groups = prep.subset("train"), prep.subset("val"), prep.groups("val")
    for name in names:
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; choose from {list(VARIANTS)}")
        arch, overrides, _ = VARIANTS[name]
        run = out_dir / name
        if (run / "report" / "report.json").exists():
            log.info("%s: already evaluated, skipping", name)
            continue
        run.mkdir(parents=True, exist_ok=True)
        cfg = replace(base_cfg, arch=arch, **overrides)
        model, info = build_model(arch, cfg.pretrained)
        (run / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        (run / "model_info.json").write_text(json.dumps(info, indent=1))
        log.info("%s: training %s (%s)", name, arch, info["init"])
        model, history = train(tr, va, cfg, run, resume=True, progress=progress, model=model)
        evaluate_model(model, va, run / "report", cfg.preprocess, cfg.roi_margin, groups=groups,
                       history=history, train_config=cfg.to_dict(), seed=cfg.seed,
                       progress=progress, title=name)
    return write_table(out_dir, table or out_dir / "comparison.md", extra_reports)


def _row(name: str, rep: dict, info: dict, cfg: dict, mode: str, delta: str) -> str:
    m = rep["modes"][mode]["metrics"]
    auc = m["auc"]
    epochs = len(rep.get("history") or []) or cfg.get("epochs", "?")
    what = VARIANTS.get(name, ("", {}, ""))[2]
    return (f"| {name} | {what} | {info.get('init', '?')} | {epochs} | {mode} | "
            f"{m['precision']['value']:.3f} | {m['recall']['value']:.3f} | "
            f"{m['f1']['value']:.3f} | {m['accuracy']['value']:.3f} | "
            f"{auc['value']:.3f} [{auc['ci95'][0]:.3f}, {auc['ci95'][1]:.3f}] | {delta} |")


def _delta(name: str, report: Path, reference: Path | None, mode: str) -> str:
    """The paired AUC difference to the reference model, as a table cell."""
    if name == REFERENCE:
        return "reference"
    if reference is None or not (has_predictions(report.parent) and has_predictions(reference)):
        return "n/a"
    d = paired_difference(report.parent, reference, mode)["auc"]
    return f"{d['value']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"


def write_table(out_dir: Path, table: Path, extra_reports: dict[str, Path] | None = None) -> Path:
    """Table 1 layout from every ``<out_dir>/<name>/report/report.json`` (+ extra reports)."""
    out_dir = Path(out_dir)
    found: dict[str, Path] = {}
    for name, p in (extra_reports or {}).items():  # e.g. the shipped model's own evaluation
        found[name] = Path(p)
    for name in VARIANTS:
        p = out_dir / name / "report" / "report.json"
        if p.exists() and name not in found:
            found[name] = p
    ref = found.get(REFERENCE)
    ref_dir = ref.parent if ref is not None else None
    lines = ["# Baselines and ablations", "",
             "Same group split (docs/training/split.csv), same recipe (Adam 1e-3, wd 1e-4, cosine, "
             "batch 32, label smoothing 0.1, Mixup 0.2, 50% lesion-ROI views) unless the row "
             "names a change. Validation split, malignant positive, threshold 0.5. AUC with 95% "
             "group-bootstrap CI. 'epochs' below the recipe's 30 means a shortened run: not the "
             "same recipe, read it as such. The last column is the model's AUC minus "
             f"{REFERENCE}'s on the same images, with a paired group-bootstrap 95% CI (both "
             "models resampled together): an interval that contains 0 means no measurable "
             "difference.", "",
             "| model | what it is | initialisation | epochs | input | precision | recall | F1 | "
             f"accuracy | AUC [95% CI] | AUC - {REFERENCE} [paired 95% CI] |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, p in found.items():
        rep = json.loads(Path(p).read_text())
        run = Path(p).parent.parent
        info = _load(run / "model_info.json") or {"init": "imagenet-lite0"}
        cfg = rep.get("train_config") or _load(run / "train_config.json") or {}
        for mode in ("whole", "roi"):
            lines.append(_row(name, rep, info, cfg, mode, _delta(name, Path(p), ref_dir, mode)))
    lines += ["", "External site: these rows are BUSI-only models on BUSI's validation split. Of "
              "them only the 1.0.0 bundle (the `rcdnet` row) was kept and measured on BUS-UCLM: "
              "AUC 0.757 whole image, 0.870 lesion box, 0.799 with the automatic box fused "
              "(docs/training/v1). The other rows' weights were not kept; re-running them with "
              "`rcdnet-train compare` and then `rcdnet-train evaluate --external` fills the "
              "external column. The two-site candidates of RcdNet 2.0.0, each measured internally "
              "and on BUS-UCLM, are compared in docs/training/README.md."]
    missing = [n for n in VARIANTS if n not in found]
    if missing:
        lines += ["", "Not run yet (CPU time): " + ", ".join(
            f"{n}{' (a GPU job: hours on 2 CPU cores)' if n in HEAVY else ''}" for n in missing)
            + ". Run them with `rcdnet-train compare --data BUSI --split "
              "docs/training/split.csv --models NAME...`; "
              "`benchmarks/bench_training_step.py` measures what each costs here."]
    table = Path(table)
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("\n".join(lines) + "\n")
    return table


def _load(p: Path):
    return json.loads(p.read_text()) if p.exists() else None
