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
again a reading task whose process died, each at most :data:`RETRIES` times: a file that
crashes its decoder's process every time (or a batch that crashes its model worker) cannot
hold the run up. Once the tries are spent, that task's items are left out of the stream and
come back as failed rows saying why (:func:`lost_rows`, marked for another try in the next
run), so nothing is lost silently. Rows reach the shards only once the model stage has
returned them, so nothing is half done. When the run itself stops (Ctrl+C, a signal, an
error), the rows received are written as a last shard; a run killed outright loses only the
rows received since the last shard, and the next run does them again.

**Sharing the cores.** A model worker reserves a whole CPU (one per core: its ONNX Runtime
sessions and OpenCV run one thread each, and ONNX Runtime's threads do not spin); reading
tasks reserve none, being mostly waits on the disk or the PACS and a few milliseconds of
decoding against the model's tenth of a second, and at most :func:`reading_tasks` of them run
at once (each is a process Ray starts, which costs a core about a second). Each reading task
reads one model batch's worth of items, and sends the decoded image to the model worker
through the object store (on one machine: shared memory, no copy over a network).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rcdnet_desktop.archive.progress import Progress
from rcdnet_desktop.archive.stages import EXTRA
from rcdnet_desktop.archive.state import Done, OutputFolder
from rcdnet_desktop.core.model.card import CARD_FILE, default_model_dir, load_card

MODEL_CPUS = 1.0
"""CPU a model worker reserves: a whole core (its ONNX Runtime sessions use one thread each)."""

READS_PER_WORKER = {"folder": 0.25, "dicomweb": 2}
"""Reading tasks run at once per model worker (at least one in all): a file is read and
decoded in a twentieth of the model's time, so one reading task keeps four model workers fed
with room to spare (each task is a process, whose start costs a core about a second); a
series from a PACS mostly waits on the network."""

RETRIES = 3
"""Times Ray runs again a reading task whose process died, or a model batch whose worker died,
before its items are reported as failed (:func:`lost_rows`)."""

LOST = (f"not reviewed: the process reading or classifying it died each of the {RETRIES + 1} "
        "times it was tried, or raised an error (Ray's logs say which); it is tried again in "
        "the next run")
"""The error of an item Ray Data left out (:func:`lost_rows`)."""

BLOCKS_MAX = 10_000
"""Most reading tasks a run is split into (items per task: a model batch's worth, or more for
an archive so large that Ray's bookkeeping of the tasks would weigh on this machine)."""

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
    # A run of a few batches starts no more model workers than it has batches.
    settings = replace(settings, workers=min(_blocks(items, settings), _pool_size(settings)))
    return model_stage(read_stage(items, source, done, settings, node, left_out), model,
                       settings)


def _blocks(items: list[dict], settings: Settings) -> int:
    """How many reading tasks the items are split into: a model batch's worth each, at most
    :data:`BLOCKS_MAX` of them."""
    per_block = max(settings.batch_size, -(-len(items) // BLOCKS_MAX))
    return max(1, -(-len(items) // per_block))


def read_stage(items: list[dict], source: str, done: Done, settings: Settings, node=None,
               left_out: frozenset[str] = frozenset()):
    """The dataset of rows read (lazy): :func:`~.stages.read_file` or
    :func:`~.stages.fetch_series` over ``items``, a model batch's worth per task."""
    import ray
    from ray.data import TaskPoolStrategy

    from rcdnet_desktop.archive.stages import fetch_series, read_file

    keys = frozenset(done.keys - left_out)
    blocks = _blocks(items, settings)
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    read = (read_file, {"done": keys}) if source == "folder" else \
        (fetch_series, {"node": node, "done": keys})
    tasks = min(blocks, reading_tasks(source, settings))
    with _remote_args():
        return ds.flat_map(read[0], fn_kwargs=read[1], num_cpus=0, max_retries=RETRIES,
                           compute=TaskPoolStrategy(size=tasks))


@contextlib.contextmanager
def _remote_args() -> Iterator[None]:
    """Ray's own options of a stage's tasks or actors (the retries) passed as Ray Data's
    ``ray_remote_args``, the one way this Ray has to bound them, without its warning that the
    way is to change."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated",
                                DeprecationWarning)
        yield


def reading_tasks(source: str, settings: Settings) -> int:
    """How many reading tasks run at once (:data:`READS_PER_WORKER` per model worker)."""
    return max(1, math.ceil(READS_PER_WORKER[source] * _pool_size(settings)))


def model_stage(ds, model: Model, settings: Settings):
    """The dataset of result rows (lazy): the rows read by ``ds`` classified by a pool of
    :class:`~.stages.ReviewWorker` actors, each reserving a CPU (or a GPU with
    ``device="cuda"``: ONNX Runtime's CUDA provider there)."""
    import ray
    from ray.data import ActorPoolStrategy

    from rcdnet_desktop.archive.stages import ReviewWorker, bundle_files

    gpu = settings.device == "cuda"
    worker_settings = {
        "card_sha256": model.card_sha256, "model_version": model.version,
        "model_id": model.id, "device": settings.device, "frame": settings.frame,
        "auto_box": settings.auto_box, "sweep": settings.sweep,
        "threads": None if gpu else 1, "send_node": settings.send_node}
    resources = {"num_gpus": 1} if gpu else {"num_cpus": MODEL_CPUS}
    with _remote_args():
        return ds.map_batches(
            ReviewWorker, batch_size=settings.batch_size, batch_format="numpy",
            fn_constructor_kwargs={"bundle": [ray.put(bundle_files(model.folder))],
                                   "settings": worker_settings},
            compute=ActorPoolStrategy(size=_pool_size(settings)),
            max_restarts=-1, max_task_retries=RETRIES, **resources)


def lost_rows(items: list[dict], source: str, node, rows_seen: set[str]) -> list[dict]:
    """Failed rows for the items no row came back for: their reading task or model batch
    failed on every try (its process died, or it raised), so Ray Data left them out.

    ``rows_seen`` holds, for each row received, its ``file`` (a folder's item) or its
    ``series_uid`` (a PACS series). The rows are marked for another try in the next run."""
    from rcdnet_desktop.archive.stages import item_failed

    ident = "path" if source == "folder" else "series_uid"
    return [item_failed(item, source, node, LOST) for item in items
            if item[ident] not in rows_seen]


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
    ident = "file" if source == "folder" else "series_uid"
    seen: set[str] = set()
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

    def take(row: dict) -> None:
        seen.add(row[ident])
        if row["already"] == "yes":
            progress.done_before()
            return
        if row["key"] in written:
            progress.copies += 1
            return
        written.add(row["key"])
        row = {k: v for k, v in row.items() if k not in EXTRA}
        row["model_version"], row["run"] = model.id, out.run
        pending.append(row)
        progress.row(row)
        if len(pending) >= settings.shard_rows or time.monotonic() - last > SHARD_SECONDS:
            flush()

    try:
        with errors_left_out():
            for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                for row in batch.to_pylist():
                    take(row)
        for row in lost_rows(items, source, node, seen):
            take(row)
    finally:
        flush()


@contextlib.contextmanager
def errors_left_out() -> Iterator[None]:
    """Ray Data goes on past a task that failed on every try (:data:`RETRIES`), leaving its
    items out (:func:`lost_rows` reports them), instead of stopping the whole run."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved, ctx.max_errored_blocks = ctx.max_errored_blocks, -1
    try:
        yield
    finally:
        ctx.max_errored_blocks = saved


__all__: Sequence[str] = ("Model", "Settings", "build", "current_model", "lost_rows",
                          "model_stage", "read_stage", "run")
