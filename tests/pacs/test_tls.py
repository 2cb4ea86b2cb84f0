"""DICOM over TLS against a real Orthanc whose DICOM port speaks TLS only and wants this
computer's certificate: every operation, and each way a secure connection fails, in words."""

from __future__ import annotations

from dataclasses import replace

import pydicom
import pytest
from pydicom.uid import generate_uid

from rcdnet_desktop.core import pacs
from rcdnet_desktop.core.pacs import PacsCache, PacsError, Query
from tests.pacs.conftest import US1_PATIENT, US1_STUDY


def test_echo_and_find_over_tls(tls_node):
    assert pacs.echo(tls_node) >= 0
    matches = pacs.find(tls_node, Query(patient_id=US1_PATIENT))
    assert [m.study_uid for m in matches] == [US1_STUDY]
    series = pacs.find(tls_node, Query(level="series", study_uid=US1_STUDY))
    assert len(series) == 1 and series[0].instances == 2


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_over_tls(tls_node, tmp_path, method):
    """C-GET comes back over the query's TLS association; for C-MOVE Orthanc connects to this
    app's storage SCP over TLS, which presents the node's certificate."""
    node = replace(tls_node, retrieve=method)
    study = pacs.find(node, Query(study_uid=US1_STUDY))[0]
    result = pacs.retrieve(node, [study], PacsCache(tmp_path))
    assert result.complete, result.summary()
    assert len(result.files) == 2
    assert {pydicom.dcmread(f).StudyInstanceUID for f in result.files} == {US1_STUDY}


def test_store_over_tls(tls_node, secure_orthanc):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("US1_UNCR.dcm"))
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    result = pacs.store(tls_node, [ds])
    try:
        assert result.ok and result.stored == [ds.SOPInstanceUID], result.summary()
        held = secure_orthanc.instances_of_study(ds.StudyInstanceUID)
        assert [h["SOPInstanceUID"] for h in held] == [ds.SOPInstanceUID]
    finally:
        for study in secure_orthanc.find("Study", {"StudyInstanceUID": ds.StudyInstanceUID}):
            secure_orthanc.request("DELETE", f"/studies/{study['ID']}")


def _fails(node, match: str) -> PacsError:
    with pytest.raises(PacsError, match=match) as info:
        pacs.echo(node)
    assert info.value.kind == "tls", str(info.value)
    assert str(info.value).startswith(node.label)
    return info.value


def test_plain_client_against_a_tls_server(tls_node):
    err = _fails(replace(tls_node, tls=False), "expects DICOM TLS")
    assert "--tls" in str(err)


def test_tls_client_against_a_plain_server(dimse_node, pki):
    node = replace(dimse_node, tls=True, ca_file=str(pki.ca))
    _fails(node, "did not answer in TLS: it does not use TLS on this port")


def test_untrusted_server_certificate(tls_node, pki):
    err = _fails(replace(tls_node, ca_file=str(pki.other_ca)), "is not trusted")
    assert str(pki.other_ca) in str(err) and "--ca FILE" in str(err)


def test_server_certificate_not_made_out_to_the_host_connected_to(tls_node):
    """The certificate names localhost and 127.0.0.1; 127.0.0.2 reaches the same server."""
    _fails(replace(tls_node, host="127.0.0.2"), "is not made out to 127.0.0.2")


def test_no_client_certificate(tls_node):
    _fails(replace(tls_node, cert_file="", key_file=""), "asks for this computer's certificate")


def test_client_certificate_the_server_does_not_trust(tls_node, pki):
    node = replace(tls_node, cert_file=str(pki.untrusted_client.cert),
                   key_file=str(pki.untrusted_client.key))
    _fails(node, "did not accept this computer's certificate")


def test_missing_and_unusable_tls_files_are_config_errors(tls_node, tmp_path):
    with pytest.raises(PacsError, match="does not exist") as info:
        pacs.echo(replace(tls_node, ca_file=str(tmp_path / "none.pem")))
    assert info.value.kind == "config"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(PacsError, match="cannot be used") as info:
        pacs.echo(replace(tls_node, cert_file=str(junk), key_file=str(junk)))
    assert info.value.kind == "config"


def test_move_over_tls_needs_a_certificate_to_present(tls_node, tmp_path):
    node = replace(tls_node, retrieve="move", cert_file="", key_file="")
    study_node = tls_node
    study = pacs.find(study_node, Query(study_uid=US1_STUDY))[0]
    with pytest.raises(PacsError, match="needs this computer's certificate") as info:
        pacs.retrieve(node, [study], PacsCache(tmp_path))
    assert info.value.kind == "config"


def test_tls_1_1_is_never_offered(tls_node):
    import ssl

    from rcdnet_desktop.core.pacs.tls import client_context

    ctx = client_context(tls_node)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
