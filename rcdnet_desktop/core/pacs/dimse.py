"""DICOM networking with pynetdicom: C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE.

No Qt here. Every function opens one association to the node, does its work and releases it;
none keeps a connection open. They block, so the viewer calls them from a worker thread;
``cancel`` (a :class:`threading.Event`) stops them from any thread within a fraction of a
second by aborting the association. Failures raise
:class:`~rcdnet_desktop.core.pacs.nodes.PacsError` naming the node and saying what happened:
the host cannot be found, nobody listens on that port, no answer within the timeout, the PACS
rejected the association (and why: our AE title unknown, its own AE title wrong, busy), broke
it off, or refused the request (with the DICOM status in words).

Retrieves (:func:`retrieve`) write into a :class:`~rcdnet_desktop.core.pacs.cache.PacsCache`
through its staging folder, so the cache only ever holds complete instances; what was
received before a failure or a cancel is kept and returned with the problem in words.
C-MOVE starts this app's own storage SCP (``calling_ae_title`` on ``storage_port``) for the
time of the retrieve only, and accepts instances only from the node's AE title.

Echo, find and store are here; retrieves in :mod:`.dimse_retrieve`, associations (opening,
cancelling, failures in words) in :mod:`.dimse_assoc`, the negotiated SOP classes and transfer
syntaxes and the statuses in words in :mod:`.dimse_protocol`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from rcdnet_desktop.core.pacs.dimse_assoc import (
    abort_on_cancel,
    associate,
    join,
    lost,
    new_ae,
    release,
)
from rcdnet_desktop.core.pacs.dimse_protocol import STORE_SYNTAXES, VERIFICATION, status_words
from rcdnet_desktop.core.pacs.dimse_retrieve import retrieve
from rcdnet_desktop.core.pacs.nodes import PacsCancelled, PacsError, PacsNode
from rcdnet_desktop.core.pacs.query import Match, Query
from rcdnet_desktop.core.pacs.results import StoreResult, what_is


def echo(node: PacsNode) -> float:
    """C-ECHO ("test connection"); returns the round trip in seconds.

    Raises
    ------
    PacsError
        It could not be reached or did not answer (the message says why).
    """
    node = node.checked()
    ae = new_ae(node)
    ae.add_requested_context(VERIFICATION)
    start = time.monotonic()
    assoc = associate(node, ae)
    try:
        status = assoc.send_c_echo()
    finally:
        release(assoc)
    if not status or "Status" not in status:
        raise lost(node, assoc, "echo", start)
    if status.Status != 0:
        raise PacsError(node, f"the PACS answered the echo with {status_words(status.Status)}",
                        "refused")
    return time.monotonic() - start


def find(node: PacsNode, query: Query, *, cancel: threading.Event | None = None,
         limit: int | None = None) -> list[Match]:
    """C-FIND at the query's level; the matches in the PACS's order.

    Raises
    ------
    PacsError
        Connection problems, or the PACS refused the search (the status in words).
    PacsCancelled
        ``cancel`` was set.
    ValueError
        The query is not valid (bad dates...), before any connection.
    """
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelFind,
    )

    q = query.checked()
    node = node.checked()
    model = (PatientRootQueryRetrieveInformationModelFind if q.level == "patient"
             else StudyRootQueryRetrieveInformationModelFind)
    ae = new_ae(node)
    ae.add_requested_context(model)
    start = time.monotonic()
    assoc = associate(node, ae)
    matches: list[Match] = []
    try:
        with abort_on_cancel(assoc, cancel) as aborted:
            for status, identifier in assoc.send_c_find(q.dataset(), model):
                if aborted.is_set():
                    break
                if not status or "Status" not in status:
                    raise lost(node, assoc, "search", start,
                                f"{len(matches)} found before" if matches else "")
                code = int(status.Status)
                if code in (0xFF00, 0xFF01):
                    if identifier is not None:
                        matches.append(Match.from_dataset(identifier, q.level))
                    if limit is not None and len(matches) >= limit:
                        assoc.abort()
                        break
                    continue
                if code == 0x0000:
                    break
                if code == 0xFE00:
                    raise PacsCancelled(node, "the PACS cancelled the search")
                raise PacsError(node, f"the PACS refused the search: {status_words(code, status)}",
                                "refused")
        if aborted.is_set():
            raise PacsCancelled(node, "search cancelled")
    finally:
        release(assoc)
        join(assoc)
    return matches


def store(node: PacsNode, datasets: Sequence, *,
          cancel: threading.Event | None = None) -> StoreResult:
    """C-STORE each data set (in one association); returns what was stored and refused.

    Raises
    ------
    PacsError
        The connection could not be made or broke off, or the PACS accepts none of these kinds
        of object; what was stored before is named in the message.
    """
    node = node.checked()
    if not datasets:
        return StoreResult()
    ae = new_ae(node)
    for sop in dict.fromkeys(str(ds.SOPClassUID) for ds in datasets):
        ae.add_requested_context(sop, list(STORE_SYNTAXES))
    start = time.monotonic()
    assoc = associate(node, ae)
    result = StoreResult()
    try:
        with abort_on_cancel(assoc, cancel) as aborted:
            for ds in datasets:
                if aborted.is_set():
                    break
                what = what_is(ds)
                try:
                    status = assoc.send_c_store(ds)
                except ValueError:
                    result.refused.append(f"the {what}: the PACS does not accept this kind of "
                                          "object")
                    continue
                if not status or "Status" not in status:
                    stored = f"{len(result.stored)} stored before" if result.stored else ""
                    raise lost(node, assoc, f"store of the {what}", start, stored)
                code = int(status.Status)
                if code == 0x0000:
                    result.stored.append(str(ds.SOPInstanceUID))
                elif 0xB000 <= code <= 0xBFFF:
                    result.stored.append(str(ds.SOPInstanceUID))
                    result.warnings.append(f"the {what}: {status_words(code, status)}")
                else:
                    result.refused.append(f"the {what}: {status_words(code, status)}")
        if aborted.is_set():
            raise PacsCancelled(node, f"sending cancelled ({len(result.stored)} stored before)")
    finally:
        release(assoc)
        join(assoc)
    return result


__all__: Sequence[str] = ("echo", "find", "retrieve", "store")
