"""``rcdnet pacs echo|find|get`` and ``rcdnet classify --sr/--send`` against a real Orthanc."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

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


# --- classify --send alone and with the other outputs -----------------------------------------

SR_CLASS, SC_CLASS = "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.7"


@pytest.fixture
def send_sources(tmp_path, orthanc):
    """A DICOM ultrasound image and a PNG (which has no study to send to); what the test sends
    into the DICOM image's study is deleted after it."""
    import numpy as np
    from PIL import Image
    from pydicom.data import get_testdata_file

    src = tmp_path / "src"
    src.mkdir()
    dicom = shutil.copy(get_testdata_file("examples_palette.dcm"), src / "pal.dcm")
    Image.fromarray(np.random.default_rng(0).gamma(2.0, 30.0, (160, 200)).clip(0, 255)
                    .astype(np.uint8)).save(src / "a.png")
    source = pydicom.dcmread(dicom, stop_before_pixels=True)
    before = {i["SOPInstanceUID"] for i in orthanc.instances_of_study(source.StudyInstanceUID)}
    yield src / "a.png", src / "pal.dcm", (source, before)
    for i in orthanc.instances_of_study(source.StudyInstanceUID):
        if i["SOPInstanceUID"] not in before:
            (found,) = orthanc.find("Instance", {"SOPInstanceUID": i["SOPInstanceUID"]})
            orthanc.request("DELETE", f"/instances/{found['ID']}")


def _held(orthanc, sent) -> dict[str, dict]:
    """What the test sent into the source's study, by SOP class."""
    source, before = sent
    held = [i for i in orthanc.instances_of_study(source.StudyInstanceUID)
            if i["SOPInstanceUID"] not in before]
    by_class = {i["SOPClassUID"]: i for i in held}
    assert len(by_class) == len(held)  # one of each at most
    for i in held:
        assert i["PatientID"] == source.PatientID
    return by_class


SEND_PAIRS = {
    "send": ([], set(), set()),
    "send+send-sc": (["--send-sc"], {SC_CLASS}, set()),
    "send+sr": (["--sr", "sr"], set(), {"sr/pal_rcdnet_sr.dcm"}),
    "send+export-dicom": (["--export", "dicom"], set(), {"pal_rcdnet.dcm"}),
    "send+export-pdf": (["--export", "pdf"], set(), {"a_rcdnet.pdf", "pal_rcdnet.pdf"}),
    "send+csv": (["--csv", "rows.csv"], set(), {"rows.csv"}),
    "send-sc+export-sr": (["--send-sc", "--export", "sr", "--with-patient"], {SC_CLASS},
                          {"pal_rcdnet_sr.dcm"}),
}


@pytest.mark.parametrize("name", list(SEND_PAIRS))
def test_send_alone_and_with_other_outputs(name, orthanc, send_sources, tmp_path, capsys,
                                           monkeypatch):
    """--send files the SR (and with --send-sc the SC) under the source's patient and study;
    the PNG is not sent and says why; the other option's files are written as without
    --send."""
    from tests.test_cli_outputs import check_file

    png, dicom, source = send_sources
    extra, classes, files = SEND_PAIRS[name]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    address = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
    status = main(["classify", str(png), str(dicom), "--send", address, "--aet", APP_AET,
                   *extra])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"results of 1 image(s) sent to {address}" in err
    held = _held(orthanc, source)
    assert set(held) == {SR_CLASS} | classes
    assert held[SR_CLASS]["Modality"] == "SR"
    assert {p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()} == files
    for f in files:
        if not f.endswith(".csv"):
            check_file(work / f)
    rows = (list(csv.DictReader(out.splitlines())) if out
            else list(csv.DictReader((work / "rows.csv").read_text().splitlines())))
    by_name = {Path(r["file"]).name: r for r in rows}
    assert "not sent: a.png: the source is not a DICOM image" in by_name["a.png"]["warnings"]
    assert "sent" not in by_name["pal.dcm"]["warnings"]


def test_send_with_no_dicom_image_fails_loudly(orthanc, send_sources, capsys):
    png, _, source = send_sources
    status = main(["classify", str(png), "--send", f"{orthanc.aet}@127.0.0.1:"
                   f"{orthanc.dicom_port}", "--aet", APP_AET])
    err = capsys.readouterr().err
    assert status == 1
    assert ("rcdnet: --send: nothing sent: the source is not a DICOM image (the SR and SC "
            "need a DICOM source)") in err.splitlines()
    assert _held(orthanc, source) == {}


def test_a_store_the_pacs_refuses_is_named_and_exits_one(orthanc, send_sources, capsys):
    """READONLY may not store: the rows say why and the run exits 1."""
    from tests.pacs.orthanc_server import READ_ONLY_AET

    _, dicom, source = send_sources
    status = main(["classify", str(dicom), "--send", f"{orthanc.aet}@127.0.0.1:"
                   f"{orthanc.dicom_port}", "--aet", READ_ONLY_AET])
    out, err = capsys.readouterr()
    assert status == 1, err
    (row,) = csv.DictReader(out.splitlines())
    assert row["status"] == "ok" and "not sent:" in row["warnings"]
    assert "0 image(s) sent to" in err and "1 not sent" in err
    assert _held(orthanc, source) == {}


def test_send_to_a_node_of_the_config_file(orthanc, send_sources, tmp_path, capsys,
                                           monkeypatch):
    _, dicom, sent = send_sources
    config = tmp_path / "pacs.toml"
    config.write_text(f'[node.test]\nae_title = "{orthanc.aet}"\nhost = "127.0.0.1"\n'
                      f'port = {orthanc.dicom_port}\ncalling_ae_title = "{APP_AET}"\n')
    monkeypatch.setenv("RCDNET_PACS_CONFIG", str(config))
    assert main(["classify", str(dicom), "--send", "test", "--send-sc"]) == 0, \
        capsys.readouterr().err
    assert set(_held(orthanc, sent)) == {SR_CLASS, SC_CLASS}


def test_send_to_a_dicomweb_node(orthanc, send_sources, tmp_path, capsys, monkeypatch):
    """A node of the config file with a URL: the results go by STOW-RS, to the same study."""
    if not orthanc.has_dicomweb:
        pytest.skip("Orthanc's DICOMweb plugin is not installed (orthanc-dicomweb)")
    _, dicom, sent = send_sources
    config = tmp_path / "pacs.toml"
    config.write_text(f'[node.web]\nurl = "{orthanc.dicomweb_url}"\n')
    monkeypatch.setenv("RCDNET_PACS_CONFIG", str(config))
    assert main(["classify", str(dicom), "--send", "web", "--send-sc"]) == 0, \
        capsys.readouterr().err
    assert set(_held(orthanc, sent)) == {SR_CLASS, SC_CLASS}
