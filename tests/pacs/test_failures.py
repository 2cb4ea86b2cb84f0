"""What the user is told when the PACS is unreachable, rejects us, stops answering, fails
half-way or refuses a result; and that the cache never keeps half-written files."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace

import pydicom
import pytest
from pydicom.uid import generate_uid

from rcdnet_desktop.core import pacs
from rcdnet_desktop.core.pacs import PacsCache, PacsError, PacsNode, Query
from tests.pacs.conftest import US1_STUDY
from tests.pacs.orthanc_server import READ_ONLY_AET, free_port


def _only_whole_files(folder):
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not list(folder.glob(".incoming-*")), "a staging folder was left behind"
    for path in files:
        assert path.suffix == ".dcm"
        pydicom.dcmread(path)  # complete
    return files


def test_nobody_listening():
    node = PacsNode(name="Gone", ae_title="PACS", host="127.0.0.1", port=free_port(), timeout=5)
    with pytest.raises(PacsError, match="nobody accepts connections on 127.0.0.1") as info:
        pacs.echo(node)
    assert info.value.kind == "unreachable"
    assert str(info.value).startswith("Gone (PACS@127.0.0.1:")


def test_unknown_host():
    node = PacsNode(name="Typo", ae_title="PACS", host="no-such-host.invalid", port=104)
    with pytest.raises(PacsError, match="cannot be found") as info:
        pacs.find(node, Query())
    assert info.value.kind == "unreachable"


def test_silent_port_times_out():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # the connection is made, nobody ever answers
        node = PacsNode(name="Silent", ae_title="PACS", host="127.0.0.1",
                        port=server.getsockname()[1], timeout=1)
        with pytest.raises(PacsError, match="did not answer") as info:
            pacs.echo(node)
    assert info.value.kind == "timeout"


def test_wrong_called_ae_title(dimse_node):
    with pytest.raises(PacsError, match="does not answer to the AE title WRONG") as info:
        pacs.echo(replace(dimse_node, ae_title="WRONG"))
    assert info.value.kind == "rejected"


def test_unknown_calling_ae_title_cannot_search(dimse_node):
    node = replace(dimse_node, calling_ae_title="STRANGER")
    with pytest.raises(PacsError, match="STRANGER"):
        pacs.find(node, Query())


def test_move_to_unknown_destination_says_what_to_do(dimse_node, tmp_path):
    node = replace(dimse_node, retrieve="move", calling_ae_title="STRANGER",
                   storage_port=free_port())
    study = pacs.find(dimse_node, Query(study_uid=US1_STUDY))[0]
    with pytest.raises(PacsError) as info:
        result = pacs.retrieve(node, [study], PacsCache(tmp_path))
        raise PacsError(node, result.problem)  # a refusal inside the result is also fine
    assert "STRANGER" in str(info.value)
    _only_whole_files(tmp_path)


def _second_target_blocked(cache, study):
    """Make the cache unable to take the study's second instance (a folder in its place)."""
    uids = sorted(pydicom.dcmread(pydicom.data.get_testdata_file(n), stop_before_pixels=True)
                  .SOPInstanceUID for n in ("US1_UNCR.dcm", "US1_J2KR.dcm"))
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("US1_UNCR.dcm"), stop_before_pixels=True)
    blocked = cache.instance_path(study.study_uid, ds.SeriesInstanceUID, uids[1])
    blocked.mkdir(parents=True)
    return blocked


@pytest.mark.parametrize("transport", ["get", "move", "web"])
def test_retrieve_failing_half_way_keeps_what_came(dimse_node, web_node, tmp_path, transport):
    node = web_node if transport == "web" else replace(dimse_node, retrieve=transport)
    study = pacs.find(dimse_node, Query(study_uid=US1_STUDY))[0]
    cache = PacsCache(tmp_path / "cache")
    blocked = _second_target_blocked(cache, study)
    result = pacs.retrieve(node, [study], cache)
    assert not result.complete and result.failed >= 1
    # Orthanc stops a C-MOVE at its first failed instance, which may be the first one sent
    assert len(result.instances) == 1 or (transport == "move" and not result.instances)
    assert node.label in result.problem
    if result.instances:
        assert "1 instance retrieved, kept in the cache" in result.summary()
    blocked.rmdir()
    assert len(_only_whole_files(tmp_path / "cache")) == len(result.instances)


@pytest.mark.parametrize("transport", ["get", "web"])
def test_cancel_during_retrieve_leaves_only_whole_files(dimse_node, web_node, tmp_path,
                                                         transport):
    node = web_node if transport == "web" else dimse_node
    study = pacs.find(dimse_node, Query(study_uid=US1_STUDY))[0]
    cancel = threading.Event()

    def progress(p):
        if p.received >= 1:
            cancel.set()

    result = pacs.retrieve(node, [study], PacsCache(tmp_path), progress=progress, cancel=cancel)
    assert result.cancelled and not result.problem
    assert len(_only_whole_files(tmp_path)) == len(result.instances) <= 2


def test_store_refused_by_the_pacs(dimse_node, orthanc, clean_study):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("US1_UNCR.dcm"))
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    clean_study.append(ds.StudyInstanceUID)
    node = replace(dimse_node, calling_ae_title=READ_ONLY_AET)  # may search, not store
    with pytest.raises(PacsError, match="during the store of the ultrasound image") as info:
        pacs.store(node, [ds])
    assert f"allow this app's AE title {READ_ONLY_AET}" in str(info.value)
    assert orthanc.instances_of_study(ds.StudyInstanceUID) == []


def test_stow_answer_with_a_refusal_is_read_per_instance():
    from pydicom.dataset import Dataset

    from rcdnet_desktop.core.pacs.dicomweb import _read_stow_answer
    from rcdnet_desktop.core.pacs.results import StoreResult

    sr, sc = Dataset(), Dataset()
    sr.SOPInstanceUID, sc.SOPInstanceUID = "1.2.3", "1.2.4"
    answer = Dataset()
    ok, bad = Dataset(), Dataset()
    ok.ReferencedSOPInstanceUID = "1.2.4"
    bad.ReferencedSOPInstanceUID, bad.FailureReason = "1.2.3", 0xA700
    answer.ReferencedSOPSequence, answer.FailedSOPSequence = [ok], [bad]
    result = StoreResult()
    _read_stow_answer(answer, [sr, sc], {"1.2.3": "structured report",
                                         "1.2.4": "secondary capture"}, result)
    assert result.stored == ["1.2.4"]
    assert result.refused == ["the structured report: the PACS is out of resources (its disk "
                              "may be full) (status 0xA700)"]


def test_dicomweb_unreachable_and_wrong_url(orthanc):
    gone = PacsNode(name="Gone web", url=f"http://127.0.0.1:{free_port()}/dicom-web")
    with pytest.raises(PacsError, match="nobody accepts connections") as info:
        pacs.echo(gone)
    assert info.value.kind == "unreachable"
    wrong = PacsNode(name="Wrong path", url=f"{orthanc.url}/not-dicom-web")
    with pytest.raises(PacsError, match="HTTP 404"):
        pacs.find(wrong, Query())
