"""TLS for both transports: the contexts, and what a failed handshake means in words.

No Qt here. :func:`client_context` is the one place where a secure connection's rules are
set, for DICOM (pynetdicom) and DICOMweb (requests) alike: TLS 1.2 or newer, the server's
certificate verified against the node's CA bundle (``ca_file``) or, without one, the system's
trusted certificates, its host name checked, and this computer's certificate presented when the
node has one. :func:`server_context` is the storage SCP's during a C-MOVE over TLS.

A TLS failure inside pynetdicom is only logged there; the contexts made here remember it
(:func:`handshake_errors`) so that :func:`tls_failure` can say what went wrong: a certificate
that is not trusted or has expired, a host name it was not made out to, a client certificate
the server wants or refuses, or a server that does not speak TLS on that port.
:func:`speaks_tls` tells, after a plain connection was broken off, whether the server expects
TLS there (one probe, not a retry of the operation).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from pathlib import Path

from rcdnet_desktop.core.pacs.nodes import PacsError, PacsNode

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                    "HTTP_REQUEST", "UNKNOWN_PROTOCOL")
"""OpenSSL's reasons when the other side answered, but not in TLS."""

_X509_EXPIRED, _X509_NOT_YET_VALID = 10, 9
_X509_UNTRUSTED = (2, 18, 19, 20, 21, 27)
_X509_WRONG_HOST = (62, 64)  # host name mismatch, IP address mismatch


class _WatchedSocket(ssl.SSLSocket):
    """An SSL socket that notes its TLS errors in its context (pynetdicom only logs them)."""

    def _note(self, exc: BaseException) -> None:
        errors = getattr(self.context, "handshake_errors", None)
        if errors is not None:
            errors.append(exc)

    def connect(self, address):
        try:
            return super().connect(address)
        except OSError as exc:
            self._note(exc)
            raise

    def recv(self, buflen: int = 1024, flags: int = 0):
        try:
            return super().recv(buflen, flags)
        except ssl.SSLError as exc:  # TLS 1.3: a refused client certificate shows here
            self._note(exc)
            raise


def _load(node: PacsNode, ctx: ssl.SSLContext, *, ca: bool) -> None:
    """Load the node's files into ``ctx``; a PacsError (kind ``config``) naming a bad one."""
    for what, path in (("CA file", node.ca_file if ca else ""), ("certificate file",
                                                                 node.cert_file),
                       ("key file", node.key_file)):
        if path and not Path(path).is_file():
            raise PacsError(node, f"the {what} {path} does not exist or is not a file",
                            "config")
    try:
        if ca and node.ca_file:
            ctx.load_verify_locations(cafile=node.ca_file)
        if node.cert_file:
            ctx.load_cert_chain(node.cert_file, node.key_file or None)
    except ssl.SSLError as exc:
        files = " and ".join(p for p in (node.ca_file if ca else "", node.cert_file,
                                         node.key_file) if p)
        raise PacsError(node, f"the TLS files {files} cannot be used: {_ssl_reason(exc)} "
                              "(PEM files are expected; does the key belong to the "
                              "certificate?)", "config") from None
    except OSError as exc:
        raise PacsError(node, f"the TLS files cannot be read: {exc.strerror or exc}",
                        "config") from None


def client_context(node: PacsNode) -> ssl.SSLContext:
    """The TLS client context for ``node`` (see the module's docstring).

    Raises
    ------
    PacsError
        Kind ``config``: a CA, certificate or key file is missing or unusable.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and host name
    ctx.minimum_version = MINIMUM_VERSION
    if node.ca_file:
        _load(node, ctx, ca=True)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        _load(node, ctx, ca=False)
    ctx.sslsocket_class = _WatchedSocket
    ctx.handshake_errors = []  # type: ignore[attr-defined]
    return ctx


def server_context(node: PacsNode) -> ssl.SSLContext:
    """The context of this app's storage SCP during a C-MOVE over TLS: it presents the node's
    certificate and accepts only a PACS whose certificate chains to the node's CA.

    Raises
    ------
    PacsError
        Kind ``config``: no certificate and key to present, or unusable files.
    """
    if not node.cert_file:
        raise PacsError(node, "a C-MOVE over TLS needs this computer's certificate and key "
                              "(--cert FILE --key FILE, or the node's certificate fields), "
                              "which the PACS checks when it sends the images; or retrieve "
                              "with C-GET", "config")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MINIMUM_VERSION
    ctx.verify_mode = ssl.CERT_REQUIRED
    if node.ca_file:
        _load(node, ctx, ca=True)
    else:
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        _load(node, ctx, ca=False)
    return ctx


def handshake_errors(ctx: ssl.SSLContext | None) -> list[BaseException]:
    """The TLS errors the connections of ``ctx`` met, first first."""
    return list(getattr(ctx, "handshake_errors", []) or [])


def ssl_cause(exc: BaseException | None, _seen: set[int] | None = None) -> BaseException | None:
    """The ssl error inside ``exc`` (requests and urllib3 wrap it several times), else None."""
    seen = _seen if _seen is not None else set()
    if exc is None or id(exc) in seen:
        return None
    seen.add(id(exc))
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        inner = [a for a in exc.args if isinstance(a, BaseException)]
        for a in inner:
            found = ssl_cause(a, seen)
            if found is not None:
                return found
        return exc
    candidates = [getattr(exc, "reason", None), exc.__cause__, exc.__context__,
                  *[a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)]]
    for c in candidates:
        if isinstance(c, BaseException):
            found = ssl_cause(c, seen)
            if found is not None:
                return found
    return None


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).replace("_", " ").lower()
    text = str(exc)
    return text.split("] ", 1)[-1][:160] if text else type(exc).__name__


def _ca_words(node: PacsNode) -> str:
    return (f"the CA file {node.ca_file}" if node.ca_file
            else "the system's trusted certificates")


def tls_failure(node: PacsNode, exc: BaseException, where: str) -> PacsError | None:
    """One sentence for a TLS failure talking to ``where`` (``host:port``); None when ``exc``
    holds no TLS error."""
    err = ssl_cause(exc)
    if err is None:
        return None
    return _words(node, err, where)


def broken_handshake(node: PacsNode, where: str, host: str, port: int) -> PacsError:
    """The server reset the connection during the TLS handshake: say whether it speaks TLS
    at all there (one probe)."""
    if not speaks_tls(host, port, node.timeout):
        return _not_tls(node, where)
    return PacsError(node, f"{where} broke off the TLS handshake: it refused this computer "
                           "or its certificate", "tls")


def _not_tls(node: PacsNode, where: str) -> PacsError:
    plain = ("write the URL with http://" if node.url
             else "turn TLS off for this node (no --tls)")
    return PacsError(node, f"{where} did not answer in TLS: it does not use TLS on this "
                           f"port; {plain}, or use the port of its TLS service", "tls")


def _words(node: PacsNode, err: BaseException, where: str) -> PacsError:
    if isinstance(err, ssl.SSLCertVerificationError):
        code = getattr(err, "verify_code", None)
        if code == _X509_EXPIRED:
            return PacsError(node, f"the certificate that {where} presented has expired: its "
                                   "administrator must renew it (nothing to change here)",
                             "tls")
        if code == _X509_NOT_YET_VALID:
            return PacsError(node, f"the certificate that {where} presented is not valid yet: "
                                   "check this computer's date and time", "tls")
        if code in _X509_WRONG_HOST:
            host = where.rsplit(":", 1)[0]
            return PacsError(node, f"the certificate that {where} presented is not made out to "
                                   f"{host}: connect with the host name written in the "
                                   "certificate, or ask for one that names "
                                   f"{host}", "tls")
        if code in _X509_UNTRUSTED:
            return PacsError(node, f"the certificate that {where} presented is not trusted: "
                                   f"it is not signed by a CA in {_ca_words(node)}; give the "
                                   "hospital's CA bundle (--ca FILE, or the node's CA file)",
                             "tls")
        return PacsError(node, f"the certificate that {where} presented could not be verified "
                               f"({getattr(err, 'verify_message', '') or _ssl_reason(err)})",
                         "tls")
    reason = str(getattr(err, "reason", "") or "").upper()
    text = str(err).lower()
    if any(r in reason for r in _NOT_TLS_REASONS) or "wrong version number" in text:
        return _not_tls(node, where)
    if "UNSUPPORTED_PROTOCOL" in reason or "PROTOCOL_VERSION" in reason:
        return PacsError(node, f"{where} offers only TLS older than 1.2, which this app "
                               "refuses: the server must be updated", "tls")
    if any(r in reason for r in ("CERTIFICATE_REQUIRED", "PEER_DID_NOT_RETURN",
                                 "BAD_CERTIFICATE", "UNKNOWN_CA", "HANDSHAKE_FAILURE",
                                 "CERTIFICATE_UNKNOWN", "ACCESS_DENIED")):
        if not node.cert_file:
            return PacsError(node, f"{where} asks for this computer's certificate (mutual "
                                   "TLS): give it with --cert FILE --key FILE (or the node's "
                                   "certificate fields)", "tls")
        return PacsError(node, f"{where} did not accept this computer's certificate "
                               f"{node.cert_file}: the server must trust the CA that signed "
                               f"it ({_ssl_reason(err)})", "tls")
    if isinstance(err, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return PacsError(node, f"{where} closed the connection during the TLS handshake: it "
                               "may not use TLS on this port, or it refused this computer",
                         "tls")
    return PacsError(node, f"the secure connection to {where} failed: {_ssl_reason(err)}",
                     "tls")


def speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether the server at ``host:port`` answers a TLS handshake (its certificate unchecked:
    this only asks which protocol it speaks)."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)) as raw, \
                probe.wrap_socket(raw, server_hostname=host):
            return True
    except ssl.SSLError as exc:
        # Anything but "not TLS" means it answered in TLS and then refused something (e.g.
        # this computer's missing certificate).
        reason = str(getattr(exc, "reason", "") or "").upper()
        return not (any(r in reason for r in _NOT_TLS_REASONS)
                    or isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError))
    except OSError:
        return False


__all__: Sequence[str] = ("MINIMUM_VERSION", "broken_handshake", "client_context",
                          "handshake_errors", "server_context", "speaks_tls", "ssl_cause",
                          "tls_failure")
