"""Results sent back to a real Orthanc, then the study retrieved: the program's own SC and SR
come back with the image and are recognised, never classified again."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pydicom
import pytest

from rcdnet_desktop.cli import main
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.io.own import OWN_NOTE, not_classified
from tests.pacs.conftest import pydicom_data_file
from tests.pacs.orthanc_server import APP_AET


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    from tqdm import tqdm

    monkeypatch.setattr(tqdm, "monitor_interval", 0)


def test_a_study_retrieved_after_results_were_sent(orthanc, tmp_path, capsys):
    src = shutil.copy(pydicom_data_file("OBXXXX1A.dcm"), tmp_path / "ob.dcm")
    source = pydicom.dcmread(src, stop_before_pixels=True)
    before = {i["SOPInstanceUID"] for i in orthanc.instances_of_study(source.StudyInstanceUID)}
    address = ["--address", f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}", "--aet", APP_AET]
    try:
        assert main(["classify", str(src), "--send", address[1], "--aet", APP_AET,
                     "--send-sc"]) == 0
        capsys.readouterr()
        assert main(["pacs", "get", *address, "--patient-id", source.PatientID,
                     "--cache", str(tmp_path / "cache")]) == 0
        files = [Path(f) for f in capsys.readouterr().out.split()]
        records = {f: read_image(f) for f in files}
        (sr,) = [r for r in records.values() if r.stored is not None]
        assert sr.stored.own and sr.has_image  # its image found beside it in the cache
        assert sr.stored.result.p_malignant is not None
        own = [f for f, r in records.items() if not_classified(r) == OWN_NOTE]
        assert len(own) == 2 and sr.path in own  # the SR and the SC
        out = tmp_path / "rows.csv"
        assert main(["classify", *map(str, files), "--csv", str(out)]) == 0
        with open(out, newline="", encoding="utf-8") as fh:
            rows = {r["file"]: r for r in csv.DictReader(fh)}
        for f in own:
            assert rows[str(f)]["status"] == "skipped" and OWN_NOTE in rows[str(f)]["error"]
        assert any(r["status"] == "ok" for r in rows.values())
    finally:
        for i in orthanc.instances_of_study(source.StudyInstanceUID):
            if i["SOPInstanceUID"] not in before:
                (found,) = orthanc.find("Instance", {"SOPInstanceUID": i["SOPInstanceUID"]})
                orthanc.request("DELETE", f"/instances/{found['ID']}")
