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

The app connects only to nodes the user configured: nothing here has a default server.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

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
    if node.transport == "dicomweb":
        from rcdnet_desktop.core.pacs import dicomweb

        return dicomweb
    from rcdnet_desktop.core.pacs import dimse

    return dimse


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
    return sort_matches(_transport(node).find(node, query, cancel=cancel, limit=limit))


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
    return _transport(node).retrieve(node, targets, cache, progress=progress, cancel=cancel)


def store(node: PacsNode, datasets: Sequence, *,
          cancel: threading.Event | None = None) -> StoreResult:
    """Send data sets to the node (C-STORE or STOW-RS).

    Raises
    ------
    PacsError, PacsCancelled
        The connection failed or broke off, or ``cancel`` was set; refusals of single objects
        are in the result.
    """
    return _transport(node).store(node, datasets, cancel=cancel)


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
