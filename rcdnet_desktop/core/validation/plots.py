"""The validation report's two plots as PNG bytes: the ROC curve and the calibration plot.

No Qt here. Drawn with matplotlib's Agg canvas directly (no pyplot, so no global backend is
chosen and nothing is left open), from the figures of :func:`~.figures.validation_figures`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

_SIZE = (4.2, 4.0)  # inches
_DPI = 110


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def roc_png(figures: Mapping[str, Any]) -> bytes:
    """The ROC curve of P(malignant) here, with the operating point at the card's cut-off and,
    when the card gives them, its sensitivity and specificity at its external site."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE, layout="constrained")
    ax = fig.add_subplot()
    roc = figures["roc"]
    auc = figures["auc"].get("value")
    label = f"here (AUC {auc:.2f})" if auc is not None else "here"
    ax.plot(roc["fpr"], roc["tpr"], color="#1f4e79", lw=2, label=label)
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--", label="chance")
    at = figures["at_cutoff"]
    sens, spec = at["sensitivity"].get("value"), at["specificity"].get("value")
    if sens is not None and spec is not None:
        ax.plot([1 - spec], [sens], "o", color="#c00000", label="card's cut-off, here")
    card = figures.get("card_external") or {}
    if "sensitivity" in card and "specificity" in card:
        ax.plot([1 - card["specificity"]["value"]], [card["sensitivity"]["value"]], "s",
                mfc="none", color="#555555", label="card's cut-off, its external site")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity (benign flagged)",
           ylabel="sensitivity (cancers flagged)", title="ROC curve")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7)
    return _png(fig)


def calibration_png(figures: Mapping[str, Any]) -> bytes:
    """Observed rate of cancer against mean P(malignant) in equal-width bins, with Wilson
    intervals, against the diagonal of perfect calibration; the band limits as ticks."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE, layout="constrained")
    ax = fig.add_subplot()
    bins = figures["calibration"]["bins"]
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--", label="perfect calibration")
    if bins:
        x = [b["mean_p"] for b in bins]
        y = [b["rate"] for b in bins]
        err = [[b["rate"] - b["ci95"][0] for b in bins], [b["ci95"][1] - b["rate"] for b in bins]]
        ax.errorbar(x, y, yerr=err, fmt="o-", color="#1f4e79", capsize=3, label="here")
        for b, xi, yi in zip(bins, x, y, strict=True):
            ax.annotate(str(b["n"]), (xi, yi), textcoords="offset points", xytext=(4, -10),
                        fontsize=6, color="#555555")
    for band in figures["bands"][:-1]:
        ax.axvline(band["range"][1], color="#dddddd", lw=0.8, zorder=0)
    ece = figures["calibration"]["ece"].get("value")
    title = "Calibration" + (f" (ECE {ece:.3f})" if ece is not None else "")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="P(malignant), mean in the bin",
           ylabel="observed share of cancers", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=7)
    return _png(fig)


__all__ = ["calibration_png", "roc_png"]
