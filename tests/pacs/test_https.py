"""DICOMweb over HTTPS with a login, against Orthanc behind nginx (which terminates TLS and
passes the Authorization header on): the right and the wrong password, tokens, and each
certificate problem, in words; a refused login is not retried."""

from __future__ import annotations

from dataclasses import replace

import pydicom
import pytest
from pydicom.uid import generate_uid

from rcdnet_desktop.core import pacs
from rcdnet_desktop.core.pacs import PacsCache, PacsError, PacsNode, Query
from rcdnet_desktop.core.pacs import credentials as cred
from tests.pacs.conftest import BEARER_TOKEN, SECURE_PASSWORD, SECURE_USER, US1_PATIENT, US1_STUDY


def test_echo_find_retrieve_store_with_the_right_password(https_node, secure_orthanc,
                                                          tmp_path):
    assert pacs.echo(https_node) >= 0
    studies = pacs.find(https_node, Query(patient_id=US1_PATIENT))
    assert [m.study_uid for m in studies] == [US1_STUDY]
    result = pacs.retrieve(https_node, studies, PacsCache(tmp_path))
    assert result.complete and len(result.files) == 2, result.summary()
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("US1_UNCR.dcm"))
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    try:
        stored = pacs.store(https_node, [ds])
        assert stored.ok and stored.stored == [ds.SOPInstanceUID], stored.summary()
    finally:
        for study in secure_orthanc.find("Study", {"StudyInstanceUID": ds.StudyInstanceUID}):
            secure_orthanc.request("DELETE", f"/studies/{study['ID']}")


def _fails(node, match: str, kind: str) -> PacsError:
    with pytest.raises(PacsError, match=match) as info:
        pacs.find(node, Query(patient_id=US1_PATIENT))
    assert info.value.kind == kind, str(info.value)
    assert str(info.value).startswith(node.label)
    return info.value


def test_wrong_password_is_said_and_not_retried(https_node, https_proxy, monkeypatch):
    """One request, one refusal: the HTTP layer makes exactly one attempt."""
    import requests

    calls = []
    send = requests.Session.send

    def counting(self, request, **kwargs):
        calls.append(request.url)
        return send(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", counting)
    err = _fails(https_node.with_secret("not-the-password"),
                 f"refused the user name {SECURE_USER} and its password \\(HTTP 401\\)", "auth")
    assert "not-the-password" not in str(err)
    assert len(calls) == 1


def test_no_password_found_says_where_to_give_it(https_node):
    err = _fails(https_node.with_secret(None), "no password of alice was found", "auth")
    assert cred.PASSWORD_ENV in str(err) and cred.KEYRING_SERVICE in str(err)


def test_no_user_at_all(https_node):
    _fails(replace(https_node, user="").with_secret(None),
           "wants a login \\(HTTP 401\\): give the node a user", "auth")


def test_password_from_the_environment(https_node, monkeypatch):
    monkeypatch.setenv(cred.PASSWORD_ENV, SECURE_PASSWORD)
    assert pacs.echo(https_node.with_secret(None)) >= 0


class _MemoryKeyring:
    """A keyring backend held in memory (the keyring package's own interface)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service, user):
        return self.entries.get((service, user))

    def set_password(self, service, user, password):
        self.entries[(service, user)] = password


def test_password_from_the_keyring(https_node, https_proxy, monkeypatch):
    ring = _MemoryKeyring()
    monkeypatch.setattr(cred, "_keyring", lambda: ring)
    node = https_node.with_secret(None)
    assert cred.keyring_user(node) == f"{SECURE_USER}@127.0.0.1"
    with pytest.raises(PacsError, match="no password"):
        pacs.echo(node)
    assert cred.save_to_keyring(node, cred.Secret(SECURE_PASSWORD))
    assert ring.entries == {(cred.KEYRING_SERVICE, f"{SECURE_USER}@127.0.0.1"): SECURE_PASSWORD}
    assert pacs.echo(node) >= 0


def test_a_keyring_without_backend_is_passed_over(https_node, monkeypatch):
    """keyring installed with no usable backend (a server without a desktop): the password
    comes from the environment as if keyring were absent."""
    pytest.importorskip("keyring")
    import keyring
    from keyring.backends import fail

    monkeypatch.undo()  # the autouse fixture's stand-in for _keyring
    monkeypatch.delenv(cred.PASSWORD_ENV, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert cred.from_keyring(https_node) is None and not cred.keyring_available()
        monkeypatch.setenv(cred.PASSWORD_ENV, SECURE_PASSWORD)
        assert pacs.echo(https_node.with_secret(None)) >= 0
    finally:
        keyring.set_keyring(previous)


def test_bearer_token(https_proxy, pki, monkeypatch):
    node = PacsNode(name="Token gateway", url=https_proxy.token_url(), auth="bearer",
                    ca_file=str(pki.ca), timeout=10)
    _fails(node, "no token was found", "auth")
    _fails(node.with_secret("expired-token"), "refused the token \\(HTTP 401\\)", "auth")
    monkeypatch.setenv(cred.TOKEN_ENV, BEARER_TOKEN)
    assert [m.study_uid for m in pacs.find(node, Query(patient_id=US1_PATIENT))] == [US1_STUDY]


def test_untrusted_certificate(https_proxy, https_node, pki):
    node = replace(https_node, url=https_proxy.url("untrusted"))
    err = _fails(node, "is not trusted: it is not signed by a CA in the CA file", "tls")
    assert str(pki.ca) in str(err)


def test_system_store_does_not_trust_a_hospital_ca(https_node):
    err = _fails(replace(https_node, ca_file=""), "not signed by a CA in the system's", "tls")
    assert "--ca FILE" in str(err)


def test_host_name_mismatch(https_proxy, https_node):
    _fails(replace(https_node, url=https_proxy.url("wrong_host")),
           "is not made out to 127.0.0.1", "tls")


def test_expired_certificate(https_proxy, https_node):
    _fails(replace(https_node, url=https_proxy.url("expired")), "has expired", "tls")


def test_plain_http_to_the_https_port(https_proxy, https_node):
    plain = https_proxy.url().replace("https://", "http://")
    _fails(replace(https_node, url=plain), "speaks HTTPS only: write the URL with https://",
           "tls")


def test_https_to_a_plain_http_server(secure_orthanc, https_node):
    url = f"https://127.0.0.1:{secure_orthanc.http_port}/dicom-web"
    _fails(replace(https_node, url=url), "did not answer in TLS.*write the URL with http://",
           "tls")


def test_password_in_the_url_is_refused(https_proxy):
    node = PacsNode(name="Inline", url=https_proxy.url().replace("https://",
                                                                 "https://alice:pw@"))
    with pytest.raises(PacsError, match="never in the URL") as info:
        pacs.echo(node)
    assert info.value.kind == "config"


def test_tls_asked_for_a_plain_url_is_refused(https_proxy):
    node = PacsNode(name="Plain", url=https_proxy.url().replace("https://", "http://"),
                    tls=True)
    with pytest.raises(PacsError, match="URL starts with https://") as info:
        pacs.echo(node)
    assert info.value.kind == "config"
