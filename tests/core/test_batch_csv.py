"""The batch-review CSV shared by ``rcdnet classify`` and the viewer's batch dialog: columns,
any file name written losslessly and quoted, rows streamed to disk."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.errors import ExportExistsError
from rcdnet_desktop.core.export.batch_csv import (
    CSV_FIELDS,
    batch_row,
    csv_line,
    csv_text,
    open_batch_csv,
    write_batch_csv,
)
from rcdnet_desktop.core.types import Box, Prediction

OK = BatchItem(Path("/s/a.png"), Prediction(
    p_benign=0.25, p_malignant=0.75, device="cpu", model_version="t", roi=Box(8, 6, 28, 22),
    box=Box(10, 8, 24, 18), box_source="auto", warnings=("low contrast", "small image")))
FAILED = BatchItem(Path("/s/b.png"), error="/s/b.png: file is empty")
WHOLE = BatchItem(Path("/s/c.png"), Prediction(p_benign=0.9, p_malignant=0.1, device="cpu",
                                               model_version="t", untrained=True))


def test_rows_hold_every_column_as_text():
    ok, failed, whole = (batch_row(i) for i in (OK, FAILED, WHOLE))
    assert all(tuple(r) == CSV_FIELDS for r in (ok, failed, whole))
    assert ok["decision"] == "suspicious" and ok["p_malignant"] == "0.7500"
    assert ok["status"] == "ok" and ok["warnings"] == "low contrast; small image"
    # The box as found, unpadded (not the region the model saw).
    assert (ok["box_source"], ok["box_x"], ok["box_y"], ok["box_w"], ok["box_h"]) == \
        ("auto", "10", "8", "24", "18")
    assert ok["band"] == "high" and ok["suspicious"] == "yes"
    assert failed["status"] == "failed" and failed["error"] == "/s/b.png: file is empty"
    assert all(failed[k] == "" for k in CSV_FIELDS if k not in ("file", "status", "error"))
    assert whole["decision"] == "UNTRAINED below_cutoff" and whole["box_source"] == "none"
    assert whole["box_x"] == "" and whole["suspicious"] == "no"


def test_csv_text_and_file_read_back(tmp_path):
    rows = [batch_row(i) for i in (OK, FAILED, WHOLE)]
    assert list(csv.DictReader(io.StringIO(csv_text(rows)))) == rows
    target = write_batch_csv(tmp_path / "review.csv", rows)
    with target.open(newline="", encoding="utf-8") as fh:
        assert list(csv.DictReader(fh)) == rows
    with pytest.raises(ExportExistsError):
        write_batch_csv(target, rows[:1])
    write_batch_csv(target, rows[:1], overwrite=True)
    assert len(target.read_text(encoding="utf-8").splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["review.csv"]  # no temporary left


def _named(name: str) -> dict[str, str]:
    return batch_row(BatchItem(Path("/s") / name, error=f"/s/{name}: file is empty"))


@pytest.mark.parametrize("name", ["c\rr.png", "n\nl.png", "q\"uote, comma.png", "\udcff.png",
                                  "caf\u00e9.png"])
def test_any_file_name_survives_the_csv(tmp_path, name):
    rows = [_named(name), batch_row(OK)]
    target = write_batch_csv(tmp_path / "review.csv", rows)
    data = target.read_bytes()
    # The name's own bytes (even when not UTF-8), quotes doubled.
    assert os.fsencode(f"/s/{name}").replace(b'"', b'""') in data
    with target.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
        assert list(csv.DictReader(fh)) == rows
    assert list(csv.DictReader(io.StringIO(csv_text(rows), newline=""))) == rows


def test_a_carriage_return_is_quoted():
    line = csv_line(_named("c\rr.png"))
    assert line.startswith('"/s/c\rr.png",') and line.endswith("\n")
    assert csv_line(batch_row(OK)).startswith("/s/a.png,suspicious,")  # others as before


def test_rows_are_on_disk_as_they_come_and_the_file_is_named_at_the_end(tmp_path):
    target = tmp_path / "review.csv"
    with open_batch_csv(target, overwrite=True) as out:
        out.write(batch_row(OK))
        part, = tmp_path.iterdir()
        assert part.read_text().splitlines() == [",".join(CSV_FIELDS), csv_line(batch_row(OK))[:-1]]
        out.write(batch_row(FAILED))
    assert out.rows == 2 and out.partial is None
    with target.open(newline="") as fh:
        assert list(csv.DictReader(fh)) == [batch_row(OK), batch_row(FAILED)]


def test_an_interrupted_csv_is_kept_as_partial(tmp_path):
    target = tmp_path / "review.csv"
    with pytest.raises(KeyboardInterrupt), open_batch_csv(target, overwrite=True) as out:
        out.write(batch_row(OK))
        raise KeyboardInterrupt
    assert out.partial == tmp_path / "review.partial.csv"
    with out.partial.open(newline="") as fh:
        assert list(csv.DictReader(fh)) == [batch_row(OK)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["review.partial.csv"]


def test_skipped_items():
    row = batch_row(BatchItem(Path("/s/x.dcm"), error="/s/x.dcm: skipped: ...", skipped=True))
    assert row["status"] == "skipped" and row["decision"] == ""
