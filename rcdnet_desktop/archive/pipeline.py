"""The Ray Data pipeline of an archive run, driven from the machine that runs the command.

::

    items (files or series) --read/fetch + decode: Ray tasks--> rows with the image read
        --classify: a pool of ReviewWorker actors (one per core, or per GPU)--> result rows
        --this machine: new rows only, whole Parquet shards (OutputFolder.write_shard)

The result rows come back here (they are small: text) and are written a shard at a time,
so the progress, the order of writing and what counts as done have one owner. A key written
once in a run is not written again (a copy of a file already reviewed, or a block Ray ran a
second time after losing its worker); rows an earlier run did come back only as ``already``.

**Workers lost.** Ray restarts a model worker that dies and runs its batch again, and runs
again a reading task whose process died (Ray Data's defaults: without limit, so a file that
crashed its decoder's process every time would hold the run up; the readers' size and time
budgets are what keep decoders from crashing). Rows reach the shards only once
the model stage has returned them, so nothing is half done. When the run itself stops (Ctrl+C,
a signal, an error), the rows received are written as a last shard; a run killed outright
loses only the rows received since the last shard, and the next run does them again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rcdnet_desktop.archive.progress import Progress
from rcdnet_desktop.archive.state import Done, OutputFolder

READ_CPUS = 0.25
"""CPU a reading task reserves: reading mostly waits on the disk or the PACS."""

MODEL_CPUS = 0.75
"""CPU a model worker reserves. Less than a whole core so that, with one model worker per
core, reading tasks still have room beside them; the worker's ONNX Runtime sessions use one
thread each, so it never takes more than its core."""

SHARD_SECONDS = 60.0
"""A shard is written at least this often while rows come, whatever their number."""


@dataclass(frozen=True)
class Model:
    """The model the run uses, as read on this machine: its folder, its card's version and
    sha256, and ``id``, what the shards record (``version@sha256[:12]``: a bundle rebuilt
    under the same version is another model)."""

    folder: Path
    version: str
    card_sha256: str

    @property
    def id(self) -> str:
        return f"{self.version}@{self.card_sha256[:12]}"


def current_model(model_dir: Path | None = None) -> Model:
    """The bundle this machine would classify with (its card read and checked, no graph
    opened).

    Raises
    ------
    rcdnet_desktop.core.errors.WeightsError
        The card is missing or not valid.
    """
    from rcdnet_desktop.core.card import CARD_FILE, default_model_dir, load_card

    folder = Path(model_dir) if model_dir is not None else default_model_dir()
    card = load_card(folder)
    sha = hashlib.sha256((folder / CARD_FILE).read_bytes()).hexdigest()
    return Model(folder, card.version, sha)


@dataclass(frozen=True)
class Settings:
    """How the images are reviewed (``rcdnet classify``'s options) and by how many workers."""

    device: str = "cpu"
    frame: int = 0
    auto_box: bool = True
    sweep: int | str | None = None
    workers: int | None = None
    """Model workers (None: one per CPU, or per GPU with ``device="cuda"``, of the cluster)."""
    batch_size: int = 8
    shard_rows: int = 500
    send_node: object | None = None


def _pool_size(settings: Settings) -> int:
    import ray

    if settings.workers:
        return settings.workers
    resources = ray.cluster_resources()
    if settings.device == "cuda":
        return max(1, int(resources.get("GPU", 0)))
    return max(1, int(resources.get("CPU", 1) // 1))


def build(items: list[dict], source: str, model: Model, done: Done, settings: Settings,
          node=None, left_out: frozenset[str] = frozenset()):
    """The dataset of result rows (lazy: nothing runs until it is iterated). ``left_out`` are
    the keys the listing already left out: the reading tasks need only the other keys done."""
    import ray
    from ray.data import ActorPoolStrategy

    from rcdnet_desktop.archive.stages import ReviewWorker, bundle_files, fetch_series, read_file

    keys = frozenset(done.keys - left_out)
    blocks = max(1, min(len(items), 1000, len(items) // 2 or 1))
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    read = (read_file, {"done": keys}) if source == "folder" else \
        (fetch_series, {"node": node, "done": keys})
    ds = ds.flat_map(read[0], fn_kwargs=read[1], num_cpus=READ_CPUS)
    gpu = settings.device == "cuda"
    worker_settings = {
        "card_sha256": model.card_sha256, "model_version": model.version,
        "model_id": model.id, "device": settings.device, "frame": settings.frame,
        "auto_box": settings.auto_box, "sweep": settings.sweep,
        "threads": None if gpu else 1, "send_node": settings.send_node}
    resources = {"num_gpus": 1} if gpu else {"num_cpus": MODEL_CPUS}
    return ds.map_batches(
        ReviewWorker, batch_size=settings.batch_size, batch_format="numpy",
        fn_constructor_kwargs={"bundle": [ray.put(bundle_files(model.folder))],
                               "settings": worker_settings},
        compute=ActorPoolStrategy(size=min(blocks, _pool_size(settings))), **resources)



def run(items: list[dict], source: str, out: OutputFolder, model: Model, done: Done,
        settings: Settings, progress: Progress, *, node=None,
        left_out: frozenset[str] | set[str] = frozenset(),
        after_shard: Callable[[int], object] | None = None) -> None:
    """Run the pipeline over ``items``, writing the new rows to ``out`` as shards
    (``left_out``: see :func:`build`).

    ``after_shard`` is called with the number of rows written so far after each shard (the
    tests use it to kill a worker in the middle of a run).
    """
    if not items:
        return
    dataset = build(items, source, model, done, settings, node, frozenset(left_out))
    written: set[str] = set()
    pending: list[dict[str, str]] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal pending, last
        if pending:
            out.write_shard(pending)
            pending, last = [], time.monotonic()
            if after_shard is not None:
                after_shard(progress.rows)

    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                if row["already"] == "yes":
                    progress.done_before()
                    continue
                if row["key"] in written:
                    progress.copies += 1
                    continue
                written.add(row["key"])
                row = {k: v for k, v in row.items() if k != "already"}
                row["model_version"], row["run"] = model.id, out.run
                pending.append(row)
                progress.row(row)
                if len(pending) >= settings.shard_rows or \
                        time.monotonic() - last > SHARD_SECONDS:
                    flush()
    finally:
        flush()


__all__: Sequence[str] = ("Model", "Settings", "build", "current_model", "run")
