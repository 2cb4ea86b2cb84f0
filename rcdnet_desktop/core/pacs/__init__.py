"""Working with a PACS: query, retrieve into a local cache, and send results back.

No Qt here. The operations take a configured :class:`PacsNode` and go over DICOM
(:mod:`.dimse`, pynetdicom: C-ECHO, C-FIND, C-GET/C-MOVE, C-STORE) or DICOMweb
(:mod:`.dicomweb`: QIDO-RS, WADO-RS, STOW-RS) as the node says; callers use the functions
below and need not know which:

* :func:`echo` -- "test connection"; the round trip in seconds;
* :func:`find` -- a :class:`Query` at patient, study or series level; a list of :class:`Match`;
* :func:`retrieve` -- studies or series into a :class:`PacsCache`; a :class:`RetrieveResult`
  (complete instances only; what came before a failure or a cancel is kept);
* :func:`store` -- data sets (the SR and Secondary Capture of a result); a
  :class:`StoreResult`.

A node may use TLS (DICOM TLS, or an ``https://`` DICOMweb URL: :mod:`.tls`) and a DICOMweb
login (user and password, or a token: :mod:`.credentials`, which also says where a secret is
looked for and how it is kept out of sight).

They block: the viewer runs them on a worker thread, and ``cancel`` (a
:class:`threading.Event`) stops them from another thread. Every failure is a
:class:`PacsError` whose message names the node and says what happened in plain words. The
nodes and the config file are :mod:`.nodes`'s; the search form and its answers :mod:`.query`'s;
the cache :mod:`.cache`'s.

Every search, retrieve and send is recorded in the audit trail (:mod:`rcdnet_desktop.core.audit`,
done here, once for both transports): what was asked (the query's keys, not their values),
which studies and instances came or went, to or from which node, and how it ended.

The app connects only to nodes the user configured: nothing here has a default server.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from rcdnet_desktop.core import audit
from rcdnet_desktop.core.pacs import dicomweb, dimse
from rcdnet_desktop.core.pacs.cache import CachedInstance, PacsCache, default_cache_dir
from rcdnet_desktop.core.pacs.nodes import (
    PacsCancelled,
    PacsError,
    PacsNode,
    default_config_path,
    find_node,
    load_nodes,
    parse_address,
    save_nodes,
)
from rcdnet_desktop.core.pacs.query import LEVELS, Match, Query, sort_matches
from rcdnet_desktop.core.pacs.results import (
    ProgressCallback,
    RetrieveProgress,
    RetrieveResult,
    StoreResult,
)


def _transport(node: PacsNode):
    """The module that speaks the node's protocol: DICOMweb or DIMSE."""
    return dicomweb if node.transport == "dicomweb" else dimse


def echo(node: PacsNode) -> float:
    """Test the connection (C-ECHO, or a one-result QIDO-RS search); seconds it took.

    Raises
    ------
    PacsError
        Why it failed, in words.
    """
    return _transport(node).echo(node)


def find(node: PacsNode, query: Query, *, cancel: threading.Event | None = None,
         limit: int | None = None) -> list[Match]:
    """Search the node; the matches grouped by patient (see :func:`sort_matches`).

    Raises
    ------
    PacsError, PacsCancelled
        It failed (why, in words), or ``cancel`` was set.
    ValueError
        The query is not valid (before any connection).
    """
    q = query.checked()
    asked = _query_keys(q)
    try:
        matches = sort_matches(_transport(node).find(node, q, cancel=cancel, limit=limit))
    except PacsError as exc:
        _failed("query", node, exc, query=asked)
        raise
    audit.record_event("query", destination=_place(node), query=asked,
                       objects=audit.merge_objects(audit.study_objects(m.study_uid, m.series_uid)
                                                   for m in matches),
                       detail=f"{len(matches)} match(es)")
    return matches


def retrieve(node: PacsNode, targets: Sequence[Match], cache: PacsCache, *,
             progress: ProgressCallback | None = None,
             cancel: threading.Event | None = None) -> RetrieveResult:
    """Retrieve studies or series into ``cache`` (C-GET, C-MOVE or WADO-RS, as the node says).

    Raises
    ------
    PacsError
        Nothing could start (connection, storage port, cache folder); later problems are in
        the result, and what was received is kept.
    """
    try:
        result = _transport(node).retrieve(node, targets, cache, progress=progress,
                                           cancel=cancel)
    except PacsError as exc:
        _failed("retrieve", node, exc, objects=audit.merge_objects(
            audit.study_objects(m.study_uid, m.series_uid) for m in targets))
        raise
    outcome = (audit.SUCCESS if result.complete
               else audit.MINOR_FAILURE if result.instances or result.cancelled
               else audit.SERIOUS_FAILURE)
    audit.record_event("retrieve", outcome=outcome, source=_place(node),
                       objects=audit.merge_objects(
                           audit.study_objects(i.study_uid, i.series_uid, i.sop_uid)
                           for i in result.instances),
                       detail=("cancelled" if result.cancelled else result.problem
                               .removeprefix(f"{node.label}: ")))
    return result


def store(node: PacsNode, datasets: Sequence, *,
          cancel: threading.Event | None = None) -> StoreResult:
    """Send data sets to the node (C-STORE or STOW-RS).

    Raises
    ------
    PacsError, PacsCancelled
        The connection failed or broke off, or ``cancel`` was set; refusals of single objects
        are in the result.
    """
    sent = audit.merge_objects(
        audit.study_objects(str(ds.get("StudyInstanceUID", "")),
                            str(ds.get("SeriesInstanceUID", "")),
                            str(ds.get("SOPInstanceUID", "")), str(ds.get("SOPClassUID", "")))
        for ds in datasets)
    try:
        result = _transport(node).store(node, datasets, cancel=cancel)
    except PacsError as exc:
        _failed("send", node, exc, objects=sent)
        raise
    outcome = (audit.SUCCESS if result.ok else audit.MINOR_FAILURE if result.stored
               else audit.SERIOUS_FAILURE)
    audit.record_event("send", outcome=outcome, destination=_place(node), objects=sent,
                       detail=result.summary())
    return result


def _place(node: PacsNode) -> dict[str, str]:
    """Where an audited event went to or came from: the node's name and address."""
    return {"node": node.name, "address": node.address}


def _query_keys(q: Query) -> dict:
    """What a search asked, for the audit trail: its level, modality and the keys it used --
    never their values (a patient's name or ID)."""
    keys = [key for key, value in (("PatientID", q.patient_id), ("PatientName", q.patient_name),
                                   ("StudyDate", q.date_range),
                                   ("AccessionNumber", q.accession_number),
                                   ("StudyInstanceUID", q.study_uid)) if value]
    return {"level": q.level, "modality": q.modality, "keys": keys}


def _failed(event: str, node: PacsNode, exc: PacsError, **fields) -> None:
    outcome = audit.MINOR_FAILURE if exc.kind == "cancelled" else audit.SERIOUS_FAILURE
    where = {"source" if event == "retrieve" else "destination": _place(node)}
    audit.record_event(event, outcome=outcome, detail=f"{exc.kind}: {exc.reason}", **where,
                       **fields)


__all__: Sequence[str] = (
    "LEVELS",
    "CachedInstance",
    "Match",
    "PacsCache",
    "PacsCancelled",
    "PacsError",
    "PacsNode",
    "ProgressCallback",
    "Query",
    "RetrieveProgress",
    "RetrieveResult",
    "StoreResult",
    "default_cache_dir",
    "default_config_path",
    "echo",
    "find",
    "find_node",
    "load_nodes",
    "parse_address",
    "retrieve",
    "save_nodes",
    "sort_matches",
    "store",
)
