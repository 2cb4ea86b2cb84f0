"""C-GET and C-MOVE into the cache, for :mod:`.dimse`.

No Qt here. Instances arrive through the cache's :class:`~rcdnet_desktop.core.pacs.cache.Receiver`
(whole files only); the PACS's answers are counted, reported as progress, and a problem is noted
in words; what was received before a failure or a cancel is kept. C-MOVE starts this app's own
storage SCP for the time of the retrieve only, accepting instances from the node's AE title
(over TLS when the node uses TLS, presenting the node's certificate and accepting only a PACS
whose certificate chains to the node's CA).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence

from rcdnet_desktop.core.errors import ExportError
from rcdnet_desktop.core.pacs.cache import PacsCache, Receiver
from rcdnet_desktop.core.pacs.dimse_assoc import (
    abort_on_cancel,
    associate,
    join,
    lost,
    new_ae,
    release,
)
from rcdnet_desktop.core.pacs.dimse_protocol import (
    RETRIEVE_SOP_CLASSES,
    TRANSFER_SYNTAXES,
    get_contexts,
    status_words,
)
from rcdnet_desktop.core.pacs.nodes import PacsError, PacsNode
from rcdnet_desktop.core.pacs.query import Match
from rcdnet_desktop.core.pacs.results import ProgressCallback, RetrieveProgress, RetrieveResult
from rcdnet_desktop.core.pacs.tls import server_context


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
            err = lost(transfer.node, assoc, what, start, f"after {n}{of} instance(s)")
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
            transfer.note(lost(transfer.node, assoc, "retrieve", start).reason)


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

    ae = new_ae(node)
    patient_level = any(m.level == "patient" for m in targets)
    model = (PatientRootQueryRetrieveInformationModelGet if patient_level
             else StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(model)
    roles = []
    for sop, syntaxes in get_contexts():
        ae.add_requested_context(sop, syntaxes)
    for sop in RETRIEVE_SOP_CLASSES:
        roles.append(build_role(sop, scp_role=True))
    start = time.monotonic()
    assoc = associate(node, ae, ext_neg=roles, handlers=[(evt.EVT_C_STORE, transfer.on_store)])
    try:
        with abort_on_cancel(assoc, cancel) as aborted:
            for match in targets:
                _send_retrieve(transfer, assoc, start, aborted,
                               lambda m=match: assoc.send_c_get(_identifier(m), model))
                if transfer.problem or aborted.is_set() or not assoc.is_established:
                    break
    finally:
        release(assoc)
        join(assoc)
    return aborted.is_set()


def _move(node: PacsNode, targets: Sequence[Match], transfer: _Transfer,
          cancel: threading.Event | None) -> bool:
    from pynetdicom import evt
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelMove,
    )

    scp = new_ae(node)
    for sop in RETRIEVE_SOP_CLASSES:
        scp.add_supported_context(sop, list(TRANSFER_SYNTAXES))
    scp.require_calling_aet = [node.ae_title]
    context = server_context(node) if node.tls else None
    try:
        server = scp.start_server((node.storage_bind, node.storage_port), block=False,
                                  evt_handlers=[(evt.EVT_C_STORE, transfer.on_store)],
                                  ssl_context=context)
    except OSError as exc:
        why = "another program is using it" if exc.errno in (98, 48, 10048) else \
            (exc.strerror or str(exc))
        raise PacsError(node, f"cannot listen on port {node.storage_port} to receive the "
                              f"instances ({why}); choose another storage port, or retrieve "
                              "with C-GET", "config") from exc
    try:
        ae = new_ae(node)
        patient_level = any(m.level == "patient" for m in targets)
        model = (PatientRootQueryRetrieveInformationModelMove if patient_level
                 else StudyRootQueryRetrieveInformationModelMove)
        ae.add_requested_context(model)
        start = time.monotonic()
        assoc = associate(node, ae)
        try:
            with abort_on_cancel(assoc, cancel) as aborted:
                for match in targets:
                    _send_retrieve(transfer, assoc, start, aborted,
                                   lambda m=match: assoc.send_c_move(
                                       _identifier(m), node.calling_ae_title, model))
                    if transfer.problem or aborted.is_set() or not assoc.is_established:
                        break
        finally:
            release(assoc)
            join(assoc)
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
    elif transfer.problem and transfer.received == 0 and node.tls:
        transfer.problem += (f". Over TLS the PACS connects back to this app on port "
                             f"{node.storage_port} and must trust its certificate "
                             f"{node.cert_file} (as a server's): check its trusted certificates")
    return aborted.is_set()


__all__: Sequence[str] = ("retrieve",)
