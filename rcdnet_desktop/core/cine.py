"""Cine clips: frames classified one chunk at a time, and one result for the whole clip.

:func:`~rcdnet_desktop.core.clip.clip_summary` is the one rule for a clip's result, used by
the viewer's timeline and the batch review (the viewer's and ``rcdnet classify --frames``).
Each frame classified falls in one of three groups, by its own prediction:

- **outside intended use**: an intended-use check flagged the frame (``Prediction.checks``);
- **no lesion found**: within intended use, but the localiser found no lesion with confidence,
  so the whole frame was classified (less reliable);
- **classifiable**: the others (a lesion box, found or given, on a frame within intended use).

The clip's figures are taken over its classifiable frames:

- the clip's result is its **most suspicious frame**: the highest probability of malignancy
  over them, and the frame it was found on (the earliest such frame when several tie); a clip's
  row in a batch review is that frame's row;
- the **median** probability over them: how the clip looks most of the time;
- the **share of frames suspicious**: of them, those the model called suspicious
  (``Prediction.suspicious``, the decision at the model card's cut-off).

When no frame is classifiable, the maximum and the median are taken over every frame
classified (so a clip still has a row) and there is no share.
:meth:`~rcdnet_desktop.core.clip.ClipSummary.text` is the summary in words, the one wording
the timeline, the batch table and the CSV show.

:func:`sample_frames` picks the frames to classify: every frame, or N evenly spaced ones.

:func:`classify_frames` runs the sweep: it decodes the clip's frames one at a time
(:meth:`~rcdnet_desktop.core.types.ImageRecord.frame`), prepares them and sends them through
the engine's ``predict_prepared`` a chunk at a time (prediction only, no heat maps), so no more
than one chunk of frames is held at once, and a sweep can stop between chunks. Each frame is
classified as the viewer classifies it: the whole frame, or the lesion box the localiser finds
on it (or the box given).

No Qt and no torch here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.clip import clip_summary, frames_text
from rcdnet_desktop.core.errors import RcdNetError
from rcdnet_desktop.core.result import OUTSIDE_INTENDED_USE, frame_number
from rcdnet_desktop.core.types import Box, ImageRecord, Prediction

if TYPE_CHECKING:
    from rcdnet_desktop.core.model.engine import InferenceEngine

DEFAULT_SWEEP_CHUNK = 8
"""Frames sent through the model together: a batch, and a point where a sweep can stop."""

ALL_FRAMES = "all"
"""``frames`` value of a sweep over every frame (``rcdnet classify --frames all``)."""


def sample_frames(frame_count: int, frames: int | str = ALL_FRAMES) -> list[int]:
    """The frames of a clip to classify: every frame (``"all"``), or ``frames`` evenly spaced.

    N evenly spaced frames are the middle frames of N equal parts of the clip, so they cover
    it from start to end without favouring either: 3 of 30 frames are 5, 15 and 25; 1 is the
    middle frame. A count of frames at least the clip's length is every frame.

    Raises
    ------
    ValueError
        ``frames`` is neither "all" nor a whole number of 1 or more.
    """
    count = max(int(frame_count), 1)
    if frames == ALL_FRAMES:
        return list(range(count))
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be 'all' or a number of frames of 1 or more, "
                         f"got {frames!r}")
    if frames >= count:
        return list(range(count))
    return [int((2 * i + 1) * count // (2 * frames)) for i in range(frames)]


@dataclass(frozen=True)
class FrameResult:
    """One frame of a sweep: its prediction, or why it could not be classified."""

    frame: int
    prediction: Prediction | None = None
    error: str = ""


def classify_frames(engine: InferenceEngine | Any, record: ImageRecord,
                    frames: Sequence[int] | None = None, *, roi: Box | None = None,
                    auto_box: bool = True, chunk: int = DEFAULT_SWEEP_CHUNK,
                    cancelled: Callable[[], bool] | None = None) -> Iterator[list[FrameResult]]:
    """Classify frames of ``record``, a chunk at a time; yields each chunk's results.

    Parameters
    ----------
    engine : InferenceEngine
        Anything with the engine's ``prepare`` and ``predict_prepared``.
    record : ImageRecord
        The clip; frames are decoded one at a time through ``record.frame(i)``.
    frames : sequence of int, optional
        The frames to classify, in order; every frame when omitted.
    roi : Box, optional
        A lesion box used on every frame; without one, the localiser's box (``auto_box``) or
        the whole frame.
    auto_box : bool
        Let the lesion localiser find each frame's box (as the viewer does).
    chunk : int
        Frames per forward pass.
    cancelled : callable, optional
        Asked before each chunk; True stops the sweep (what was yielded stays valid).

    Yields
    ------
    list of FrameResult
        The chunk's frames in order. A frame that cannot be decoded or classified has its
        reason in ``error``; the sweep goes on with the next.
    """
    todo = list(range(record.frame_count) if frames is None else frames)
    chunk = max(1, int(chunk))
    for start in range(0, len(todo), chunk):
        if cancelled is not None and cancelled():
            return
        part = todo[start:start + chunk]
        results: dict[int, FrameResult] = {}
        ready: list[tuple[int, Any]] = []
        for f in part:
            try:
                ready.append((f, engine.prepare(record, roi=roi, frame=f, auto_box=auto_box)))
            except Exception as exc:  # noqa: BLE001 - one bad frame must not end the sweep
                results[f] = FrameResult(f, error=_reason(exc, RcdNetError))
        if ready:
            try:
                preds = engine.predict_prepared([prep for _, prep in ready])
            except Exception as exc:  # noqa: BLE001 - reported per frame, as for a file
                reason = _reason(exc, RcdNetError)
                results.update((f, FrameResult(f, error=reason)) for f, _ in ready)
            else:
                results.update((f, FrameResult(f, p))
                               for (f, _), p in zip(ready, preds, strict=True))
        yield [results[f] for f in part]


def _reason(exc: BaseException, expected: type) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, expected) else f"unexpected {type(exc).__name__}: {text}"


# --- a clip in a batch review ----------------------------------------------------------------


def clip_item(engine: InferenceEngine | Any, record: ImageRecord, threshold: float,
              frames: int | str = ALL_FRAMES, *, roi: Box | None = None,
              auto_box: bool = True, chunk: int = DEFAULT_SWEEP_CHUNK,
              cancelled: Callable[[], bool] | None = None) -> BatchItem | None:
    """A clip in a batch review: its one item, decided by :func:`clip_summary`.

    The frames of :func:`sample_frames` (``frames``: "all" or a count) are classified; the
    item carries the prediction of the most suspicious classifiable one (so its probability,
    band, suspicious flag, box, checks, descriptors and ``frame`` are that frame's) and the
    summary in ``clip``; its warnings also say how many frames were outside intended use, had
    no lesion found, or could not be classified. When no frame
    could be classified it is a failed item with the first frame's reason. None when cancelled
    before the end.
    """
    path = record.path
    preds: list[Prediction] = []
    failed: list[FrameResult] = []
    for results in classify_frames(engine, record, sample_frames(record.frame_count, frames),
                                   roi=roi, auto_box=auto_box, chunk=chunk,
                                   cancelled=cancelled):
        for r in results:
            if r.prediction is not None:
                preds.append(r.prediction)
            else:
                failed.append(r)
    if cancelled is not None and cancelled():
        return None
    if not preds:
        first = failed[0] if failed else FrameResult(0, error="no frame")
        return BatchItem(path, error=f"{path}: no frame of the clip could be classified "
                                     f"(frame {frame_number(first.frame)}: {first.error})")
    summary = clip_summary(preds, threshold, failed=[r.frame for r in failed])
    worst = next(p for p in preds if p.frame == summary.max_frame)
    notes = []
    if summary.flagged_frames:
        notes.append(f"{len(summary.flagged_frames)} of {frames_text(summary.frames)} "
                     f"{OUTSIDE_INTENDED_USE.lower()} (frames "
                     f"{_frame_list(summary.flagged_frames)})")
    if summary.no_lesion_frames:
        notes.append(f"{len(summary.no_lesion_frames)} of {frames_text(summary.frames)}: no "
                     f"lesion found (frames {_frame_list(summary.no_lesion_frames)})")
    if failed:
        notes.append(f"{frames_text(len(failed))} could not be classified (frames "
                     f"{_frame_list([r.frame for r in failed])}; frame "
                     f"{frame_number(failed[0].frame)}: "
                     f"{failed[0].error})")
    # The row is that frame's result: its own checks and descriptors; the other frames'
    # flags are counted in the summary and named in the warnings.
    return BatchItem(path, replace(worst, warnings=(*notes, *worst.warnings)), clip=summary)


def _frame_list(frames: Sequence[int], most: int = 10) -> str:
    """Frames counted from 1, as everywhere: "3, 4, 9 and 2 more" for frames 2, 3, 8, ..."""
    shown = ", ".join(str(frame_number(f)) for f in frames[:most])
    return shown + (f" and {len(frames) - most} more" if len(frames) > most else "")
