"""Figures (PNG, matplotlib Agg) and the Markdown report of an evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rcdnet_desktop.core.metrics import METRICS, reliability, softmax

MODE_LABEL = {"whole": "whole image", "roi": "lesion ROI (mask box + margin)",
              "auto": "automatic box (localiser box + margin)",
              "fusion": "fusion (whole image + automatic box)"}
FIGURES = ("roc.png", "calibration.png", "confusion.png", "localisation.png")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_figures(report: dict, logits: dict, y: np.ndarray, temperature: float,
                  out_dir: Path) -> list[Path]:
    """ROC, calibration, confusion matrices, localisation and (if any) training curves."""
    from sklearn.metrics import roc_curve

    plt = _plt()
    out_dir = Path(out_dir)
    written = []

    fig, ax = plt.subplots(figsize=(5, 5))
    for mode, lg in logits.items():
        p = softmax(lg, temperature)[:, 1]
        if len(set(y)) == 2:
            fpr, tpr, _ = roc_curve(y, p)
            m = report["modes"][mode]["metrics"]["auc"]
            ax.plot(fpr, tpr, label=f"{MODE_LABEL[mode]}: AUC {m['value']:.3f} "
                                    f"[{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC (malignant positive)")
    ax.legend(loc="lower right", fontsize=7)
    written.append(_save(fig, out_dir / "roc.png"))

    fig, axes = plt.subplots(1, len(logits), figsize=(4.5 * len(logits), 4.2), squeeze=False)
    for ax, (mode, lg) in zip(axes[0], logits.items(), strict=True):
        r = report["modes"][mode]
        for t, name, style in ((1.0, f"before (ECE {r['ece_before']:.3f})", "o-"),
                               (temperature, f"T={temperature:.2f} (ECE {r['ece_after']:.3f})",
                                "s-")):
            pts = reliability(y, softmax(lg, t))
            if pts:
                c, a, _ = zip(*pts, strict=True)
                ax.plot(c, a, style, label=name, ms=4)
        ax.plot([0.5, 1], [0.5, 1], "k:", lw=0.8)
        ax.set(xlabel="confidence", ylabel="accuracy", title=MODE_LABEL[mode], xlim=(0.45, 1.0),
               ylim=(0, 1.02))
        ax.legend(fontsize=7)
    written.append(_save(fig, out_dir / "calibration.png"))

    fig, axes = plt.subplots(1, len(logits), figsize=(4 * len(logits), 3.8), squeeze=False)
    for ax, mode in zip(axes[0], logits, strict=True):
        c = report["modes"][mode]["confusion"]
        mat = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
        ax.imshow(mat, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(mat[i, j]), ha="center", va="center",
                        color="white" if mat[i, j] > mat.max() / 2 else "black")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["benign", "malignant"],
               yticklabels=["benign", "malignant"], xlabel="predicted", ylabel="true",
               title=MODE_LABEL[mode])
    written.append(_save(fig, out_dir / "confusion.png"))

    cam_modes = [m for m in logits if m != "fusion"]  # fusion has no heat maps of its own
    if any(report["modes"][m]["localisation"] is None for m in cam_modes):
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no closed-form CAM for this architecture", ha="center")
        written.append(_save(fig, out_dir / "localisation.png"))
        if report.get("history"):
            written.append(training_curves(report["history"], out_dir / "training_curves.png"))
        return written
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), squeeze=False)
    for ax, key, label in ((axes[0][0], "energy_in_mask", "heat-map energy inside mask"),
                           (axes[0][1], "pointing_game", "pointing-game hit rate")):
        modes = cam_modes
        model_v = [report["modes"][m]["localisation"][key] for m in modes]
        base_v = [report["modes"][m]["localisation"][f"baseline_{key}"] for m in modes]
        xs = np.arange(len(modes))
        ax.bar(xs - 0.2, model_v, 0.4, label="Grad-CAM (predicted class)")
        ax.bar(xs + 0.2, base_v, 0.4, label="centred Gaussian baseline")
        ax.set(xticks=xs, xticklabels=[MODE_LABEL[m].split(" (")[0] for m in modes],
               ylim=(0, 1), title=label)
        ax.legend(fontsize=7)
    written.append(_save(fig, out_dir / "localisation.png"))

    if report.get("history"):
        written.append(training_curves(report["history"], out_dir / "training_curves.png"))
    return written


def training_curves(history: list[dict], path: Path) -> Path:
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(ep, [h["train_loss"] for h in history], label="train (Mixup, smoothed)")
    for mode in ("whole", "roi"):
        k = f"val_loss_{mode}"
        pts = [(h["epoch"], h[k]) for h in history if k in h]
        if pts:
            axes[0].plot(*zip(*pts, strict=True), "o-", ms=3, label=f"val {MODE_LABEL[mode]}")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    axes[1].plot(ep, [h["train_acc"] for h in history], label="train (vs dominant Mixup label)")
    for mode in ("whole", "roi"):
        for key, style in (("acc", "-"), ("auc", "--")):
            k = f"val_{key}_{mode}"
            pts = [(h["epoch"], h[k]) for h in history if k in h]
            if pts:
                axes[1].plot(*zip(*pts, strict=True), style, marker="o", ms=3,
                             label=f"val {key.upper()} {MODE_LABEL[mode].split(' (')[0]}")
    axes[1].set(xlabel="epoch", title="accuracy / AUC", ylim=(0.4, 1.0))
    for ax in axes:
        ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def fmt_ci(m: dict) -> str:
    lo, hi = m["ci95"]
    return f"{m['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def site_tables(report: dict) -> list[str]:
    """AUC, sensitivity, specificity and ECE of every mode, one row per site."""
    if not report.get("sites"):
        return []
    modes = list(report["modes"])
    lines = ["", "## Per site", "",
             f"Threshold {report['threshold']:.3f}; AUC, sensitivity and specificity with 95% "
             "CIs resampled by group within the site; ECE after the temperature.", "",
             "| site | images (malignant) | input | AUC | sensitivity | specificity | ECE |",
             "|---|---|---|---|---|---|---|"]
    for site, r in report["sites"].items():
        for m in modes:
            x = r["modes"][m]
            lines.append(f"| {site} | {r['n_images']} ({r['n_malignant']}) | {MODE_LABEL[m]} | "
                         f"{fmt_ci(x['metrics']['auc'])} | {fmt_ci(x['metrics']['recall'])} | "
                         f"{fmt_ci(x['metrics']['specificity'])} | {x['ece_after']:.3f} |")
    return lines


def localiser_table(report: dict) -> list[str]:
    """The localiser's Dice, box IoU and hit rate (box IoU >= 0.5), pooled and per site."""
    loc = report.get("localiser")
    if not loc:
        return []
    lines = ["", "## Automatic lesion localisation", "",
             f"Images with a lesion mask; minimum confidence {loc['min_confidence']:.2f}; 95% "
             "CIs resampled by group. A missed lesion counts with IoU 0. Dice of the thresholded "
             "map at the model's input size; box IoU against the mask's box in image pixels.", "",
             "| | images | Dice | box IoU | box IoU >= 0.5 | lesion found |",
             "|---|---|---|---|---|---|"]
    def cell(r: dict, k: str) -> str:
        ci = r.get(f"mean_{k}_ci95")
        return f"{r[f'mean_{k}']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    for name, r in loc.items():
        if isinstance(r, dict):
            lines.append(f"| {name} | {r['n']} | {cell(r, 'dice')} | {cell(r, 'box_iou')} "
                         f"| {cell(r, 'hit')} | {r['mean_found']:.3f} |")
    if loc.get("hit_rate_by_confidence"):
        lines += ["", "Box hits the lesion (IoU >= 0.5) by the localiser's confidence (all "
                  "findings, before the minimum confidence):", "",
                  "| confidence | images | hit rate |", "|---|---|---|"]
        for r in loc["hit_rate_by_confidence"]:
            rate = "-" if r["hit_rate"] is None else f"{r['hit_rate']:.2f}"
            lines.append(f"| {r['confidence']} | {r['n']} | {rate} |")
    return lines


def write_markdown(report: dict, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    lines = [f"# Evaluation: {report['title']}", "",
             f"{report['n_images']} images ({report['n_malignant']} malignant). "
             f"Positive class: malignant, threshold {report.get('threshold', 0.5):.3f} on the "
             "temperature-scaled probability"
             f"{' (each view averaged with its mirror image)' if report.get('tta') else ''}. "
             f"95% CIs: percentile bootstrap, {report['bootstrap']['n']} resamples of "
             f"{report['bootstrap']['unit']}s, seed {report['bootstrap']['seed']}.", "",
             f"Temperature: {report['temperature']:.4f} ({report['temperature_source']}).", "",
             "| metric | " + " | ".join(MODE_LABEL[m] for m in report["modes"]) + " |",
             "|---|" + "---|" * len(report["modes"])]
    for k in METRICS:
        lines.append(f"| {k} | " + " | ".join(fmt_ci(report['modes'][m]['metrics'][k])
                                              for m in report["modes"]) + " |")
    fitted = report["temperature_source"].startswith("fitted")
    rows = [("share called malignant", "malignant_share"), ("NLL before T", "nll_before"),
            ("NLL after T", "nll_after"), ("ECE before T", "ece_before"),
            ("ECE after T (in-sample)" if fitted else "ECE after the card's T", "ece_after"),
            ("ECE after T (2-fold cross-fitted)" if fitted
             else "ECE if T were refitted on these images (2-fold cross-fitted; diagnostic "
                  "only)", "ece_after_cross_fitted")]
    for label, key in rows:
        vals = [report["modes"][m].get(key) for m in report["modes"]]
        lines.append(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.3f}"
                                                  for v in vals) + " |")
    lines += ["", "Confusion (tn, fp, fn, tp): " + "; ".join(
        f"{MODE_LABEL[m]}: {tuple(report['modes'][m]['confusion'].values())}"
        for m in report["modes"]), "", "## Heat-map localisation", "",
        "Closed-form Grad-CAM of the predicted class (normalised as the app shows it) on images "
        "with a lesion mask, against a centred Gaussian map (sigma = 1/4 of the side).", "",
        "| | " + " | ".join(MODE_LABEL[m] for m in report["modes"]) + " |",
        "|---|" + "---|" * len(report["modes"])]
    no_cam = any(report["modes"][m]["localisation"] is None for m in report["modes"]
                 if m != "fusion")
    if no_cam:
        lines += ["| not available for this architecture (no closed-form CAM) | |"]
    for label, key in () if no_cam else (("images with mask", "n_with_mask"),
                       ("mask area / view area", "mask_area_share"),
                       ("energy inside mask: Grad-CAM", "energy_in_mask"),
                       ("energy inside mask: Gaussian", "baseline_energy_in_mask"),
                       ("pointing game: Grad-CAM", "pointing_game"),
                       ("pointing game: Gaussian", "baseline_pointing_game")):
        vals = [(report["modes"][m]["localisation"] or {}).get(key) for m in report["modes"]]
        lines.append(f"| {label} | " + " | ".join(
            "-" if v is None else str(v) if isinstance(v, int) else f"{v:.3f}"
            for v in vals) + " |")
    lines += site_tables(report) + localiser_table(report)
    lines += ["", "Figures: " + ", ".join(f"[{f}]({f})" for f in FIGURES)
              + (", [training_curves.png](training_curves.png)" if report.get("history") else ""),
              ""]
    if report.get("split"):
        s = report["split"]
        lines += ["## Split" if "train_images" in s else "## Images", "", "```",
                  *(f"{k}: {v}" for k, v in s.items() if k != "conflicts"), "```", ""]
        if s.get("conflicts"):
            lines += ["Near-duplicate groups with conflicting labels (excluded):", "",
                      *(f"- {', '.join(g)}" for g in s["conflicts"]), ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
