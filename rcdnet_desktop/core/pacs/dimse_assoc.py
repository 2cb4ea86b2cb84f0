"""DICOM associations for :mod:`.dimse`: opening one (with failures in words), cancelling
one from another thread, releasing it and waiting for its thread.

No Qt here. A node with ``tls`` set is reached over DICOM TLS (:mod:`.tls`: TLS 1.2 or newer,
certificate and host name verified); a TLS failure is said in words, and so is a plain
connection that a TLS-only server broke off.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence

from rcdnet_desktop.core.pacs.cancel import on_cancel
from rcdnet_desktop.core.pacs.dimse_protocol import rejection_words
from rcdnet_desktop.core.pacs.nodes import PacsError, PacsNode
from rcdnet_desktop.core.pacs.tls import (
    broken_handshake,
    client_context,
    handshake_errors,
    speaks_tls,
    tls_failure,
)


def host(node: PacsNode) -> str:
    return f"{node.host}:{node.port}"


def new_ae(node: PacsNode, ae_title: str | None = None):
    from pynetdicom import AE

    ae = AE(ae_title=ae_title or node.calling_ae_title)
    ae.acse_timeout = node.timeout
    ae.dimse_timeout = node.timeout
    ae.network_timeout = node.timeout
    ae.connection_timeout = node.timeout
    ae.maximum_associations = 4
    return ae


def associate(node: PacsNode, ae, *, ext_neg=None, handlers=()):
    """Open an association; a PacsError in words when it cannot be opened."""
    from pynetdicom import evt

    node = node.checked()
    try:
        socket.getaddrinfo(node.host, node.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise PacsError(node, f"the host name {node.host!r} cannot be found (check its spelling "
                              "and the network connection)", "unreachable") from None
    context = client_context(node) if node.tls else None
    opened = threading.Event()
    all_handlers = [*handlers, (evt.EVT_CONN_OPEN, lambda _event: opened.set())]
    start = time.monotonic()
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=ext_neg,
                         evt_handlers=all_handlers,
                         tls_args=(context, node.host) if context is not None else None)
    if assoc.is_established:
        return assoc
    elapsed = time.monotonic() - start
    late = elapsed >= node.timeout * 0.9
    if assoc.is_rejected:
        raise PacsError(node, rejection_words(assoc, node), "rejected")
    for exc in handshake_errors(context):
        failure = tls_failure(node, exc, host(node))
        if failure is not None:
            raise failure
        if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
            raise broken_handshake(node, host(node), node.host, node.port)
    if not opened.is_set():
        if late:
            raise PacsError(node, f"no answer from {host(node)} within {node.timeout:g} s: the "
                                  "computer may be off, or a firewall in the way", "timeout")
        raise PacsError(node, f"nobody accepts connections on {host(node)}: is the PACS "
                              "running, and are the host and port right?", "unreachable")
    if late:
        raise PacsError(node, f"{host(node)} accepted the connection but did not answer the "
                              f"association request within {node.timeout:g} s (is this port a "
                              "DICOM service?)", "timeout")
    if context is None and speaks_tls(node.host, node.port, node.timeout):
        raise PacsError(node, f"{host(node)} expects DICOM TLS and broke off the plain "
                              "connection: turn TLS on for this node (--tls) and give its CA "
                              "(--ca FILE)", "tls")
    raise PacsError(node, f"{host(node)} broke off the connection before accepting it (is "
                          "this port a DICOM service?)", "aborted")


def lost(node: PacsNode, assoc, what: str, start: float, done: str = "") -> PacsError:
    """The error for an operation that ended without a final answer."""
    elapsed = time.monotonic() - start
    done = f" ({done})" if done else ""
    if elapsed >= node.timeout * 0.9 and not assoc.is_aborted:
        return PacsError(node, f"the PACS stopped answering during the {what}: no reply within "
                               f"{node.timeout:g} s{done}", "timeout")
    return PacsError(node, f"the PACS broke off the connection during the {what}{done}. A PACS "
                           "does this when it does not allow this app's AE title "
                           f"{node.calling_ae_title} to do it: check that the PACS lists "
                           f"{node.calling_ae_title} among its DICOM nodes and allows it this",
                     "aborted")


def release(assoc) -> None:
    with contextlib.suppress(Exception):
        if assoc.is_established:
            assoc.release()


def abort_on_cancel(assoc, cancel: threading.Event | None):
    """While inside, a set ``cancel`` aborts the association at once (from a small watcher
    thread); yields an event that tells whether it did."""

    def stop() -> None:
        with contextlib.suppress(Exception):
            assoc.abort()
        # wakes a request waiting for its next answer now, not after the DIMSE timeout
        # (pynetdicom reads (None, None) as "aborted")
        assoc.dimse.msg_queue.put((None, None))

    return on_cancel(cancel, stop)


def join(assoc, timeout: float = 10.0) -> None:
    """Wait for the association's thread to end (no handler runs after this)."""
    with contextlib.suppress(Exception):
        if assoc.is_alive():
            assoc.join(timeout)


__all__: Sequence[str] = ("abort_on_cancel", "associate", "new_ae", "host", "join", "lost",
                          "release")
