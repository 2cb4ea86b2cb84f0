"""The batch-review table as rows and CSV: one format for ``rcdnet classify`` and the viewer.

No Qt here. :func:`batch_row` turns a :class:`~rcdnet_desktop.core.batch_item.BatchItem` into one
row of :data:`CSV_FIELDS` (strings; the CLI's JSON output is the same rows), :func:`csv_text`
formats rows as CSV, :func:`write_batch_csv` writes them atomically
(:func:`~rcdnet_desktop.core.atomic.atomic_write`) and :func:`open_batch_csv` writes
them one by one as a run produces them
(:func:`~rcdnet_desktop.core.atomic.streaming_write`).

The file is UTF-8, lines end with "\\n", and fields are quoted when they need it (a comma, a
quote, a line feed or a carriage return: a row holding a carriage return is quoted whole, since
Python's ``csv`` quotes only the line terminator's characters). File names that are not valid
UTF-8 (bytes a Linux file system allows, which Python keeps as surrogate escapes) are written
as their original bytes (:data:`ERRORS`), so every name survives as it is on disk.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from rcdnet_desktop.core import lexicon
from rcdnet_desktop.core.atomic import StreamedFile, atomic_write, streaming_write
from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.numbers import fixed
from rcdnet_desktop.core.result import decimals_for, decision_code, frame_number, probability_text

ENCODING, ERRORS = "utf-8", "surrogateescape"
"""How the CSV text becomes bytes: a name's undecodable bytes are written back as they were."""

CSV_FIELDS = ("file", "decision", "p_malignant", "p_benign", "device", "status", "error",
              "warnings", "checks", "box_source", "box_x", "box_y", "box_w", "box_h", "band",
              "suspicious", "frame", "descriptors", "clip_frames", "clip_median",
              "clip_suspicious_share", "clip_classifiable", "clip_no_lesion", "clip_outside",
              "clip_summary", "site")
"""Columns of a batch review (the README's "CSV columns" lists them too). ``decision`` is the
decision at the model card's suspicious cut-off, the one every view shows
(:func:`rcdnet_desktop.core.result.decision_code`): ``suspicious`` or ``below_cutoff``, prefixed
``UNTRAINED `` when the weights are; ``p_malignant`` and ``p_benign`` are calibrated, with at
least four decimals and more where fewer would put ``p_malignant`` on the other side of the
cut-off or of a band limit; ``status`` is ok, failed or skipped (not a regular file, not
opened; a result this program exported, or a structured report, read but not classified), with
the reason in ``error``; ``warnings`` are joined by "; ". ``checks`` are the
intended-use flags' codes joined by ";" (empty when all is well; the fixed list is
:data:`rcdnet_desktop.core.checks.CHECK_CODES`). ``box_source`` is user (drawn or given in an ROI
file), auto (found by the lesion localiser) or none (whole image); ``box_*`` is that box as given
or found, unpadded, in image pixels (empty when none); ``band`` is the likelihood band's name
(see :mod:`rcdnet_desktop.core.bands`); ``suspicious`` is yes when p_malignant reaches the model
card's suspicious threshold (the same fact as ``decision``, kept for scripts that read it);
``frame`` is the frame classified, counted from 1 as everywhere else in the program (1 for
single-frame images; :data:`rcdnet_desktop.core.result.FRAME_CONVENTION`). ``descriptors``
are the BI-RADS lexicon descriptors the model suggests for the lesion box, as ``name=value``
joined by ";" (:mod:`rcdnet_desktop.core.lexicon`; empty without a box). ``site`` is the name
of the site profile the result was decided under (:mod:`rcdnet_desktop.core.site_profile`: its
cut-off, temperature and guard limit instead of the model card's), empty under the model card's
own operating point.

A cine clip swept frame by frame (``rcdnet classify --frames all|N``, the viewer's batch review
with "every frame" or "N frames") is still one row, decided by
:func:`~rcdnet_desktop.core.cine.clip_summary`: the row of its most suspicious frame, so
``frame``, ``decision``, ``p_malignant`` (the clip's maximum), ``band``, ``suspicious``, the
box, ``descriptors`` and ``checks`` are that frame's; ``clip_frames`` (frames classified),
``clip_classifiable`` (those within intended use with a lesion found), ``clip_no_lesion`` and
``clip_outside`` (frames with no lesion found, frames outside intended use), ``clip_median``
(median p_malignant over the classifiable frames), ``clip_suspicious_share`` (share of them
suspicious, 0 to 1; empty when none is classifiable) and ``clip_summary`` (the summary in words,
as the viewer shows it) give the rest. These are empty for rows that are not a swept clip."""


def batch_row(item: BatchItem, site: str = "") -> dict[str, str]:
    """One row (every field of :data:`CSV_FIELDS`, as text) for a batch item decided under the
    site profile named ``site`` ("" for the model card's operating point)."""
    p = item.prediction
    box = p.box if p else None
    x, y, w, h = (str(v) for v in box.as_tuple()) if box else ("",) * 4
    return {
        "file": str(item.path),
        "decision": _decision(p) if p else "",
        "p_malignant": probability_text(p, least=4) if p else "",
        "p_benign": fixed(p.p_benign, decimals_for(p, least=4)) if p else "",
        "device": p.device if p else "",
        "status": item.status,
        "error": item.error,
        "warnings": "; ".join(p.warnings) if p else "",
        "checks": ";".join(p.checks) if p else "",
        "box_source": p.box_source if p else "",
        "box_x": x,
        "box_y": y,
        "box_w": w,
        "box_h": h,
        "band": p.band.name if p and p.band else "",
        "suspicious": ("yes" if p.suspicious else "no") if p else "",
        "frame": str(frame_number(p.frame)) if p else "",
        "descriptors": lexicon.csv_text(p.descriptors) if p else "",
        **_clip_fields(item),
        "site": site,
    }


def _decision(p) -> str:
    return f"UNTRAINED {decision_code(p)}" if p.untrained else decision_code(p)


def _clip_fields(item: BatchItem) -> dict[str, str]:
    c = item.clip
    if c is None:
        return dict.fromkeys((k for k in CSV_FIELDS if k.startswith("clip_")), "")
    share = c.suspicious_share
    return {
        "clip_frames": str(c.frames),
        "clip_median": f"{c.median_p:.4f}",
        "clip_suspicious_share": f"{share:.4f}" if share is not None else "",
        "clip_classifiable": str(c.classifiable),
        "clip_no_lesion": str(len(c.no_lesion_frames)),
        "clip_outside": str(len(c.flagged_frames)),
        "clip_summary": c.text(),
    }


def csv_line(row: Mapping[str, object]) -> str:
    """One row as a CSV line ending with "\\n"; :func:`csv_header` is the first line."""
    values = [str(row.get(k, "")) for k in CSV_FIELDS]
    buf = io.StringIO()
    quoting = csv.QUOTE_ALL if any("\r" in v for v in values) else csv.QUOTE_MINIMAL
    csv.writer(buf, lineterminator="\n", quoting=quoting).writerow(values)
    return buf.getvalue()


def csv_header() -> str:
    """The header line."""
    return ",".join(CSV_FIELDS) + "\n"


def csv_text(rows: Iterable[Mapping[str, str]]) -> str:
    """The rows as CSV text, header first (lines end with "\\n")."""
    return csv_header() + "".join(csv_line(r) for r in rows)


def write_batch_csv(path: str | Path, rows: Iterable[Mapping[str, str]], *,
                    overwrite: bool = False) -> Path:
    """Write the rows as a UTF-8 CSV file, atomically; returns the path.

    Raises
    ------
    rcdnet_desktop.core.errors.ExportExistsError
        The file exists and ``overwrite`` is False (also a FileExistsError).
    rcdnet_desktop.core.errors.ExportError
        It could not be written; the message says why.
    """
    data = csv_text(rows).encode(ENCODING, ERRORS)
    return atomic_write(path, lambda fh: fh.write(data), overwrite=overwrite)


class BatchCsvFile:
    """The CSV file :func:`open_batch_csv` yields: ``write(row)`` puts one row on disk at once."""

    def __init__(self, stream: StreamedFile) -> None:
        self._stream = stream
        self.rows = 0
        """Rows written so far."""

    def write(self, row: Mapping[str, object]) -> None:
        self._stream.write(csv_line(row).encode(ENCODING, ERRORS))
        self._stream.keep_partial = True
        self.rows += 1

    @property
    def partial(self) -> Path | None:
        """Where the rows were kept after an interruption (None otherwise)."""
        return self._stream.partial


@contextlib.contextmanager
def open_batch_csv(path: str | Path, *, overwrite: bool) -> Iterator[BatchCsvFile]:
    """Write a batch CSV row by row as results come, named ``path`` only when complete.

    The target and its folder are checked on entry and the header is written, so a bad path
    fails before any work. Each row is on disk as soon as it is written. When the block ends
    normally the file takes its name; when it raises (Ctrl+C included) ``path`` is left as it
    was and, once a row was written, the rows are kept in ``<stem>.partial<suffix>`` (see
    :func:`~rcdnet_desktop.core.atomic.streaming_write`; ``partial`` says where).

    Raises
    ------
    rcdnet_desktop.core.errors.ExportError
        The target is a folder, a symbolic link or not a regular file, its folder is missing
        or not writable, or the disk fails; the message names the file and why.
    """
    with streaming_write(path, overwrite=overwrite) as stream:
        stream.write(csv_header().encode(ENCODING))
        yield BatchCsvFile(stream)


__all__: Sequence[str] = ("CSV_FIELDS", "BatchCsvFile", "batch_row", "csv_header", "csv_line",
                         "csv_text", "open_batch_csv", "write_batch_csv")
