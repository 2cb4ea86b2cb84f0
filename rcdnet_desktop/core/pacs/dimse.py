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
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence

from rcdnet_desktop.core.errors import ExportError
from rcdnet_desktop.core.pacs.cache import PacsCache, Receiver
from rcdnet_desktop.core.pacs.nodes import PacsCancelled, PacsError, PacsNode
from rcdnet_desktop.core.pacs.query import Match, Query
from rcdnet_desktop.core.pacs.results import (
    ProgressCallback,
    RetrieveProgress,
    RetrieveResult,
    StoreResult,
    what_is,
)

VERIFICATION = "1.2.840.10008.1.1"

RETRIEVE_SOP_CLASSES: tuple[str, ...] = (
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.6",  # Ultrasound Image (retired)
    "1.2.840.10008.5.1.4.1.1.3",  # Ultrasound Multi-frame Image (retired)
    "1.2.840.10008.5.1.4.1.1.6.2",  # Enhanced US Volume
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray (presentation)
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray (processing)
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray (presentation)
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic
)
"""What a retrieve accepts: ultrasound, secondary captures, reports and the other objects a
breast study may hold (a study's other objects are fetched too, so the PACS reports no
failures; the viewer opens those it can read)."""

TRANSFER_SYNTAXES: tuple[str, ...] = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
)
"""Transfer syntaxes a retrieve accepts as they are (the readers decode all of them), so the
PACS need not convert."""

_STORE_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")

_OFTEN_COMPRESSED = RETRIEVE_SOP_CLASSES[:6]
"""Image classes that a C-GET offers once per transfer syntax: a PACS answers each presentation
context with one syntax, and one that cannot convert (Orthanc without its transcoding) can then
still send a JPEG 2000 image in the context that offers JPEG 2000."""


def _get_contexts() -> list[tuple[str, list[str]]]:
    """The presentation contexts of a C-GET (fewer than the 128 an association may hold)."""
    contexts = [(sop, [ts]) for sop in _OFTEN_COMPRESSED for ts in TRANSFER_SYNTAXES]
    contexts += [(sop, list(_STORE_SYNTAXES)) for sop in RETRIEVE_SOP_CLASSES
                 if sop not in _OFTEN_COMPRESSED]
    return contexts


# --- words ----------------------------------------------------------------------------------


def status_words(code: int | None, status=None) -> str:
    """A DIMSE status in plain words, with its code (and the PACS's comment, if any)."""
    if code is None:
        return "no status"
    ranges = [
        (0x0000, 0x0000, "success"),
        (0x0105, 0x0106, "an attribute or value the PACS does not accept"),
        (0x0110, 0x0110, "processing failure on the PACS"),
        (0x0111, 0x0111, "the object is already there"),
        (0x0112, 0x0112, "no such object"),
        (0x0117, 0x0117, "invalid object"),
        (0x0122, 0x0122, "the PACS does not support this kind of object"),
        (0x0124, 0x0124, "not authorised"),
        (0x0211, 0x0211, "the PACS does not support this operation"),
        (0x0213, 0x0213, "the PACS is out of resources"),
        (0xA700, 0xA7FF, "the PACS is out of resources (its disk may be full)"),
        (0xA801, 0xA801, "the PACS does not know the move destination"),
        (0xA900, 0xA9FF, "the data does not match what the PACS expects"),
        (0xB000, 0xB000, "some instances could not be sent"),
        (0xB006, 0xB007, "stored, with some values changed or left out"),
        (0xC000, 0xCFFF, "the PACS cannot process the request"),
        (0xFE00, 0xFE00, "cancelled"),
    ]
    words = next((w for lo, hi, w in ranges if lo <= code <= hi), "failure")
    comment = ""
    if status is not None:
        comment = str(status.get("ErrorComment", "") or "").strip()
    return f"{words} (status 0x{code:04X}{': ' + comment if comment else ''})"


def _rejection_words(assoc, node: PacsNode) -> str:
    prim = getattr(getattr(assoc, "acceptor", None), "primitive", None)
    if prim is None:
        return "the PACS rejected the connection"
    source, diagnostic = prim.result_source, prim.diagnostic
    for_now = " for now" if prim.result == 2 else ""
    if source == 1 and diagnostic == 3:
        return (f"the PACS rejected the connection{for_now}: it does not know this app's AE "
                f"title {node.calling_ae_title} (add it to the PACS's list of DICOM nodes, or "
                "correct the own AE title)")
    if source == 1 and diagnostic == 7:
        return (f"the PACS rejected the connection{for_now}: it does not answer to the AE "
                f"title {node.ae_title} (check the PACS's AE title)")
    if source == 1 and diagnostic == 2:
        return f"the PACS rejected the connection{for_now}: it does not speak this DICOM dialect"
    if source == 3:
        return (f"the PACS rejected the connection{for_now}: it is busy (too many "
                "connections); try again later")
    reason = getattr(prim, "reason_str", "") or "no reason given"
    return f"the PACS rejected the connection{for_now} ({reason})"


def _host(node: PacsNode) -> str:
    return f"{node.host}:{node.port}"


# --- associations -----------------------------------------------------------------------------


def _ae(node: PacsNode, ae_title: str | None = None):
    from pynetdicom import AE

    ae = AE(ae_title=ae_title or node.calling_ae_title)
    ae.acse_timeout = node.timeout
    ae.dimse_timeout = node.timeout
    ae.network_timeout = node.timeout
    ae.connection_timeout = node.timeout
    ae.maximum_associations = 4
    return ae


def _associate(node: PacsNode, ae, *, ext_neg=None, handlers=()):
    """Open an association; a PacsError in words when it cannot be opened."""
    from pynetdicom import evt

    node = node.checked()
    try:
        socket.getaddrinfo(node.host, node.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise PacsError(node, f"the host name {node.host!r} cannot be found (check its spelling "
                              "and the network connection)", "unreachable") from None
    opened = threading.Event()
    all_handlers = [*handlers, (evt.EVT_CONN_OPEN, lambda _event: opened.set())]
    start = time.monotonic()
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=ext_neg,
                         evt_handlers=all_handlers)
    if assoc.is_established:
        return assoc
    elapsed = time.monotonic() - start
    late = elapsed >= node.timeout * 0.9
    if assoc.is_rejected:
        raise PacsError(node, _rejection_words(assoc, node), "rejected")
    if not opened.is_set():
        if late:
            raise PacsError(node, f"no answer from {_host(node)} within {node.timeout:g} s: the "
                                  "computer may be off, or a firewall in the way", "timeout")
        raise PacsError(node, f"nobody accepts connections on {_host(node)}: is the PACS "
                              "running, and are the host and port right?", "unreachable")
    if late:
        raise PacsError(node, f"{_host(node)} accepted the connection but did not answer the "
                              f"association request within {node.timeout:g} s (is this port a "
                              "DICOM service?)", "timeout")
    raise PacsError(node, f"{_host(node)} broke off the connection before accepting it (is "
                          "this port a DICOM service?)", "aborted")


def _lost(node: PacsNode, assoc, what: str, start: float, done: str = "") -> PacsError:
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


def _release(assoc) -> None:
    with contextlib.suppress(Exception):
        if assoc.is_established:
            assoc.release()


@contextlib.contextmanager
def _abort_on_cancel(assoc, cancel: threading.Event | None) -> Iterator[threading.Event]:
    """While inside, a set ``cancel`` aborts the association at once (from a small watcher
    thread); yields an event that tells whether it did."""
    aborted = threading.Event()
    if cancel is None:
        yield aborted
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.05):
                if not done.is_set():
                    aborted.set()
                    with contextlib.suppress(Exception):
                        assoc.abort()
                    with contextlib.suppress(Exception):
                        # wakes a request waiting for its next answer now, not after the
                        # DIMSE timeout (pynetdicom reads (None, None) as "aborted")
                        assoc.dimse.msg_queue.put((None, None))
                return

    watcher = threading.Thread(target=watch, name="pacs-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield aborted
    finally:
        done.set()
        watcher.join(5)


def _join(assoc, timeout: float = 10.0) -> None:
    """Wait for the association's thread to end (no handler runs after this)."""
    with contextlib.suppress(Exception):
        if assoc.is_alive():
            assoc.join(timeout)


# --- operations -------------------------------------------------------------------------------


def echo(node: PacsNode) -> float:
    """C-ECHO ("test connection"); returns the round trip in seconds.

    Raises
    ------
    PacsError
        It could not be reached or did not answer (the message says why).
    """
    node = node.checked()
    ae = _ae(node)
    ae.add_requested_context(VERIFICATION)
    start = time.monotonic()
    assoc = _associate(node, ae)
    try:
        status = assoc.send_c_echo()
    finally:
        _release(assoc)
    if not status or "Status" not in status:
        raise _lost(node, assoc, "echo", start)
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
    ae = _ae(node)
    ae.add_requested_context(model)
    start = time.monotonic()
    assoc = _associate(node, ae)
    matches: list[Match] = []
    try:
        with _abort_on_cancel(assoc, cancel) as aborted:
            for status, identifier in assoc.send_c_find(q.dataset(), model):
                if aborted.is_set():
                    break
                if not status or "Status" not in status:
                    raise _lost(node, assoc, "search", start,
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
        _release(assoc)
        _join(assoc)
    return matches


def _identifier(match: Match):
    from pydicom.dataset import Dataset

    ds = Dataset()
    if match.level == "patient":
        ds.QueryRetrieveLevel = "PATIENT"
        ds.PatientID = match.patient_id
    elif match.level == "study" or not match.series_uid:
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = match.study_uid
    else:
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID = match.study_uid
        ds.SeriesInstanceUID = match.series_uid
    return ds


def _expected(targets: Sequence[Match]) -> int | None:
    counts = [m.instances for m in targets]
    return sum(c for c in counts if c is not None) if all(c is not None for c in counts) else None


class _Transfer:
    """Book-keeping of one retrieve: the receiver, counts, progress and the first problem."""

    def __init__(self, node: PacsNode, receiver: Receiver, expected: int | None,
                 progress: ProgressCallback | None, cancel: threading.Event | None) -> None:
        self.node = node
        self.receiver = receiver
        self.expected = expected
        self.progress = progress
        self.cancel = cancel
        self.local_failures: list[str] = []
        self.pacs_failed = 0
        self.problem = ""
        self._lock = threading.Lock()

    @property
    def received(self) -> int:
        return len(self.receiver.received)

    def report(self, text: str = "") -> None:
        if self.progress is not None:
            with contextlib.suppress(Exception):
                self.progress(RetrieveProgress(self.received, self.failed, self.expected, text))

    @property
    def failed(self) -> int:
        return self.pacs_failed + len(self.local_failures)

    def on_store(self, event) -> int:
        """C-STORE sub-operation handler (runs in the association's thread)."""
        if self.cancel is not None and self.cancel.is_set():
            return 0x0110  # processing failure: the retrieve is being cancelled
        try:
            data = event.encoded_dataset(include_meta=True)
            self.receiver.add_encoded(data, event.dataset)
        except ExportError as exc:
            with self._lock:
                self.local_failures.append(exc.reason)
            self.report()
            return 0xA700  # out of resources: the PACS counts it as failed
        except RuntimeError:
            return 0x0110
        except Exception as exc:  # noqa: BLE001 - an undecodable instance
            with self._lock:
                self.local_failures.append(f"an instance could not be read: {exc}")
            self.report()
            return 0xC000
        self.report()
        return 0x0000

    def note(self, problem: str) -> None:
        if not self.problem:
            self.problem = problem

    def result(self, cancelled: bool) -> RetrieveResult:
        problem = self.problem
        if self.local_failures and not problem:
            problem = (f"{len(self.local_failures)} instance(s) could not be kept here: "
                       f"{self.local_failures[0]}")
        if problem and not cancelled:
            problem = f"{self.node.label}: {problem}"
        return RetrieveResult(instances=list(self.receiver.received), failed=self.failed,
                              expected=self.expected, problem="" if cancelled else problem,
                              cancelled=cancelled)


def _final_status(transfer: _Transfer, what: str, code: int, status) -> None:
    """Note the problem a final C-GET/C-MOVE status reports (none for success)."""
    failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
    transfer.pacs_failed = max(transfer.pacs_failed, failed - len(transfer.local_failures))
    if code == 0x0000:
        return
    if code == 0xB000 or failed:
        n = transfer.received
        transfer.note(f"the {what} was incomplete: {failed} instance(s) failed, {n} received "
                      f"({status_words(code, status)})")
        return
    transfer.note(f"the PACS refused the {what}: {status_words(code, status)}")


def _run_retrieve(transfer: _Transfer, assoc, responses, what: str, start: float,
                  aborted: threading.Event) -> None:
    """Consume C-GET/C-MOVE responses, noting counts and the problem."""
    for status, _identifier in responses:
        if aborted.is_set():
            return
        if not status or "Status" not in status:
            n, expected = transfer.received, transfer.expected
            of = f" of {expected}" if expected is not None else ""
            err = _lost(transfer.node, assoc, what, start, f"after {n}{of} instance(s)")
            transfer.note(err.reason)
            return
        code = int(status.Status)
        if code == 0xFF00:
            remaining = status.get("NumberOfRemainingSuboperations")
            completed = status.get("NumberOfCompletedSuboperations")
            if transfer.expected is None and remaining is not None and completed is not None:
                with contextlib.suppress(TypeError, ValueError):
                    transfer.expected = int(remaining) + int(completed) + \
                        int(status.get("NumberOfFailedSuboperations", 0) or 0) + \
                        int(status.get("NumberOfWarningSuboperations", 0) or 0)
            transfer.report()
            continue
        if code == 0xFE00:
            transfer.note("the PACS cancelled the retrieve")
            return
        _final_status(transfer, what, code, status)
        return


def _send_retrieve(transfer: _Transfer, assoc, start: float, aborted: threading.Event,
                   send) -> None:
    """Send one C-GET/C-MOVE (``send()`` returns its responses) and consume the answers; an
    association aborted by a cancel before or while sending ends it quietly."""
    if aborted.is_set():
        return
    try:
        _run_retrieve(transfer, assoc, send(), "retrieve", start, aborted)
    except RuntimeError:  # the association is gone (cancel, or the PACS broke it off)
        if not aborted.is_set():
            transfer.note(_lost(transfer.node, assoc, "retrieve", start).reason)


def retrieve(node: PacsNode, targets: Sequence[Match], cache: PacsCache, *,
             progress: ProgressCallback | None = None,
             cancel: threading.Event | None = None) -> RetrieveResult:
    """Bring the studies or series ``targets`` into ``cache`` by C-GET or C-MOVE (as the node
    says); returns what came and, when not everything did, why.

    Raises
    ------
    PacsError
        Nothing could start: the connection, the storage SCP's port (C-MOVE), or the cache
        folder. Once instances flow, problems are reported in the result instead, and what
        was received is kept.
    """
    node = node.checked()
    if not targets:
        return RetrieveResult()
    if cancel is not None and cancel.is_set():
        return RetrieveResult(cancelled=True)
    try:
        with cache.receive() as receiver:
            transfer = _Transfer(node, receiver, _expected(targets), progress, cancel)
            if node.retrieve == "move":
                cancelled = _move(node, targets, transfer, cancel)
            else:
                cancelled = _get(node, targets, transfer, cancel)
    except ExportError as exc:
        raise PacsError(node, f"the cache folder cannot be written: {exc}", "failed") from exc
    result = transfer.result(cancelled)
    transfer.report("done")
    return result


def _get(node: PacsNode, targets: Sequence[Match], transfer: _Transfer,
         cancel: threading.Event | None) -> bool:
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelGet,
        StudyRootQueryRetrieveInformationModelGet,
    )

    ae = _ae(node)
    patient_level = any(m.level == "patient" for m in targets)
    model = (PatientRootQueryRetrieveInformationModelGet if patient_level
             else StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(model)
    roles = []
    for sop, syntaxes in _get_contexts():
        ae.add_requested_context(sop, syntaxes)
    for sop in RETRIEVE_SOP_CLASSES:
        roles.append(build_role(sop, scp_role=True))
    start = time.monotonic()
    assoc = _associate(node, ae, ext_neg=roles, handlers=[(evt.EVT_C_STORE, transfer.on_store)])
    try:
        with _abort_on_cancel(assoc, cancel) as aborted:
            for match in targets:
                _send_retrieve(transfer, assoc, start, aborted,
                               lambda m=match: assoc.send_c_get(_identifier(m), model))
                if transfer.problem or aborted.is_set() or not assoc.is_established:
                    break
    finally:
        _release(assoc)
        _join(assoc)
    return aborted.is_set()


def _move(node: PacsNode, targets: Sequence[Match], transfer: _Transfer,
          cancel: threading.Event | None) -> bool:
    from pynetdicom import evt
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelMove,
    )

    scp = _ae(node)
    for sop in RETRIEVE_SOP_CLASSES:
        scp.add_supported_context(sop, list(TRANSFER_SYNTAXES))
    scp.require_calling_aet = [node.ae_title]
    try:
        server = scp.start_server((node.storage_bind, node.storage_port), block=False,
                                  evt_handlers=[(evt.EVT_C_STORE, transfer.on_store)])
    except OSError as exc:
        why = "another program is using it" if exc.errno in (98, 48, 10048) else \
            (exc.strerror or str(exc))
        raise PacsError(node, f"cannot listen on port {node.storage_port} to receive the "
                              f"instances ({why}); choose another storage port, or retrieve "
                              "with C-GET", "config") from exc
    try:
        ae = _ae(node)
        patient_level = any(m.level == "patient" for m in targets)
        model = (PatientRootQueryRetrieveInformationModelMove if patient_level
                 else StudyRootQueryRetrieveInformationModelMove)
        ae.add_requested_context(model)
        start = time.monotonic()
        assoc = _associate(node, ae)
        try:
            with _abort_on_cancel(assoc, cancel) as aborted:
                for match in targets:
                    _send_retrieve(transfer, assoc, start, aborted,
                                   lambda m=match: assoc.send_c_move(
                                       _identifier(m), node.calling_ae_title, model))
                    if transfer.problem or aborted.is_set() or not assoc.is_established:
                        break
        finally:
            _release(assoc)
            _join(assoc)
    finally:
        server.shutdown()
    if transfer.problem and "move destination" in transfer.problem:
        transfer.problem = (f"{transfer.problem}: add this app's AE title "
                            f"{node.calling_ae_title} (this computer, port {node.storage_port}) "
                            "to the PACS's DICOM nodes, or retrieve with C-GET")
    elif transfer.problem and transfer.received == 0 and transfer.pacs_failed:
        transfer.problem += (f". The PACS could not send the instances to this app on port "
                             f"{node.storage_port}: can the PACS reach this computer there "
                             "(firewall)?")
    return aborted.is_set()


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
    ae = _ae(node)
    for sop in dict.fromkeys(str(ds.SOPClassUID) for ds in datasets):
        ae.add_requested_context(sop, list(_STORE_SYNTAXES))
    start = time.monotonic()
    assoc = _associate(node, ae)
    result = StoreResult()
    try:
        with _abort_on_cancel(assoc, cancel) as aborted:
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
                    raise _lost(node, assoc, f"store of the {what}", start, stored)
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
        _release(assoc)
        _join(assoc)
    return result


__all__: Sequence[str] = ("RETRIEVE_SOP_CLASSES", "TRANSFER_SYNTAXES", "echo", "find",
                          "retrieve", "status_words", "store")
