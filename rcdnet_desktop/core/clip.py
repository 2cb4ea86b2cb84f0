"""A clip's one result: :class:`ClipSummary` and :func:`clip_summary`, the one rule for it.

Each frame classified falls in one of three groups, by its own prediction (:func:`frame_group`):
outside intended use, no lesion found, classifiable; the clip's figures are taken over its
classifiable frames (the rule in words: :mod:`~rcdnet_desktop.core.cine`). Kept apart from the
sweep so the batch's items (:mod:`~rcdnet_desktop.core.batch_item`) can hold a summary without
depending on the engine's side of a sweep.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from rcdnet_desktop.core.result import (
    OUTSIDE_INTENDED_USE,
    SUSPICIOUS,
    frame_number,
    no_lesion_found,
)
from rcdnet_desktop.core.types import Prediction


def frame_group(p: Prediction) -> str:
    """``"outside"`` (an intended-use check flagged it), ``"no_lesion"`` or ``"classifiable"``.

    A frame both flagged and without a lesion counts as outside intended use: that is the
    stronger reason not to read it.
    """
    if p.outside_intended_use:
        return "outside"
    if no_lesion_found(p):
        return "no_lesion"
    return "classifiable"


@dataclass(frozen=True)
class ClipSummary:
    """One clip's result under :func:`clip_summary`.

    Frames are the code's indices (from 0); :meth:`text` numbers them from 1, as everything
    shown does (:func:`~rcdnet_desktop.core.result.frame_number`).

    Attributes
    ----------
    frames : int
        Frames classified (each in one group: classifiable, no lesion found, outside intended
        use).
    max_p : float
        The highest probability of malignancy of a classifiable frame (of any frame classified
        when none is classifiable).
    max_frame : int
        The frame with ``max_p`` (the earliest one on a tie).
    median_p : float
        The median probability of malignancy over the same frames as ``max_p``.
    suspicious_frames : int
        Classifiable frames the model called suspicious (``Prediction.suspicious``).
    threshold : float
        The suspicious threshold the frames were decided at (the model card's).
    flagged_frames : tuple of int
        Frames an intended-use check flagged (outside intended use), in order.
    no_lesion_frames : tuple of int
        Frames within intended use on which no lesion was found, in order.
    failed_frames : tuple of int
        Frames that could not be classified (not counted in ``frames``), in order.
    """

    frames: int
    max_p: float
    max_frame: int
    median_p: float
    suspicious_frames: int
    threshold: float
    flagged_frames: tuple[int, ...] = ()
    no_lesion_frames: tuple[int, ...] = ()
    failed_frames: tuple[int, ...] = ()

    @property
    def classifiable(self) -> int:
        """Frames neither outside intended use nor without a lesion found."""
        return self.frames - len(self.flagged_frames) - len(self.no_lesion_frames)

    @property
    def suspicious_share(self) -> float | None:
        """Share of the classifiable frames that are suspicious (0 to 1); None when no frame
        is classifiable."""
        return self.suspicious_frames / self.classifiable if self.classifiable else None

    def text(self) -> str:
        """The summary in words, frames numbered from 1, e.g.
        ``"2 of 25 classifiable frames suspicious (8%); max P(malignant) 0.58 (frame 11),
        median 0.37; 15 frames: no lesion found; 0 outside intended use"``."""
        n = self.classifiable
        if n:
            share = self.suspicious_share or 0.0
            parts = [f"{self.suspicious_frames} of {n} classifiable "
                     f"{'frame' if n == 1 else 'frames'} {SUSPICIOUS} ({_percent(share)})",
                     f"max P(malignant) {self.max_p:.2f} (frame {frame_number(self.max_frame)}), "
                     f"median {self.median_p:.2f}"]
        else:
            parts = [f"no classifiable frame of {frames_text(self.frames)}"]
        parts += [f"{frames_text(len(self.no_lesion_frames))}: no lesion found",
                  f"{len(self.flagged_frames)} {OUTSIDE_INTENDED_USE.lower()}"]
        if self.failed_frames:
            parts.append(f"{frames_text(len(self.failed_frames))} could not be classified")
        return "; ".join(parts)


def frames_text(n: int) -> str:
    """``"1 frame"``, ``"2 frames"``."""
    return f"{n} frame" if n == 1 else f"{n} frames"


def _percent(share: float) -> str:
    """A share in whole percent; a share above 0 that rounds to 0 is "<1%" (and below 1, that
    rounds to 100, ">99%"), so no frame is hidden by rounding."""
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 <= share < 1:
        return ">99%"
    return f"{round(100 * share)}%"


def clip_summary(predictions: Iterable[Prediction], threshold: float,
                 failed: Iterable[int] = ()) -> ClipSummary:
    """The clip's result from its frames' predictions (each carries its ``frame``).

    Parameters
    ----------
    predictions : iterable of Prediction
        One per frame classified, in any order.
    threshold : float
        The suspicious threshold (:func:`~rcdnet_desktop.core.bands.suspicious_threshold` of
        the model card) the predictions were decided at; kept for display.
    failed : iterable of int
        Frames that could not be classified.

    Raises
    ------
    ValueError
        No predictions.
    """
    preds = sorted(predictions, key=lambda p: p.frame)
    if not preds:
        raise ValueError("a clip summary needs at least one classified frame")
    groups = [frame_group(p) for p in preds]
    usable = [p for p, g in zip(preds, groups, strict=True) if g == "classifiable"] or preds
    probs = [p.p_malignant for p in usable]
    worst = max(range(len(usable)), key=lambda i: (probs[i], -usable[i].frame))
    return ClipSummary(
        frames=len(preds),
        max_p=probs[worst],
        max_frame=usable[worst].frame,
        median_p=float(statistics.median(probs)),
        suspicious_frames=sum(bool(p.suspicious) for p, g in zip(preds, groups, strict=True)
                              if g == "classifiable"),
        threshold=float(threshold),
        flagged_frames=tuple(p.frame for p, g in zip(preds, groups, strict=True)
                             if g == "outside"),
        no_lesion_frames=tuple(p.frame for p, g in zip(preds, groups, strict=True)
                               if g == "no_lesion"),
        failed_frames=tuple(sorted(set(failed))),
    )
