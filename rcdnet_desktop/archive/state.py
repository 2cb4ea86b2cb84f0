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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rcdnet_desktop.core.atomic import atomic_write, check_folder
from rcdnet_desktop.core.errors import RcdNetError
from rcdnet_desktop.core.export.batch_csv import CSV_FIELDS, write_batch_csv

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

    def results(self, model_version: str) -> list[dict[str, str]]:
        """One row per image of this model version: the last of its key, a row needing no
        second try before one that does."""
        best: dict[str, dict[str, str]] = {}
        latest: dict[str, str] = {}  # series UID -> the last run that fetched from it
        for row in self.rows():
            if row["model_version"] != model_version:
                continue
            if row["series_uid"]:
                latest[row["series_uid"]] = max(latest.get(row["series_uid"], ""), row["run"])
            old = best.get(row["key"])
            if old is None or old["transient"] == "yes" or row["transient"] != "yes":
                best[row["key"]] = row
        # A series that could not be fetched whole stays listed until a later run fetches it.
        return [r for r in best.values() if not r["key"].startswith("series:")
                or r["run"] == latest.get(r["series_uid"])]

    def write_tables(self, rows: list[dict[str, str]], summaries: Mapping[str, tuple[
            Sequence[str], Iterable[Mapping[str, str]]]]) -> list[Path]:
        """``results.csv`` (classify's columns) and each summary ``name: (columns, rows)``."""
        try:
            written = [write_batch_csv(self.folder / RESULTS_CSV, rows, overwrite=True)]
            for name, (columns, table) in summaries.items():
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
