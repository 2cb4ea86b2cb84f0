"""PACS queries, retrieves and sends in the audit trail, against the secure Orthanc: by UIDs,
with the node, the outcome (failures too) -- never the patient's name or ID, never the
password."""

from __future__ import annotations

import json

import pydicom
import pytest
from pydicom.uid import generate_uid

from rcdnet_desktop.core import audit, pacs
from rcdnet_desktop.core.pacs import PacsCache, PacsError, Query
from tests.pacs.conftest import SECURE_PASSWORD, US1_PATIENT, US1_STUDY


def _events(folder) -> list[dict]:
    return [json.loads(x) for x in (folder / audit.LOG_NAME).read_text().splitlines()]


def _no_identity(folder) -> None:
    raw = (folder / audit.LOG_NAME).read_text()
    for text in (US1_PATIENT, "CompressedSamples", "US1^", SECURE_PASSWORD):
        assert text not in raw, f"the audit log holds {text!r}"


@pytest.mark.parametrize("transport", ["tls", "https"])
def test_query_retrieve_send_are_recorded(transport, tls_node, https_node, secure_orthanc,
                                          tmp_path, audit_log_in_tmp):
    node = tls_node if transport == "tls" else https_node
    studies = pacs.find(node, Query(patient_id=US1_PATIENT, patient_name="Compressed"))
    result = pacs.retrieve(node, studies, PacsCache(tmp_path))
    assert result.complete
    ds = pydicom.dcmread(result.files[0])
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    try:
        assert pacs.store(node, [ds]).ok
    finally:
        for study in secure_orthanc.find("Study", {"StudyInstanceUID": ds.StudyInstanceUID}):
            secure_orthanc.request("DELETE", f"/studies/{study['ID']}")
    query, got, sent = _events(audit_log_in_tmp)
    assert (query["event"], query["event_id"]["code"], query["action"]) == ("query", "110112",
                                                                            "E")
    assert query["query"] == {"level": "study", "modality": "US",
                              "keys": ["PatientID", "PatientName"]}
    assert query["objects"] == [{"type": "study", "uid": US1_STUDY}]
    assert query["destination"] == {"node": node.name, "address": node.address}
    assert (got["event"], got["action"], got["outcome"]) == ("retrieve", "C", 0)
    assert got["source"]["node"] == node.name
    assert {o["uid"] for o in got["objects"] if o["type"] == "instance"} == {
        i.sop_uid for i in result.instances}
    assert (sent["event"], sent["action"], sent["outcome"]) == ("send", "R", 0)
    assert {"type": "instance", "uid": ds.SOPInstanceUID,
            "sop_class": ds.SOPClassUID} in sent["objects"]
    _no_identity(audit_log_in_tmp)


def test_failures_are_recorded_with_their_kind(https_node, tls_node, pki, audit_log_in_tmp):
    from dataclasses import replace

    with pytest.raises(PacsError):
        pacs.find(https_node.with_secret("wrong-one"), Query(patient_id=US1_PATIENT))
    with pytest.raises(PacsError):
        pacs.find(replace(tls_node, ca_file=str(pki.other_ca)), Query())
    refused, untrusted = _events(audit_log_in_tmp)
    assert refused["outcome"] == audit.SERIOUS_FAILURE
    assert refused["detail"].startswith("auth: the server refused the user name alice")
    assert untrusted["detail"].startswith("tls: the certificate that 127.0.0.1:")
    _no_identity(audit_log_in_tmp)
    assert "wrong-one" not in (audit_log_in_tmp / audit.LOG_NAME).read_text()
