"""``rcdnet pacs echo|find|get`` and ``rcdnet classify --sr/--send`` against a real Orthanc."""

from __future__ import annotations

import shutil

import pydicom
import pytest

from rcdnet_desktop.cli import main
from tests.pacs.conftest import US1_PATIENT, US1_STUDY, pydicom_data_file
from tests.pacs.orthanc_server import APP_AET, free_port


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    """classify's progress bar would leave tqdm's monitor thread (the thread check fails)."""
    from tqdm import tqdm

    monkeypatch.setattr(tqdm, "monitor_interval", 0)


def _address(orthanc):
    return ["--address", f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}", "--aet", APP_AET]


def test_echo_find_get(orthanc, tmp_path, capsys):
    assert main(["pacs", "echo", *_address(orthanc)]) == 0
    assert "answered in" in capsys.readouterr().out
    assert main(["pacs", "find", *_address(orthanc), "--name", "compressed"]) == 0
    out = capsys.readouterr()
    assert US1_STUDY in out.out and "1 match(es)" in out.err
    assert main(["pacs", "get", *_address(orthanc), "--patient-id", US1_PATIENT,
                 "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr()
    files = out.out.split()
    assert len(files) == 2 and all(pydicom.dcmread(f).PatientID == US1_PATIENT for f in files)
    assert "2 instances retrieved" in out.err


def test_find_over_dicomweb_from_a_config_file(orthanc, tmp_path, capsys):
    if not orthanc.has_dicomweb:
        pytest.skip("no DICOMweb plugin")
    config = tmp_path / "pacs.toml"
    config.write_text(f'[node.web]\nurl = "{orthanc.dicomweb_url}"\n')
    assert main(["pacs", "find", "--config", str(config), "--node", "web", "--json",
                 "--patient-id", US1_PATIENT]) == 0
    assert US1_STUDY in capsys.readouterr().out


def test_failures_in_words(capsys):
    assert main(["pacs", "echo", "--address", f"PACS@127.0.0.1:{free_port()}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rcdnet: error: PACS@127.0.0.1:") and "nobody accepts" in err
    assert main(["pacs", "echo"]) == 2
    assert "name one PACS" in capsys.readouterr().err
    assert main(["pacs", "find", "--address", "nonsense"]) == 2
    assert "AET@HOST:PORT" in capsys.readouterr().err
    assert main(["pacs", "find", "--address", "P@h:1", "--from", "2020-13"]) == 2


def test_classify_writes_sr_and_sends_results_to_the_source_study(orthanc, tmp_path, capsys):
    src = shutil.copy(pydicom_data_file("OBXXXX1A.dcm"), tmp_path / "ob.dcm")
    source = pydicom.dcmread(src, stop_before_pixels=True)
    before = {i["SOPInstanceUID"] for i in orthanc.instances_of_study(source.StudyInstanceUID)}
    address = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
    code = main(["classify", str(src), "--sr", str(tmp_path / "sr"), "--send", address,
                 "--aet", APP_AET, "--send-sc", "--csv", str(tmp_path / "rows.csv")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "results of 1 image(s) sent to" in err
    # The SR file is de-identified (no --with-patient)
    (sr_file,) = (tmp_path / "sr").iterdir()
    assert sr_file.name == "ob_rcdnet_sr.dcm"
    sr = pydicom.dcmread(sr_file)
    assert sr.PatientIdentityRemoved == "YES" and sr.StudyInstanceUID != source.StudyInstanceUID
    # Orthanc holds the SR and the SC in the source's study, under the source's patient
    held = [i for i in orthanc.instances_of_study(source.StudyInstanceUID)
            if i["SOPInstanceUID"] not in before]
    assert sorted(i["Modality"] for i in held) == ["SR", "US"]  # the SC keeps the modality
    assert {i["PatientID"] for i in held} == {source.PatientID}
    for i in held:
        (found,) = orthanc.find("Instance", {"SOPInstanceUID": i["SOPInstanceUID"]})
        orthanc.request("DELETE", f"/instances/{found['ID']}")


def test_send_to_an_unreachable_pacs_is_refused_before_any_work(tmp_path, capsys):
    src = shutil.copy(pydicom_data_file("OBXXXX1A.dcm"), tmp_path / "ob.dcm")
    assert main(["classify", str(src), "--send", f"PACS@127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err
    assert "--send:" in err and "nobody accepts connections" in err
