"""Folder review: a generator of one :class:`BatchItem` per file.

Files are decoded and preprocessed on a background thread while the model runs on the previous
chunk, so the model is rarely left waiting for the disk. A file that fails yields an item with
the reason; the run goes on. Cancelling (``cancel.set()``) stops before the next file; every
item already yielded stays valid.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from rcdnet_desktop.core.errors import RcdNetError
from rcdnet_desktop.core.io import find_images, pick_frame, read_image
from rcdnet_desktop.core.types import BatchItem, Box, ImageRecord

if TYPE_CHECKING:
    from rcdnet_desktop.core.inference import InferenceEngine, Prepared

DEFAULT_CHUNK = 8
"""Files sent through the model together: large enough to batch, small enough to cancel soon."""


def _roi_for(path: Path, rois: Mapping[Path, Box] | None) -> Box | None:
    if not rois:
        return None
    return rois.get(path) or rois.get(path.resolve())


def _load(engine: InferenceEngine, path: Path, roi: Box | None, frame: int,
          auto_box: bool = True) -> tuple[ImageRecord, Prepared] | str:
    """Read and prepare one file on the loader thread: record and input, or why it failed.

    With ``auto_box`` and no ``roi``, the engine's lesion localiser (if any) runs here too.
    """
    try:
        record = read_image(path)
        return record, engine.prepare(record, roi=roi, frame=pick_frame(record, frame),
                                      auto_box=auto_box)
    except RcdNetError as exc:
        message = str(exc)
    except Exception as exc:  # a batch must outlive any one file, whatever it holds
        message = f"unexpected {type(exc).__name__}: {exc}"
    return message if str(path) in message else f"{path}: {message}"


def review(paths: Iterable[str | Path], engine: InferenceEngine, *, recursive: bool = False,
           rois: Mapping[Path, Box] | None = None, explain: bool = False, method: str = "fast",
           frame: int = 0, cancel: threading.Event | None = None,
           chunk: int = DEFAULT_CHUNK, auto_box: bool = True) -> Iterator[BatchItem]:
    """Classify every image under ``paths``, yielding one item per file in sorted order.

    Parameters
    ----------
    paths : iterable of str or Path
        Files and folders; folders are expanded with :func:`~rcdnet_desktop.core.io.find_images`.
    engine : InferenceEngine
        The engine to use. Only this generator's thread calls its model.
    recursive : bool
        Descend into sub-folders.
    rois : mapping of Path to Box, optional
        Lesion boxes by file (as given or resolved); files with a box are classified on it,
        whatever the localiser would find.
    explain : bool
        Also compute both heat maps (``method``) for every file.
    frame : int
        Frame of multi-frame files to classify; single-frame files use their only frame, and
        a clip without that frame fails with its frame count.
    cancel : threading.Event, optional
        Set it to stop before the next file.
    chunk : int
        Files per forward pass.
    auto_box : bool
        For files without a box in ``rois``, let the engine's lesion localiser (when it has
        one) find the box; False classifies them on the whole image.

    Yields
    ------
    BatchItem
        With a prediction (and heat maps when asked), or with ``error`` naming the file and
        the reason.
    """
    files = find_images(paths, recursive=recursive)
    cancelled = cancel.is_set if cancel is not None else (lambda: False)
    chunk = max(1, chunk)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rcdnet-batch-load") as pool:
        pending: deque[tuple[Path, Future]] = deque()
        todo = iter(files)

        def top_up() -> None:
            # Keep two chunks in flight: one being decoded while the model runs the other.
            while len(pending) < 2 * chunk:
                path = next(todo, None)
                if path is None:
                    return
                pending.append((path, pool.submit(_load, engine, path, _roi_for(path, rois),
                                                  frame, auto_box)))

        try:
            top_up()
            while pending and not cancelled():
                batch = [pending.popleft() for _ in range(min(chunk, len(pending)))]
                top_up()
                loaded = [(path, fut.result()) for path, fut in batch]
                yield from _run_chunk(engine, loaded, explain, method, cancelled)
        finally:
            for _, fut in pending:
                fut.cancel()


def _run_chunk(engine: InferenceEngine,
               loaded: list[tuple[Path, tuple[ImageRecord, Prepared] | str]],
               explain: bool, method: str, cancelled) -> Iterator[BatchItem]:
    ok = [(p, *r) for p, r in loaded if not isinstance(r, str)]
    prepared = [prep for _, _, prep in ok]
    results: dict[Path, BatchItem] = {}
    try:
        if explain:
            maps = engine.explain_prepared(prepared, method=method)
            results = {p: BatchItem(p, m.prediction, m, record=rec)
                       for (p, rec, _), m in zip(ok, maps, strict=True)}
        else:
            # Records are dropped: a long review keeps only its small predictions.
            preds = engine.predict_prepared(prepared)
            results = {p: BatchItem(p, pr) for (p, _, _), pr in zip(ok, preds, strict=True)}
    except RcdNetError as exc:
        results = {p: BatchItem(p, error=f"{p}: {exc}") for p, _, _ in ok}
    for path, res in loaded:
        if cancelled():
            return
        yield results.get(path) or BatchItem(path, error=str(res))
