"""The batch-review CSV shared by ``rcdnet classify`` and the viewer's batch dialog."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from rcdnet_desktop.core.errors import ExportExistsError
from rcdnet_desktop.core.export.batch_csv import (
    CSV_FIELDS,
    batch_row,
    csv_text,
    write_batch_csv,
)
from rcdnet_desktop.core.types import BatchItem, Box, Prediction

OK = BatchItem(Path("/s/a.png"), Prediction(
    p_benign=0.25, p_malignant=0.75, device="cpu", model_version="t", roi=Box(8, 6, 28, 22),
    box=Box(10, 8, 24, 18), box_source="auto", warnings=("low contrast", "small image")))
FAILED = BatchItem(Path("/s/b.png"), error="/s/b.png: file is empty")
WHOLE = BatchItem(Path("/s/c.png"), Prediction(p_benign=0.9, p_malignant=0.1, device="cpu",
                                               model_version="t", untrained=True))


def test_rows_hold_every_column_as_text():
    ok, failed, whole = (batch_row(i) for i in (OK, FAILED, WHOLE))
    assert all(tuple(r) == CSV_FIELDS for r in (ok, failed, whole))
    assert ok["label"] == "malignant" and ok["p_malignant"] == "0.7500"
    assert ok["status"] == "ok" and ok["warnings"] == "low contrast; small image"
    # The box as found, unpadded (not the region the model saw).
    assert (ok["box_source"], ok["box_x"], ok["box_y"], ok["box_w"], ok["box_h"]) == \
        ("auto", "10", "8", "24", "18")
    assert ok["band"] == "high" and ok["suspicious"] == "yes"
    assert failed["status"] == "failed" and failed["error"] == "/s/b.png: file is empty"
    assert all(failed[k] == "" for k in CSV_FIELDS if k not in ("file", "status", "error"))
    assert whole["label"] == "UNTRAINED benign" and whole["box_source"] == "none"
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
