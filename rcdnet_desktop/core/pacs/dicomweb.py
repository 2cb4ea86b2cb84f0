"""DICOMweb, the second transport: QIDO-RS (find), WADO-RS (retrieve), STOW-RS (store).

No Qt here. The same operations as :mod:`.dimse`, over HTTP with ``dicomweb-client``, for a
node whose ``url`` is set: :func:`echo` is a one-result QIDO-RS search, :func:`find` a QIDO-RS
search at the query's level (patients are the studies' patients, DICOMweb has no patient
search), :func:`retrieve` streams each study or series with WADO-RS into the cache (through
its staging folder, as a DICOM retrieve does), :func:`store` sends with STOW-RS. The HTTP
session ignores proxy and ``.netrc`` settings of the environment: the app talks to the
configured URL and nothing else.

Over ``https://`` the server's certificate and host name are verified with the TLS context of
:mod:`.tls` (the node's CA file, else the system's trusted certificates; TLS 1.2 or newer).
A node with a user sends HTTP basic authentication, one with ``auth = "bearer"`` a bearer
token; the secret comes from :func:`~rcdnet_desktop.core.pacs.credentials.find_secret` and
goes only into the request's Authorization header. Failures raise
:class:`~rcdnet_desktop.core.pacs.nodes.PacsError` in words, as in :mod:`.dimse`; a refused
password is kind ``auth``, and nothing is retried.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from rcdnet_desktop.core.errors import ExportError
from rcdnet_desktop.core.pacs.cache import PacsCache
from rcdnet_desktop.core.pacs.cancel import on_cancel
from rcdnet_desktop.core.pacs.credentials import auth_kind, find_secret, where_to_put_it
from rcdnet_desktop.core.pacs.dimse_protocol import status_words
from rcdnet_desktop.core.pacs.nodes import PacsCancelled, PacsError, PacsNode
from rcdnet_desktop.core.pacs.query import QIDO_FIELDS, Match, Query
from rcdnet_desktop.core.pacs.results import (
    ProgressCallback,
    RetrieveProgress,
    RetrieveResult,
    StoreResult,
    what_is,
)
from rcdnet_desktop.core.pacs.tls import client_context, tls_failure

MAX_MATCHES = 1000
"""The most answers one search asks for. One request, no paging: some servers (Orthanc's
DICOMweb plugin 1.7 with a modality filter) ignore ``offset`` and would page forever."""

AS_STORED = (("application/dicom", "*"),)
"""WADO-RS media type asking for the instances as the server holds them (no conversion)."""


def _client(node: PacsNode):
    import requests
    from dicomweb_client.api import DICOMwebClient

    context = client_context(node) if node.uses_tls else None

    class Adapter(requests.adapters.HTTPAdapter):
        """Verifies HTTPS with this app's TLS context (:mod:`.tls`) rather than requests'
        own bundle, and sends QIDO-RS wildcards as ``*``: requests writes ``%2A``, which some
        servers (Orthanc 1.10) match literally, so ``smi*`` would find nobody."""

        def init_poolmanager(self, *args, **kwargs):
            if context is not None:
                kwargs["ssl_context"] = context
            return super().init_poolmanager(*args, **kwargs)

        def send(self, request, *args, **kwargs):
            request.url = request.url.replace("%2A", "*")
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc from the environment: the URL only
    session.verify = True
    for prefix in ("http://", "https://"):
        session.mount(prefix, Adapter())
    session.auth = _auth(node)
    client = DICOMwebClient(node.url, session=session, timeout=node.timeout)
    client.set_http_retry_params(retry=False)  # a failure is reported at once, not in minutes
    return client, session


def _auth(node: PacsNode):
    """The requests authentication of the node (None: none, or no secret was found)."""
    import requests

    kind = auth_kind(node)
    secret = find_secret(node)
    if not kind or secret is None:
        return None
    if kind == "basic":
        return requests.auth.HTTPBasicAuth(node.user, secret.reveal())

    class Bearer(requests.auth.AuthBase):
        def __call__(self, request):
            request.headers["Authorization"] = f"Bearer {secret.reveal()}"
            return request

        def __repr__(self) -> str:
            return "Bearer(***)"

    return Bearer()


def _where(node: PacsNode) -> str:
    parts = urlsplit(node.url)
    return parts.netloc or node.url


def _http_error(node: PacsNode, exc: BaseException, what: str) -> PacsError:
    """A requests exception in words."""
    import requests

    if isinstance(exc, PacsError):
        return exc
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code in (401, 403):
            return _refused(node, code, what)
        if code == 400 and "https port" in (exc.response.text or "").lower():
            return PacsError(node, f"{_where(node)} speaks HTTPS only: write the URL with "
                                   "https://", "tls")
        if code == 404:
            return PacsError(node, f"no DICOMweb service answers at {node.url} (HTTP 404): "
                                   "check the URL", "refused")
        if code == 409:
            return PacsError(node, f"the server refused the {what} (HTTP 409: conflict)",
                             "refused")
        if code >= 500:
            return PacsError(node, f"the server failed during the {what} (HTTP {code})",
                             "failed")
        return PacsError(node, f"the server refused the {what} (HTTP {code})", "refused")
    if isinstance(exc, requests.exceptions.SSLError) or (
            isinstance(exc, requests.exceptions.ConnectionError) and node.uses_tls):
        failure = tls_failure(node, exc, _where(node))
        if failure is not None:
            return failure
    if isinstance(exc, requests.exceptions.Timeout):
        return PacsError(node, f"no answer from {_where(node)} within {node.timeout:g} s during "
                               f"the {what}", "timeout")
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "NameResolution" in text or "Name or service not known" in text or \
                "nodename nor servname" in text or "getaddrinfo" in text:
            return PacsError(node, f"the host name in {node.url} cannot be found (check its "
                                   "spelling and the network connection)", "unreachable")
        if "Connection refused" in text or "ECONNREFUSED" in text or "Errno 111" in text:
            return PacsError(node, f"nobody accepts connections on {_where(node)}: is the "
                                   "server running, and is the URL right?", "unreachable")
        if "timed out" in text.lower():
            return PacsError(node, f"no answer from {_where(node)} within {node.timeout:g} s",
                             "timeout")
        return PacsError(node, f"the connection to {_where(node)} failed during the {what}: "
                               f"{text[:200]}", "unreachable")
    if isinstance(exc, requests.exceptions.RequestException):
        return PacsError(node, f"the {what} failed: {exc}", "failed")
    return PacsError(node, f"the {what} failed: {type(exc).__name__}: {exc}", "failed")


def _refused(node: PacsNode, code: int, what: str) -> PacsError:
    """HTTP 401 or 403 in words: what was presented, and what to change."""
    kind = auth_kind(node)
    given = kind and find_secret(node) is not None
    if code == 403 and given:
        return PacsError(node, f"the server does not allow the user {node.user or '(token)'} "
                               f"the {what} (HTTP 403): ask its administrator for access",
                         "auth")
    if kind == "bearer" and given:
        return PacsError(node, f"the server refused the token (HTTP {code}): it is wrong or "
                               "has expired; give a new one", "auth")
    if kind == "basic" and given:
        return PacsError(node, f"the server refused the user name {node.user} and its password "
                               f"(HTTP {code}): check both", "auth")
    if kind:
        what_is_missing = "token" if kind == "bearer" else f"password of {node.user}"
        return PacsError(node, f"the server wants a login (HTTP {code}) and no "
                               f"{what_is_missing} was found: {where_to_put_it(node)}", "auth")
    return PacsError(node, f"the server wants a login (HTTP {code}): give the node a user "
                           "(--user NAME) and its password, or a token (--auth bearer)", "auth")


def _cancellable(session, cancel: threading.Event | None):
    """A set ``cancel`` closes the HTTP session, which ends a transfer in progress."""
    return on_cancel(cancel, session.close, "dicomweb-cancel-watch")


def _datasets(items) -> list:
    from pydicom.dataset import Dataset

    return [Dataset.from_json(item) for item in items]


def echo(node: PacsNode) -> float:
    """A one-result QIDO-RS search ("test connection"); the round trip in seconds."""
    node = node.checked()
    client, session = _client(node)
    start = time.monotonic()
    try:
        client.search_for_studies(limit=1)
    except Exception as exc:  # noqa: BLE001 - every failure becomes words
        raise _http_error(node, exc, "test search") from exc
    finally:
        session.close()
    return time.monotonic() - start


def find(node: PacsNode, query: Query, *, cancel: threading.Event | None = None,
         limit: int | None = None) -> list[Match]:
    """QIDO-RS search at the query's level (patients: the patients of the studies found)."""
    q = query.checked()
    node = node.checked()
    client, session = _client(node)
    try:
        with _cancellable(session, cancel) as aborted:
            try:
                if q.level == "series":
                    items = client.search_for_series(
                        q.study_uid, search_filters=q.qido_filters(), fields=list(QIDO_FIELDS),
                        limit=limit or MAX_MATCHES)
                else:
                    filters = dict(q.qido_filters())
                    if q.study_uid:
                        filters["StudyInstanceUID"] = q.study_uid
                    items = client.search_for_studies(search_filters=filters,
                                                      fields=list(QIDO_FIELDS),
                                                      limit=limit or MAX_MATCHES)
            except Exception as exc:  # noqa: BLE001
                if aborted.is_set():
                    raise PacsCancelled(node, "search cancelled") from exc
                raise _http_error(node, exc, "search") from exc
    finally:
        session.close()
    level = "series" if q.level == "series" else "study"
    matches = [Match.from_dataset(ds, level) for ds in _datasets(items)]
    if q.level == "patient":
        matches = _patients(matches)
    return matches


def _patients(studies: list[Match]) -> list[Match]:
    out: dict[tuple[str, str], Match] = {}
    counts: dict[tuple[str, str], int] = {}
    for m in studies:
        key = (m.patient_id, m.patient_name)
        counts[key] = counts.get(key, 0) + 1
        out.setdefault(key, Match(level="patient", patient_id=m.patient_id,
                                  patient_name=m.patient_name, birth_date=m.birth_date,
                                  sex=m.sex))
    from dataclasses import replace

    return [replace(m, studies=counts[k]) for k, m in out.items()]


def retrieve(node: PacsNode, targets: Sequence[Match], cache: PacsCache, *,
             progress: ProgressCallback | None = None,
             cancel: threading.Event | None = None) -> RetrieveResult:
    """WADO-RS of each study or series into ``cache``; what came, and why not everything did."""
    node = node.checked()
    if not targets:
        return RetrieveResult()
    counts = [m.instances for m in targets]
    expected = sum(c for c in counts if c is not None) if None not in counts else None
    client, session = _client(node)
    failures: list[str] = []
    problem = ""

    def report(received: int) -> None:
        if progress is not None:
            with contextlib.suppress(Exception):
                progress(RetrieveProgress(received, len(failures), expected))

    try:
        with cache.receive() as receiver, _cancellable(session, cancel) as aborted:
            for match in targets:
                if aborted.is_set():
                    break
                try:
                    if match.level == "series" and match.series_uid:
                        stream = client.iter_series(match.study_uid, match.series_uid,
                                                    media_types=AS_STORED)
                    elif match.level == "patient":
                        stream = _patient_stream(client, match)
                    else:
                        stream = client.iter_study(match.study_uid, media_types=AS_STORED)
                    for ds in stream:
                        if aborted.is_set():
                            break
                        try:
                            receiver.add_dataset(ds)
                        except ExportError as exc:
                            failures.append(exc.reason)
                        report(len(receiver.received))
                except Exception as exc:  # noqa: BLE001 - a transfer broken off
                    if aborted.is_set():
                        break
                    n = len(receiver.received)
                    of = f" of {expected}" if expected is not None else ""
                    err = _http_error(node, exc, "retrieve")
                    problem = f"{err.reason} (after {n}{of} instance(s))"
                    break
            instances = list(receiver.received)
            cancelled = aborted.is_set()
    except ExportError as exc:
        raise PacsError(node, f"the cache folder cannot be written: {exc}", "failed") from exc
    finally:
        session.close()
    if not problem and failures:
        problem = f"{len(failures)} instance(s) could not be kept here: {failures[0]}"
    if not problem and not cancelled and expected is not None and len(instances) < expected:
        problem = (f"the retrieve was incomplete: {len(instances)} of {expected} instance(s) "
                   "received")
    result = RetrieveResult(instances=instances, failed=len(failures), expected=expected,
                            problem=f"{node.label}: {problem}" if problem and not cancelled
                            else "", cancelled=cancelled)
    return result


def _patient_stream(client, match: Match):
    for item in client.search_for_studies(search_filters={"PatientID": match.patient_id}):
        from pydicom.dataset import Dataset

        uid = str(Dataset.from_json(item).get("StudyInstanceUID", ""))
        if uid:
            yield from client.iter_study(uid, media_types=AS_STORED)


def store(node: PacsNode, datasets: Sequence, *,
          cancel: threading.Event | None = None) -> StoreResult:
    """STOW-RS of the data sets (one request per study); what was stored and refused."""
    node = node.checked()
    result = StoreResult()
    if not datasets:
        return result
    client, session = _client(node)
    by_study: dict[str, list] = {}
    for ds in datasets:
        by_study.setdefault(str(ds.StudyInstanceUID), []).append(ds)
    names = {str(ds.SOPInstanceUID): what_is(ds) for ds in datasets}
    try:
        with _cancellable(session, cancel) as aborted:
            for study_uid, group in by_study.items():
                try:
                    answer = client.store_instances(group, study_instance_uid=study_uid)
                except Exception as exc:  # noqa: BLE001
                    if aborted.is_set():
                        raise PacsCancelled(node, f"sending cancelled ({len(result.stored)} "
                                                  "stored before)") from exc
                    err = _http_error(node, exc, "store")
                    if err.kind == "refused":
                        result.refused += [f"the {names[str(ds.SOPInstanceUID)]}: {err.reason}"
                                           for ds in group]
                        continue
                    raise err from exc
                _read_stow_answer(answer, group, names, result)
    finally:
        session.close()
    return result


def _read_stow_answer(answer, group, names: dict[str, str], result: StoreResult) -> None:
    """Sort the instances of a STOW-RS answer into stored and refused."""
    stored = {str(item.get("ReferencedSOPInstanceUID", ""))
              for item in (answer.get("ReferencedSOPSequence", []) if answer is not None else [])}
    failed = {}
    for item in (answer.get("FailedSOPSequence", []) if answer is not None else []):
        uid = str(item.get("ReferencedSOPInstanceUID", ""))
        failed[uid] = int(item.get("FailureReason", 0) or 0)
    for ds in group:
        uid = str(ds.SOPInstanceUID)
        if uid in failed:
            result.refused.append(f"the {names[uid]}: {status_words(failed[uid])}")
        elif uid in stored or answer is None or not failed:
            result.stored.append(uid)


__all__: Sequence[str] = ("echo", "find", "retrieve", "store")
