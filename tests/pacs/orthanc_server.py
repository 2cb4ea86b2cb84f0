"""A throw-away Orthanc for the tests, the benchmark and demonstrations.

Plain Python (no pytest): :class:`OrthancServer` writes a configuration into a temporary
folder, starts the ``Orthanc`` binary on free loopback ports with its own storage folder and
the DICOMweb plugin, waits until its REST API answers, and stops it again. Its REST API is
only reachable from this machine (``RemoteAccessAllowed`` false) and needs no password.

The configuration knows one modality, the app's own storage SCP (``RCDNET`` on
``127.0.0.1:<scp_port>``), the destination of C-MOVE; C-FIND, C-GET and C-MOVE are allowed only
to it, so another calling AE title is refused (the "wrong AE title" case). A second modality,
``READONLY``, may query but not store (the "store rejected by the PACS" case: Orthanc breaks off
the association).

With ``tls`` (:class:`DicomTls`) its DICOM port speaks DICOM TLS only, presents the given
certificate, trusts the given CA for the certificates of the computers that connect (which it
requires) and connects over TLS to the app's storage SCP for C-MOVE. With ``users`` its REST
API and DICOMweb want HTTP basic authentication by one of them (the helpers below log in as
the first).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ORTHANC_AET = "ORTHANC"
APP_AET = "RCDNET"
READ_ONLY_AET = "READONLY"
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc", "/usr/local/share/orthanc/plugins")
INSTALL_HINT = ("install it with: sudo apt-get install -y orthanc orthanc-dicomweb dcmtk "
                "(or run ./scripts/test-services as root)")


@dataclass(frozen=True)
class DicomTls:
    """Orthanc's DICOM TLS files (PEM)."""

    cert: Path
    key: Path
    trusted: Path
    """The CA bundle of the certificates Orthanc accepts from the other side."""
    remote_certificate_required: bool = True


def orthanc_binary() -> str | None:
    """The Orthanc executable (Debian puts it in /usr/sbin, outside a user's PATH)."""
    found = shutil.which("Orthanc")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/local/bin"):
        candidate = Path(folder) / "Orthanc"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def dicomweb_plugin() -> str | None:
    for folder in PLUGIN_DIRS:
        for name in ("libOrthancDicomWeb.so",):
            candidate = Path(folder) / name
            if candidate.exists():
                return str(candidate)
        matches = sorted(Path(folder).glob("libOrthancDicomWeb.so*")) if Path(folder).is_dir() \
            else []
        if matches:
            return str(matches[0])
    return None


def _die_with_parent() -> None:
    """In the child, before Orthanc starts: on Linux, be stopped when the process that started
    it dies (a test run killed by a timeout must not leave a server running)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate a test service politely, then kill it if it does not stop within 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OrthancServer:
    """Orthanc on free loopback ports; use as a context manager or call start()/stop()."""

    def __init__(self, folder: str | Path | None = None, *, scp_port: int | None = None,
                 app_aet: str = APP_AET, tls: DicomTls | None = None,
                 users: dict[str, str] | None = None) -> None:
        binary = orthanc_binary()
        if binary is None:
            raise FileNotFoundError(f"the Orthanc binary is not installed; {INSTALL_HINT}")
        self.binary = binary
        self.plugin = dicomweb_plugin()
        self._own_folder = folder is None
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(
            prefix="rcdnet-orthanc-"))
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.scp_port = scp_port if scp_port is not None else free_port()
        self.aet = ORTHANC_AET
        self.app_aet = app_aet
        self.process: subprocess.Popen | None = None
        self.log_path = self.folder / "orthanc.log"
        self.tls = tls
        self.users = dict(users or {})

    # --- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def has_dicomweb(self) -> bool:
        return self.plugin is not None

    def config(self) -> dict:
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        cfg = {
            "Name": "rcdnet-test-orthanc",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "DicomCheckCalledAet": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "DicomServerEnabled": True,
            "DicomModalities": {
                "rcdnet": {"AET": self.app_aet, "Host": "127.0.0.1", "Port": self.scp_port},
                "readonly": {"AET": READ_ONLY_AET, "Host": "127.0.0.1", "Port": self.scp_port,
                             "AllowStore": False},
            },
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": False,  # only the known modalities may store
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomCheckModalityHost": False,
            "UnknownSopClassAccepted": False,
            "DicomScpTimeout": 30,
            "StableAge": 1,
            "SaveJobs": False,
            "ConcurrentJobs": 2,
            "Plugins": [self.plugin] if self.plugin else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True,
                         "Host": f"127.0.0.1:{self.http_port}", "Ssl": False},
        }
        if self.tls is not None:
            cfg.update({"DicomTlsEnabled": True, "DicomTlsCertificate": str(self.tls.cert),
                        "DicomTlsPrivateKey": str(self.tls.key),
                        "DicomTlsTrustedCertificates": str(self.tls.trusted),
                        "DicomTlsRemoteCertificateRequired":
                            self.tls.remote_certificate_required})
            for modality in cfg["DicomModalities"].values():
                modality["UseDicomTls"] = True
        if self.users:
            cfg.update({"AuthenticationEnabled": True, "RegisteredUsers": self.users})
        return cfg

    @property
    def authorization(self) -> dict[str, str]:
        """The header that logs the helpers in (none without users)."""
        if not self.users:
            return {}
        user, password = next(iter(self.users.items()))
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    # --- life ----------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> OrthancServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "orthanc.json"
        config.write_text(json.dumps(self.config(), indent=2))
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the process's life
        self.process = subprocess.Popen([self.binary, str(config)], stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.folder,
                                        start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start (status {self.process.returncode})"
                                   f":\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.get("/system")
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> OrthancServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- REST ----------------------------------------------------------------------------

    def request(self, method: str, path: str, data: bytes | None = None,
                content_type: str = "application/json"):
        headers = {"Content-Type": content_type} if data else {}
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={**headers, **self.authorization})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def get(self, path: str):
        return self.request("GET", path)

    def upload(self, path_or_bytes: str | Path | bytes) -> dict:
        """Store one DICOM file through the REST API; returns Orthanc's answer."""
        data = (path_or_bytes if isinstance(path_or_bytes, bytes)
                else Path(path_or_bytes).read_bytes())
        return self.request("POST", "/instances", data, "application/dicom")

    def delete_all(self) -> None:
        for patient in self.get("/patients"):
            self.request("DELETE", f"/patients/{patient}")

    def find(self, level: str, query: dict) -> list[dict]:
        """Orthanc's own /tools/find, expanded."""
        body = json.dumps({"Level": level, "Query": query, "Expand": True}).encode()
        return self.request("POST", "/tools/find", body)

    def instances_of_study(self, study_uid: str) -> list[dict]:
        """Every instance Orthanc holds in the study, with its main tags."""
        studies = self.find("Study", {"StudyInstanceUID": study_uid})
        out = []
        for study in studies:
            for instance in self.get(f"/studies/{study['ID']}/instances"):
                tags = self.get(f"/instances/{instance['ID']}/simplified-tags")
                out.append(tags)
        return out
