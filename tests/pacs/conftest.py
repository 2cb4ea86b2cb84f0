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
