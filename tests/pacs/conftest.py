"""One Orthanc for the whole test run, holding ultrasound studies from pydicom-data.

Tests that need it take the ``orthanc`` fixture; without the Orthanc binary (or pydicom-data)
they are skipped with the reason, which ``pytest -rs`` prints. ``./scripts/test-services``
installs Orthanc, its DICOMweb plugin and dcmtk on Debian as root.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

# The viewer's fixtures (offscreen Qt, windows that clean up, no thread left running) for
# test_gui_pacs.py; the thread check also holds the networking code to its word.
from tests.gui.conftest import gui_settings, make_window, no_threads_left  # noqa: F401
from tests.pacs.orthanc_server import APP_AET, INSTALL_HINT, OrthancServer, orthanc_binary

ULTRASOUND_FILES = ("US1_UNCR.dcm", "US1_J2KR.dcm", "OBXXXX1A.dcm", "gdcm-US-ALOKA-16.dcm")
"""Real ultrasound files: study US1 (patient 13US1, two instances), OBXXXX1A (palette, two
regions) and the ALOKA 16-bit palette study: three patients, three studies."""

US1_PATIENT = "13US1"
US1_STUDY = "1.3.6.1.4.1.5962.1.2.13.20040826185059.5457"


def pydicom_data_file(name: str) -> Path:
    try:
        from pydicom.data import get_testdata_file
    except ImportError:  # pragma: no cover
        pytest.skip("pydicom is not installed")
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not available (install pydicom-data)")
    return Path(path)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> OrthancServer:
    """A running Orthanc on loopback ports with the ultrasound studies loaded."""
    if orthanc_binary() is None:
        pytest.skip(f"Orthanc is not installed; {INSTALL_HINT}")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), app_aet=APP_AET)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"Orthanc did not start: {exc}")
    try:
        for name in ULTRASOUND_FILES:
            server.upload(pydicom_data_file(name))
        yield server
    finally:
        server.stop()


@pytest.fixture
def dimse_node(orthanc):
    from rcdnet_desktop.core.pacs import PacsNode

    return PacsNode(name="Test Orthanc", ae_title=orthanc.aet, host="127.0.0.1",
                    port=orthanc.dicom_port, calling_ae_title=APP_AET, timeout=10,
                    storage_port=orthanc.scp_port)


@pytest.fixture
def web_node(orthanc):
    from rcdnet_desktop.core.pacs import PacsNode

    if not orthanc.has_dicomweb:
        pytest.skip("Orthanc's DICOMweb plugin is not installed (orthanc-dicomweb)")
    return PacsNode(name="Test DICOMweb", url=orthanc.dicomweb_url, timeout=10)


@pytest.fixture
def clean_study(orthanc):
    """Yields a list to which a test adds study UIDs it creates; they are deleted after."""
    created: list[str] = []
    yield created
    for uid in created:
        for study in orthanc.find("Study", {"StudyInstanceUID": uid}):
            with contextlib.suppress(Exception):
                orthanc.request("DELETE", f"/studies/{study['ID']}")


# --- the secure PACS: DICOM TLS, and DICOMweb behind HTTPS with a login ------------------------

SECURE_USER, SECURE_PASSWORD = "alice", "Orthanc-Test-Pw-7351"
"""Orthanc's registered user. The password is long and odd so that a scan for it cannot meet
it by chance."""
BEARER_TOKEN = "tok-5b1d9e0c7a4f4e2a"


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The test CA and its certificates (:func:`tests.pacs.certs.make_pki`)."""
    pytest.importorskip("cryptography", reason="the TLS tests make certificates with "
                                               "cryptography (pip install cryptography)")
    from tests.pacs.certs import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def secure_orthanc(tmp_path_factory, pki) -> OrthancServer:
    """An Orthanc whose DICOM port speaks TLS only (client certificates required) and whose
    REST API and DICOMweb want a login, with the ultrasound studies loaded."""
    from tests.pacs.orthanc_server import DicomTls

    if orthanc_binary() is None:
        pytest.skip(f"Orthanc is not installed; {INSTALL_HINT}")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc-tls"), app_aet=APP_AET,
                           tls=DicomTls(pki.server.cert, pki.server.key, pki.ca),
                           users={SECURE_USER: SECURE_PASSWORD})
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"Orthanc did not start with DICOM TLS: {exc}")
    try:
        for name in ULTRASOUND_FILES[:2]:
            server.upload(pydicom_data_file(name))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def https_proxy(tmp_path_factory, pki, secure_orthanc):
    """nginx terminating HTTPS in front of the secure Orthanc (one port per certificate)."""
    from tests.pacs.nginx_proxy import INSTALL_HINT as NGINX_HINT
    from tests.pacs.nginx_proxy import HttpsProxy, nginx_binary

    if nginx_binary() is None:
        pytest.skip(f"nginx is not installed; {NGINX_HINT}")
    if not secure_orthanc.has_dicomweb:
        pytest.skip("Orthanc's DICOMweb plugin is not installed (orthanc-dicomweb)")
    proxy = HttpsProxy(tmp_path_factory.mktemp("nginx"), secure_orthanc.http_port,
                       {"server": pki.server, "expired": pki.expired,
                        "wrong_host": pki.wrong_host, "untrusted": pki.untrusted},
                       token=BEARER_TOKEN, upstream_login=(SECURE_USER, SECURE_PASSWORD))
    try:
        proxy.start()
    except RuntimeError as exc:
        pytest.skip(f"nginx did not start: {exc}")
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def tls_node(secure_orthanc, pki):
    """The secure Orthanc over DICOM TLS, this app presenting its client certificate."""
    from rcdnet_desktop.core.pacs import PacsNode

    return PacsNode(name="Secure Orthanc", ae_title=secure_orthanc.aet, host="127.0.0.1",
                    port=secure_orthanc.dicom_port, calling_ae_title=APP_AET, timeout=10,
                    storage_port=secure_orthanc.scp_port, tls=True, ca_file=str(pki.ca),
                    cert_file=str(pki.client.cert), key_file=str(pki.client.key))


@pytest.fixture
def https_node(https_proxy, pki):
    """DICOMweb over HTTPS through nginx, logging in as Orthanc's user (password held in
    memory by the node)."""
    from rcdnet_desktop.core.pacs import PacsNode

    return PacsNode(name="Secure DICOMweb", url=https_proxy.url(), timeout=10,
                    ca_file=str(pki.ca), user=SECURE_USER).with_secret(SECURE_PASSWORD)


@pytest.fixture(autouse=True)
def no_secrets_from_outside(monkeypatch):
    """Secrets come only from where a test puts them: not the environment, not a keyring."""
    from rcdnet_desktop.core.pacs import credentials

    for name in (credentials.PASSWORD_ENV, credentials.TOKEN_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(credentials, "_keyring", lambda: None)
    credentials._session.clear()
