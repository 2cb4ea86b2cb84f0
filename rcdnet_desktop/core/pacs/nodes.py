"""PACS nodes: who the app talks to, checked before any connection, and the errors in words.

No Qt here. A :class:`PacsNode` is one configured server: a DICOM node (AE title, host, port:
C-ECHO, C-FIND, C-GET or C-MOVE, C-STORE through :mod:`.dimse`) or a DICOMweb service (base URL:
QIDO-RS, WADO-RS, STOW-RS through :mod:`.dicomweb`). The app connects to nothing else: there is
no default node, and a node is used only once the user has configured it (the viewer's PACS
settings, the CLI's ``--node`` from a config file, or ``AET@HOST:PORT`` given on the command
line).

The config file (TOML, :func:`load_nodes`; ``$RCDNET_PACS_CONFIG`` or
``~/.config/rcdnet-desktop/pacs.toml``) holds one table per node::

    [node.hospital]
    ae_title = "PACS"            # the PACS's AE title (called AE title)
    host = "pacs.example.org"
    port = 104
    calling_ae_title = "RCDNET"  # this app's own AE title, as the PACS knows it
    retrieve = "move"            # "get" (default) or "move" (to this app's storage SCP)
    storage_port = 11112         # where this app listens during a C-MOVE
    timeout = 30                 # seconds
    tls = true                   # DICOM over TLS (1.2 or newer; certificate and host name
    ca_file = "/etc/rcdnet/hospital-ca.pem"      # are verified against this CA bundle)
    cert_file = "/etc/rcdnet/this-computer.pem"  # optional: this computer's certificate
    key_file = "/etc/rcdnet/this-computer.key"   # and its key (mutual TLS)

    [node.web]
    url = "https://pacs.example.org/dicom-web"   # DICOMweb (QIDO/WADO/STOW) instead
    user = "alice"               # HTTP basic authentication; auth = "bearer" for a token
    ca_file = "/etc/rcdnet/hospital-ca.pem"      # else the system's trusted certificates

A password or token is best kept in the system keyring or given in ``$RCDNET_PACS_PASSWORD`` /
``$RCDNET_PACS_TOKEN`` (:mod:`.credentials`). A config file may hold one (``password = ...``
or ``token = ...``) only when its owner alone can read it (``chmod 600``, the rule of ssh and
libpq): otherwise it is refused. :func:`save_nodes` writes such a file, never with a secret.

Every failure is a :class:`PacsError` whose message names the node and says what happened in
plain words ("Hospital PACS (PACS@pacs.example.org:104): nobody accepts connections on
pacs.example.org:104 -- is the PACS running, and are the host and port right?").
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rcdnet_desktop.core.errors import RcdNetError
from rcdnet_desktop.core.pacs.secret import AUTH_KINDS, Secret

DEFAULT_CALLING_AE = "RCDNET"
DEFAULT_DICOM_PORT = 104
DEFAULT_STORAGE_PORT = 11112
DEFAULT_TIMEOUT = 30.0
TRANSPORTS = ("dimse", "dicomweb")
RETRIEVE_METHODS = ("get", "move")
CONFIG_ENV = "RCDNET_PACS_CONFIG"

_AE_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable ASCII except backslash


class PacsError(RcdNetError):
    """A PACS operation failed; the message names the node and the reason.

    Attributes
    ----------
    node : PacsNode or None
        The node it concerns.
    reason : str
        What happened, in plain words (without the node's name).
    kind : str
        A short machine-readable kind: ``unreachable``, ``timeout``, ``rejected``,
        ``aborted``, ``refused``, ``failed``, ``cancelled``, ``config``, ``tls`` (the
        secure connection could not be made: certificate, host name, TLS on one side only)
        or ``auth`` (the server refused the user, password or token: asking again with the
        same one is pointless).
    """

    def __init__(self, node: PacsNode | None, reason: str, kind: str = "failed") -> None:
        self.node = node
        self.reason = reason
        self.kind = kind
        super().__init__(f"{node.label}: {reason}" if node is not None else reason)


class PacsCancelled(PacsError):
    """The user cancelled the operation."""

    def __init__(self, node: PacsNode | None, reason: str = "cancelled") -> None:
        super().__init__(node, reason, "cancelled")


def check_ae_title(value: str, what: str = "AE title") -> str:
    """Return the AE title stripped, or raise ValueError saying what is wrong with it."""
    text = (value or "").strip()
    if not text:
        raise ValueError(f"the {what} is empty")
    if len(text) > 16:
        raise ValueError(f"the {what} {text!r} is longer than 16 characters")
    if not _AE_RE.match(text):
        raise ValueError(f"the {what} {text!r} may hold only letters, digits, spaces and "
                         "punctuation (no backslash)")
    return text


@dataclass(frozen=True)
class PacsNode:
    """One configured PACS (or other DICOM or DICOMweb server).

    Attributes
    ----------
    name : str
        What the user calls it ("Hospital PACS").
    ae_title : str
        The server's AE title (the *called* AE title), DICOM nodes only.
    host, port : str, int
        Where it listens, DICOM nodes only.
    calling_ae_title : str
        This app's own AE title, as the server must know it.
    url : str
        The DICOMweb base URL (QIDO-RS, WADO-RS and STOW-RS under it); when set, the node is a
        DICOMweb service and the DICOM fields are not used.
    retrieve : str
        ``"get"`` (C-GET over the query's own connection) or ``"move"`` (C-MOVE to this app's
        storage SCP, which listens on ``storage_port`` while the retrieve runs; the server
        must know ``calling_ae_title`` at this computer's address and that port).
    storage_port : int
        Port of this app's storage SCP during a C-MOVE.
    storage_bind : str
        Address the storage SCP listens on ("" = every interface of this computer).
    timeout : float
        Seconds to wait for a connection and for each answer.
    tls : bool
        DICOM over TLS (DICOM nodes; a DICOMweb node uses TLS when its URL is ``https://``).
    ca_file : str
        The CA bundle (PEM) that the server's certificate must chain to; empty: the system's
        trusted certificates.
    cert_file, key_file : str
        This computer's certificate and key (PEM), for servers that ask for one (mutual TLS);
        the key may be in ``cert_file``. A C-MOVE over TLS also presents them to the PACS
        that connects back.
    user : str
        DICOMweb user name (HTTP basic authentication).
    auth : str
        ``""`` (basic when ``user`` is set, else none), ``"basic"`` or ``"bearer"`` (a token).
    secret : Secret or None
        The password or token, held in memory only: never written by :meth:`to_dict`, never
        shown (see :mod:`.credentials` for where it is otherwise looked for).
    """

    name: str
    ae_title: str = ""
    host: str = ""
    port: int = DEFAULT_DICOM_PORT
    calling_ae_title: str = DEFAULT_CALLING_AE
    url: str = ""
    retrieve: str = "get"
    storage_port: int = DEFAULT_STORAGE_PORT
    storage_bind: str = ""
    timeout: float = DEFAULT_TIMEOUT
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    user: str = ""
    auth: str = ""
    secret: Secret | None = field(default=None, compare=False, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def transport(self) -> str:
        """``"dicomweb"`` when the node has a URL, else ``"dimse"``."""
        return "dicomweb" if self.url else "dimse"

    @property
    def address(self) -> str:
        """``AET@host:port`` or the DICOMweb URL."""
        if self.url:
            return self.url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"

    @property
    def uses_tls(self) -> bool:
        """The connection is encrypted: DICOM TLS, or an ``https://`` URL."""
        return self.url.lower().startswith("https://") if self.url else self.tls

    def with_secret(self, secret: Secret | str | None) -> PacsNode:
        """This node holding ``secret`` (in memory only)."""
        if isinstance(secret, str):
            secret = Secret(secret)
        return replace(self, secret=secret or None)

    @property
    def label(self) -> str:
        """How messages name the node: ``name (address)``, or the address alone."""
        if self.name and self.name != self.address:
            return f"{self.name} ({self.address})"
        return self.address

    def problems(self) -> list[str]:
        """What is wrong with the configuration, in words (empty when it is usable)."""
        out = []
        if not self.name.strip():
            out.append("the node has no name")
        if self.url:
            if not re.match(r"^https?://[^/\s]+", self.url):
                out.append(f"the DICOMweb URL {self.url!r} must start with http:// or https:// "
                           "and name a host")
            elif "@" in self.url.split("/")[2]:
                out.append("the DICOMweb URL holds a user name or password: give the user in "
                           "its own field (--user) and the password in the keyring or "
                           "$RCDNET_PACS_PASSWORD, never in the URL")
            if self.auth not in AUTH_KINDS:
                out.append(f"auth must be basic or bearer, not {self.auth!r}")
            if self.auth == "basic" and not self.user:
                out.append("basic authentication needs a user name")
            if self.tls and not self.uses_tls:
                out.append("a DICOMweb service uses TLS when its URL starts with https://: "
                           "write it so")
        else:
            if self.user or self.auth:
                out.append("a user name or token applies to DICOMweb nodes only")
            try:
                check_ae_title(self.ae_title, "PACS's AE title")
            except ValueError as exc:
                out.append(str(exc))
            if not self.host.strip():
                out.append("the host is empty")
            elif any(c.isspace() for c in self.host.strip()):
                out.append(f"the host {self.host!r} contains spaces")
            if not 1 <= int(self.port) <= 65535:
                out.append(f"the port {self.port} is not between 1 and 65535")
            if self.retrieve not in RETRIEVE_METHODS:
                out.append(f"retrieve must be one of {', '.join(RETRIEVE_METHODS)}, "
                           f"not {self.retrieve!r}")
            if self.retrieve == "move" and not 1 <= int(self.storage_port) <= 65535:
                out.append(f"the storage port {self.storage_port} is not between 1 and 65535")
        try:
            check_ae_title(self.calling_ae_title, "own AE title")
        except ValueError as exc:
            out.append(str(exc))
        if not self.timeout > 0:
            out.append("the timeout must be more than 0 seconds")
        if self.key_file and not self.cert_file:
            out.append("a key file needs its certificate file")
        return out

    def checked(self) -> PacsNode:
        """This node with its fields trimmed; raises :class:`PacsError` (kind ``config``)
        naming every problem."""
        node = replace(self, name=self.name.strip(), ae_title=self.ae_title.strip(),
                       host=self.host.strip(), calling_ae_title=self.calling_ae_title.strip(),
                       url=self.url.strip().rstrip("/"), storage_bind=self.storage_bind.strip(),
                       ca_file=_path(self.ca_file), cert_file=_path(self.cert_file),
                       key_file=_path(self.key_file), user=self.user.strip(),
                       auth=self.auth.strip().lower())
        problems = node.problems()
        if problems:
            raise PacsError(node, "; ".join(problems), "config")
        return node

    def to_dict(self) -> dict[str, Any]:
        """Plain values (settings, config files, JSON); never the secret."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in _NOT_WRITTEN}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "") -> PacsNode:
        """A node from plain values (unknown keys kept in ``extra``, wrong types refused).

        Raises
        ------
        ValueError
            A value of the wrong type (the message names the key).
        """
        kinds = {f.name: _KINDS.get(f.name, str) for f in fields(cls)
                  if f.name not in _NOT_WRITTEN}
        values: dict[str, Any] = {"name": str(d.get("name") or name)}
        extra = {}
        for key, value in d.items():
            if key == "name":
                continue
            if key in SECRET_KEYS:
                if not isinstance(value, str):
                    raise ValueError(f"{key} must be text")
                values["secret"] = Secret(value) if value else None
                continue
            if key not in kinds:
                extra[key] = value
                continue
            kind = kinds[key]
            values[key] = _convert(key, value, kind)
        return cls(**values, extra=extra)


_KINDS: dict[str, type] = {"port": int, "storage_port": int, "timeout": float, "tls": bool}
_NOT_WRITTEN = ("secret", "extra")
SECRET_KEYS = ("password", "token")
"""Keys of a config file's node table that hold a secret (see :func:`load_nodes`)."""


def _path(text: str) -> str:
    text = (text or "").strip()
    return os.path.expanduser(text) if text else ""


def _convert(key: str, value: Any, kind: type) -> Any:
    bad = ValueError(f"{key} = {value!r} is not a valid "
                     + {int: "whole number", float: "number", str: "text",
                        bool: "true or false"}[kind])
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise bad
    if isinstance(value, bool):
        raise bad
    if kind is str:
        if not isinstance(value, str | int | float):
            raise bad
        return str(value)
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad from None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise bad from None


_ADDRESS_RE = re.compile(r"^(?P<aet>[^@]{1,16})@(?P<host>\[[^\]]+\]|[^:\s]+):(?P<port>\d{1,5})$")


def parse_address(text: str, *, calling_ae_title: str = DEFAULT_CALLING_AE,
                  name: str = "") -> PacsNode:
    """A node from ``AET@HOST:PORT`` (``[v6-address]`` in brackets).

    Raises
    ------
    PacsError
        Kind ``config``: not of that form, or a bad AE title or port.
    """
    m = _ADDRESS_RE.match((text or "").strip())
    if m is None:
        raise PacsError(None, f"{text!r} is not a DICOM node address: write it AET@HOST:PORT, "
                              "e.g. PACS@pacs.example.org:104", "config")
    host = m["host"].strip("[]")
    node = PacsNode(name=name or text.strip(), ae_title=m["aet"], host=host, port=int(m["port"]),
                    calling_ae_title=calling_ae_title)
    return node.checked()


def default_config_path() -> Path:
    """``$RCDNET_PACS_CONFIG``, else ``$XDG_CONFIG_HOME/rcdnet-desktop/pacs.toml``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rcdnet-desktop" / "pacs.toml"


def load_nodes(path: str | Path | None = None, *, missing_ok: bool = True) -> list[PacsNode]:
    """The nodes of a TOML config file, in file order (see the module's docstring).

    Parameters
    ----------
    path : str or Path, optional
        The file; :func:`default_config_path` when None.
    missing_ok : bool
        A missing file gives no nodes instead of an error.

    Raises
    ------
    PacsError
        Kind ``config``: the file cannot be read or parsed, a node in it is invalid (the
        message names the file and the node), or it holds a password or token while others
        than its owner may read it.
    """
    import tomllib

    path = Path(path) if path is not None else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        if missing_ok:
            return []
        raise PacsError(None, f"the PACS config file {path} does not exist", "config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PacsError(None, f"cannot read the PACS config file {path}: {exc}",
                        "config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PacsError(None, f"the PACS config file {path} is not valid TOML: {exc}",
                        "config") from exc
    table = data.get("node", {})
    if not isinstance(table, dict):
        raise PacsError(None, f"{path}: [node.NAME] tables expected", "config")
    if any(isinstance(v, dict) and any(k in v for k in SECRET_KEYS) for v in table.values()):
        check_private(path)
    nodes = []
    for name, values in table.items():
        if not isinstance(values, dict):
            raise PacsError(None, f"{path}: node {name!r} must be a table", "config")
        try:
            node = PacsNode.from_dict(values, name=str(values.get("name") or name))
        except ValueError as exc:
            raise PacsError(None, f"{path}: node {name!r}: {exc}", "config") from exc
        try:
            nodes.append(node.checked())
        except PacsError as exc:
            raise PacsError(None, f"{path}: node {name!r}: {exc.reason}", "config") from exc
    return nodes


def check_private(path: Path) -> None:
    """Refuse a file holding a secret unless only its owner can read it.

    The rule of ssh and libpq: the mode grants the group and others nothing, and the file
    belongs to this user (or to root). Not checked on Windows, whose permissions are ACLs.

    Raises
    ------
    PacsError
        Kind ``config``, saying what to run.
    """
    if os.name == "nt":
        return
    st = path.stat()
    if st.st_mode & 0o077:
        raise PacsError(None, f"the PACS config file {path} holds a password or token but "
                              f"others can read it (mode {st.st_mode & 0o777:03o}); make it "
                              f"private with: chmod 600 {path} -- or keep the secret in the "
                              "keyring instead", "config")
    if st.st_uid not in (os.getuid(), 0):
        raise PacsError(None, f"the PACS config file {path} holds a password or token but "
                              "belongs to another user; it is not used", "config")


def save_nodes(nodes: Sequence[PacsNode], path: str | Path | None = None) -> Path:
    """Write ``nodes`` as a config file that :func:`load_nodes` reads (atomically, readable
    by its owner only); never a password or token, which stay in the keyring or the
    environment. Returns the path (:func:`default_config_path` when None)."""
    from rcdnet_desktop.core.atomic import atomic_write

    path = Path(path) if path is not None else default_config_path()
    lines = []
    for node in nodes:
        lines.append(f"[node.{_toml_key(node.name)}]")
        for key, value in node.to_dict().items():
            if key == "name" or value == _DEFAULTS.get(key):
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    data = "\n".join(lines).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)

    written = atomic_write(path, lambda fh: fh.write(data), overwrite=True)
    if os.name != "nt":  # it names servers and users: nobody else's business
        os.chmod(written, 0o600)
    return written


_DEFAULTS = {f.name: f.default for f in fields(PacsNode) if f.name not in ("name", "extra")}


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_value(name)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    import json

    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def find_node(nodes: Sequence[PacsNode], name: str) -> PacsNode:
    """The node called ``name`` (case-insensitive), or a PacsError listing the names."""
    for node in nodes:
        if node.name.lower() == name.strip().lower():
            return node
    known = ", ".join(n.name for n in nodes) or "none configured"
    raise PacsError(None, f"no PACS node is called {name!r} (known: {known})", "config")


__all__: Sequence[str] = (
    "DEFAULT_CALLING_AE",
    "DEFAULT_DICOM_PORT",
    "DEFAULT_STORAGE_PORT",
    "DEFAULT_TIMEOUT",
    "PacsCancelled",
    "PacsError",
    "PacsNode",
    "SECRET_KEYS",
    "check_ae_title",
    "check_private",
    "default_config_path",
    "find_node",
    "load_nodes",
    "parse_address",
    "save_nodes",
)
