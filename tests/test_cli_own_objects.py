"""``rcdnet classify`` on a study that holds its own exported results: the source image is
classified, the SC and SR it wrote before are skipped with the reason."""

from __future__ import annotations

import csv
from pathlib import Path

from rcdnet_desktop import cli
from rcdnet_desktop.core.io.own import OWN_NOTE
from tests.dicom_samples import patient_dicom


def test_exports_written_into_the_study_are_skipped_when_it_is_classified_again(tmp_path,
                                                                                 capsys):
    study = tmp_path / "study"
    patient_dicom(study / "us.dcm")
    assert cli.main(["classify", str(study), "--export", "dicom", "--export", "sr",
                     "--export-dir", str(study), "--no-auto-box"]) == 0
    written = sorted(p.name for p in study.iterdir())
    assert len(written) == 3, written  # the image, its SC and its SR
    out = tmp_path / "again.csv"
    capsys.readouterr()
    assert cli.main(["classify", str(study), "--csv", str(out), "--no-auto-box"]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(fh)}
    assert rows["us.dcm"]["status"] == "ok"
    exported = [r for name, r in rows.items() if name != "us.dcm"]
    assert len(exported) == 2
    for row in exported:
        assert row["status"] == "skipped" and OWN_NOTE in row["error"]
        assert row["p_malignant"] == ""
    assert "1 classified, 0 failed, 2 skipped" in capsys.readouterr().err
