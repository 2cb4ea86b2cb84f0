"""nginx in front of Orthanc, terminating HTTPS, as hospitals deploy DICOMweb.

Plain Python (no pytest). :class:`HttpsProxy` writes an nginx configuration into a folder and
runs ``nginx`` (Debian's ``nginx-light``, installed by ``scripts/test-services``) in the
foreground on free loopback ports, one HTTPS server per certificate it is given (the right
one, an expired one, one for another host, one from an unknown CA), each passing requests and
their Authorization header on to Orthanc's plain HTTP. Under ``/token/`` the right server
wants a bearer token instead, and logs in to Orthanc itself with a user of Orthanc's: a gateway
that turns tokens into Orthanc's basic authentication.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from tests.pacs.certs import Issued
from tests.pacs.orthanc_server import free_port, stop_process

INSTALL_HINT = ("install it with: sudo apt-get install -y nginx-light (or run "
                "./scripts/test-services as root)")


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        candidate = Path(folder) / "nginx"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


class HttpsProxy:
    """nginx on loopback ports: ``ports[name]`` serves the certificate ``certs[name]``."""

    def __init__(self, folder: str | Path, upstream_port: int, certs: dict[str, Issued], *,
                 token: str, upstream_login: tuple[str, str]) -> None:
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError(f"nginx is not installed; {INSTALL_HINT}")
        self.binary = binary
        self.folder = Path(folder)
        self.upstream_port = upstream_port
        self.certs = dict(certs)
        self.token = token
        self.upstream_login = upstream_login
        self.ports = {name: free_port() for name in certs}
        self.process: subprocess.Popen | None = None

    def url(self, name: str = "server", host: str = "127.0.0.1") -> str:
        """The DICOMweb URL of the server with certificate ``name``."""
        return f"https://{host}:{self.ports[name]}/dicom-web"

    def token_url(self, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.ports['server']}/token/dicom-web"

    def config(self) -> str:
        user, password = self.upstream_login
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        upstream = f"http://127.0.0.1:{self.upstream_port}"
        servers = []
        for name, issued in self.certs.items():
            token_location = ""
            if name == "server":
                token_location = f"""
        location /token/ {{
            if ($http_authorization != "Bearer {self.token}") {{ return 401; }}
            proxy_set_header Authorization "Basic {basic}";
            proxy_pass {upstream}/;
        }}"""
            servers.append(f"""
    server {{
        listen 127.0.0.1:{self.ports[name]} ssl;
        server_name localhost;
        ssl_certificate {issued.cert};
        ssl_certificate_key {issued.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_set_header Authorization $http_authorization;
            proxy_pass {upstream};
        }}{token_location}
    }}""")
        # As root, nginx would hand its workers to "nobody", who cannot use the private
        # temporary folders of a test.
        user = "user root;\n" if os.geteuid() == 0 else ""
        tmp = self.folder / "tmp"
        return f"""{user}daemon off;
worker_processes 1;
pid {self.folder}/nginx.pid;
error_log {self.folder}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_read_timeout 60s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{"".join(servers)}
}}
"""

    def start(self, timeout: float = 15.0) -> HttpsProxy:
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config())
        log = open(self.folder / "stderr.log", "wb")  # noqa: SIM115 - kept for the process
        self.process = subprocess.Popen([self.binary, "-p", str(self.folder), "-c", str(conf)],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited at start (status {self.process.returncode})"
                                   f":\n{self.log_tail()}")
            if all(self._listening(p) for p in self.ports.values()):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen within {timeout:.0f} s:\n{self.log_tail()}")

    @staticmethod
    def _listening(port: int) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(OSError):
                out += (self.folder / name).read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out) or "(no log)"


def https_get(url: str, ca: Path, headers: dict[str, str] | None = None) -> int:
    """The status of a GET through the proxy (the fixture's own check that it works)."""
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


__all__ = ["HttpsProxy", "INSTALL_HINT", "https_get", "nginx_binary"]
