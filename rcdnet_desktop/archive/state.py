"""The output folder of ``rcdnet archive``: the run's state, in whole Parquet shards.

Layout::

    OUT/shards/part-<run>-<n>.parquet   the rows, a shard at a time (never a partial one)
    OUT/results.csv                     one row per image: the columns of ``rcdnet classify``
    OUT/studies.csv, OUT/patients.csv   the summaries (:mod:`.summary`)

Each shard is written by :func:`~rcdnet_desktop.core.atomic.atomic_write` (a temporary file,
fsync, then its name), so a run killed at any moment leaves only whole shards; a temporary
file it leaves starts with a dot and is never read. The rows in the shards are the state: a
rerun with the same folder skips every image whose key (:mod:`.keys`) has a row for the same
model version, unless that row is a failure that may pass on a second try (``transient``: the
PACS did not send the instance, a worker was lost). The CSV and the summaries are made again
from the shards at the end of every run, one row per image (the last row of each key, a
result before a failure that may pass), so an image reviewed twice is never listed twice.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rcdnet_desktop.core.atomic import atomic_write, check_folder
from rcdnet_desktop.core.errors import RcdNetError
from rcdnet_desktop.core.export.batch_csv import CSV_FIELDS, open_batch_csv

SHARDS = "shards"
RESULTS_CSV = "results.csv"

ARCHIVE_FIELDS = ("key", "model_version", "source", "patient_id", "study_uid", "series_uid",
                  "sop_uid", "study_date", "file_size", "file_mtime_ns", "transient", "sr",
                  "run")
"""Columns of the shards beyond :data:`~rcdnet_desktop.core.export.batch_csv.CSV_FIELDS`:
``key`` (:mod:`.keys`) and ``model_version`` say what is done; ``source`` is ``folder`` or
``dicomweb``; the patient, study, series and instance come from the DICOM header (empty for
other files); ``file_size`` and ``file_mtime_ns`` let a rerun skip a file it has seen without
reading it; ``transient`` is ``yes`` for a failure worth another try; ``sr`` says whether the
result's SR was sent back (``--send-sr``); ``run`` names the run that wrote the row."""

FIELDS = (*CSV_FIELDS, *ARCHIVE_FIELDS)
"""Every column of a shard, all text."""


class ArchiveError(RcdNetError):
    """The output folder cannot be used; the message says which file and why."""


def blank_row(**values: str) -> dict[str, str]:
    """A row of :data:`FIELDS`, empty but for ``values``."""
    row = dict.fromkeys(FIELDS, "")
    row.update(values)
    return row


DONE_FIELDS = ("key", "model_version", "source", "file", "file_size", "file_mtime_ns",
               "series_uid", "transient")
"""The columns :meth:`OutputFolder.done` reads (not the whole rows: an archive's state may
hold millions)."""


@dataclass
class Done:
    """What earlier runs finished for one model version."""

    keys: set[str] = field(default_factory=set)
    """Keys with a row that needs no second try."""
    seen: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """File path -> (size, mtime in ns, key) of each file done: a file unchanged since is
    skipped without being read."""
    series: dict[str, list[str]] = field(default_factory=dict)
    """Series UID -> keys of the instances done in it (a series whose every instance is done
    is not fetched again)."""

    def add(self, row: Mapping[str, str]) -> None:
        if row.get("transient") == "yes":
            return
        self.keys.add(row["key"])
        if row.get("source") == "folder" and row.get("file_size"):
            self.seen[row["file"]] = (row["file_size"], row["file_mtime_ns"], row["key"])
        if row.get("series_uid") and row.get("source") == "dicomweb":
            self.series.setdefault(row["series_uid"], []).append(row["key"])


class OutputFolder:
    """The output folder (created when missing, checked writable at once).

    Raises
    ------
    ArchiveError
        It cannot be created or written.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.shards = self.folder / SHARDS
        try:
            check_folder(self.folder)
            check_folder(self.shards)
        except RcdNetError as exc:
            raise ArchiveError(f"--out: {exc}") from exc
        self.run = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        self._written = 0

    def shard_paths(self) -> list[Path]:
        """The whole shards, oldest run first (temporary files start with a dot: skipped)."""
        return sorted(self.shards.glob("part-*.parquet"))

    def rows(self, columns: Sequence[str] = FIELDS) -> Iterator[dict[str, str]]:
        """Every row of every shard (only ``columns``), in the order written.

        Raises
        ------
        ArchiveError
            A shard cannot be read (it was damaged after it was written).
        """
        import pyarrow.parquet as pq

        for path in self.shard_paths():
            try:
                table = pq.read_table(path, columns=list(columns))
            except Exception as exc:  # pyarrow raises its own types for damaged files
                raise ArchiveError(f"{path}: this shard of an earlier run cannot be read "
                                   f"({exc}); move it away to review its images again") from exc
            for row in table.to_pylist():
                yield {k: str(row.get(k) or "") for k in columns}

    def done(self, model_version: str) -> Done:
        """What earlier runs finished with this model version."""
        done = Done()
        for row in self.rows(DONE_FIELDS):
            if row["model_version"] == model_version:
                done.add(row)
        return done

    def write_shard(self, rows: Sequence[Mapping[str, str]]) -> Path:
        """Write ``rows`` as one new shard, atomically; its path."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: pa.array([str(r.get(k, "")) for r in rows], pa.string())
                          for k in FIELDS})
        self._written += 1
        path = self.shards / f"part-{self.run}-{self._written:06d}.parquet"
        try:
            return atomic_write(path, lambda fh: pq.write_table(table, fh), overwrite=False)
        except RcdNetError as exc:
            raise ArchiveError(str(exc)) from exc

    def _table(self, model_version: str):
        """Every shard's rows of this model version as one Arrow table (text columns)."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        tables = []
        for path in self.shard_paths():
            try:
                tables.append(pq.read_table(path, columns=list(FIELDS)))
            except Exception as exc:  # pyarrow raises its own types for damaged files
                raise ArchiveError(f"{path}: this shard of an earlier run cannot be read "
                                   f"({exc}); move it away to review its images again") from exc
        if not tables:
            return pa.table({k: pa.array([], pa.string()) for k in FIELDS})
        table = pa.concat_tables(tables)
        return table.filter(pc.equal(table["model_version"], model_version))

    def results(self, model_version: str) -> Iterator[dict[str, str]]:
        """One row per image of this model version, in the order first written: the last row
        of its key, a row needing no second try before one that does.

        Kept in Arrow columns until each row is given, so an archive of millions of rows
        never becomes millions of Python dictionaries at once.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        table = self._table(model_version)
        n = len(table)
        if not n:
            return
        order = pa.array(range(n), pa.int64())
        final = pc.cast(pc.not_equal(table["transient"], "yes"), pa.int64())
        table = table.append_column("_score", pc.add(pc.multiply(final, n), order))
        best = table.select(["key", "_score"]).group_by("key").aggregate([("_score", "max")])
        rows = pc.remainder(best["_score_max"], n)  # the row kept of each key
        picked = table.take(pc.take(rows, pc.sort_indices(rows)))  # in the order written
        # A series that could not be fetched whole stays listed until a later run fetches it.
        runs = table.select(["series_uid", "run"]).group_by("series_uid").aggregate(
            [("run", "max")]).to_pydict()
        latest = dict(zip(runs["series_uid"], runs["run_max"], strict=True))
        for start in range(0, len(picked), 10_000):
            for row in picked.slice(start, 10_000).select(list(FIELDS)).to_pylist():
                row = {k: v or "" for k, v in row.items()}
                if row["key"].startswith("series:") and row["run"] != latest.get(
                        row["series_uid"]):
                    continue
                yield row

    def write_tables(self, rows: Iterable[Mapping[str, str]],
                     summaries: Callable[[], Mapping[str, tuple[Sequence[str],
                                                                Iterable[Mapping[str, str]]]]],
                     ) -> list[Path]:
        """``results.csv`` (classify's columns, written row by row as ``rows`` come), then
        each summary ``name: (columns, rows)`` that ``summaries()`` gives once they are
        all written."""
        try:
            with open_batch_csv(self.folder / RESULTS_CSV, overwrite=True) as results:
                for row in rows:
                    results.write(row)
            written = [self.folder / RESULTS_CSV]
            for name, (columns, table) in summaries().items():
                text = _csv_text(columns, table)
                written.append(atomic_write(self.folder / name,
                                            lambda fh, t=text: fh.write(t.encode("utf-8")),
                                            overwrite=True))
        except RcdNetError as exc:
            raise ArchiveError(str(exc)) from exc
        return written


def _csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


__all__: Sequence[str] = ("ARCHIVE_FIELDS", "DONE_FIELDS", "FIELDS", "ArchiveError", "Done",
                          "OutputFolder", "blank_row")
