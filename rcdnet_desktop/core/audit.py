"""The audit trail: who opened, exported or sent which study, and what the PACS was asked.

No Qt here. Every open of a DICOM image (in the viewer and the CLI), every export (PNG, PDF,
Secondary Capture, Structured Report), every send to a PACS, every PACS query and every
retrieve is appended to a local log by :func:`record_event`, one JSON object per line. The fields
follow the content of an IHE ATNA audit message (DICOM PS3.15 A.5, RFC 3881): the event (its
DCM code and meaning, the action code, the outcome), the active participant (the operating
system's user, this program's process and host) and the participant objects, which are DICOM
UIDs only -- study, series, SOP instance and SOP class -- never a patient's name or ID. Where
data went to or came from (a PACS node, a file) is in ``destination`` / ``source``.

Writing (:func:`~rcdnet_desktop.core.atomic.append_record`): each line is one ``write`` to a
file opened with ``O_APPEND`` (so lines from several processes never interleave), followed by
``fsync`` before :func:`record_event` returns: an event that was reported is on disk, whatever
happens next. The file and its folder are private to the user (modes 600 and 700).

Where: ``$RCDNET_AUDIT_DIR/audit.jsonl`` when set (tests use temporary folders), else the
user's data folder: ``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux, ``~/Library/Application
Support`` on macOS, ``%LOCALAPPDATA%`` on Windows, under ``rcdnet-desktop/audit/``.
``rcdnet audit --since DATE`` prints it (:func:`read_events`).

A log that cannot be written does not stop the work (a viewer that cannot open images would
help nobody): :func:`record_event` returns False and logs a warning, once per reason.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rcdnet_desktop.core.atomic import append_record

AUDIT_DIR_ENV = "RCDNET_AUDIT_DIR"
LOG_NAME = "audit.jsonl"

SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = 0, 4, 8, 12
"""ATNA event outcome indicators: success; minor failure (part done, or cancelled); serious
failure (the action was not done); major failure (the system itself failed)."""

OUTCOME_WORDS = {SUCCESS: "success", MINOR_FAILURE: "partial", SERIOUS_FAILURE: "failed",
                 MAJOR_FAILURE: "failed badly"}


@dataclass(frozen=True)
class EventType:
    """One kind of audited event: its DICOM audit event code, meaning and ATNA action code
    (C create, R read, U update, D delete, E execute)."""

    code: str
    meaning: str
    action: str


EVENTS: dict[str, EventType] = {
    "open": EventType("110103", "DICOM Instances Accessed", "R"),
    "export": EventType("110106", "Export", "R"),
    "send": EventType("110104", "DICOM Instances Transferred", "R"),
    "retrieve": EventType("110104", "DICOM Instances Transferred", "C"),
    "query": EventType("110112", "Query", "E"),
}
"""The events: ``open`` (an image read for display or classification), ``export`` (a file
written: PNG, PDF, SC, SR), ``send`` (objects stored on a PACS), ``retrieve`` (instances
brought from a PACS into the local cache), ``query`` (a PACS search)."""


def audit_dir() -> Path:
    """``$RCDNET_AUDIT_DIR``, else ``rcdnet-desktop/audit`` in the user's data folder."""
    env = os.environ.get(AUDIT_DIR_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "rcdnet-desktop" / "audit"


def audit_log_path() -> Path:
    """The audit log file (see the module's docstring)."""
    return audit_dir() / LOG_NAME


def study_objects(study_uid: str = "", series_uid: str = "", sop_uid: str = "",
                  sop_class: str = "") -> list[dict[str, str]]:
    """The participant objects of one instance (empty values left out)."""
    out = []
    if study_uid:
        out.append({"type": "study", "uid": study_uid})
    if series_uid:
        out.append({"type": "series", "uid": series_uid})
    if sop_uid:
        item = {"type": "instance", "uid": sop_uid}
        if sop_class:
            item["sop_class"] = sop_class
        out.append(item)
    return out


def record_objects(record) -> list[dict[str, str]]:
    """The participant objects of an opened image (an ImageRecord): its DICOM UIDs, or none
    for a file that is not DICOM."""
    if not record.is_dicom:
        return []
    st = record.study
    return study_objects(st.study_instance_uid, st.series_instance_uid, st.sop_instance_uid,
                         st.sop_class_uid)


def opened(record) -> bool:
    """Record the open of a DICOM image (nothing for other files, which carry no UIDs)."""
    if not record.is_dicom:
        return True
    return record_event("open", objects=record_objects(record))


def merge_objects(groups: Iterable[Iterable[dict[str, str]]]) -> list[dict[str, str]]:
    """Participant objects of several instances, each study and series once."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for group in groups:
        for item in group:
            seen.setdefault((item["type"], item["uid"]), item)
    return list(seen.values())


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in the environment or password database
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


_warned: set[str] = set()
_lock = threading.Lock()
_log = logging.getLogger(__name__)


def record_event(event: str, *, outcome: int = SUCCESS, objects: Sequence[dict[str, Any]] = (),
           destination: dict[str, str] | None = None, source: dict[str, str] | None = None,
           detail: str = "", query: dict[str, Any] | None = None) -> bool:
    """Append one event to the audit log (atomically, durably); True when it was written.

    Parameters
    ----------
    event : str
        A key of :data:`EVENTS`.
    outcome : int
        :data:`SUCCESS`, :data:`MINOR_FAILURE`, :data:`SERIOUS_FAILURE` or
        :data:`MAJOR_FAILURE`.
    objects : sequence of dict
        Participant objects (:func:`study_objects`): UIDs only.
    destination, source : dict, optional
        Where the data went (a node: ``{"node": name, "address": ...}``; a file:
        ``{"file": path}``) or came from.
    detail : str
        A few words (the format, what failed) -- never a patient's name or ID.
    query : dict, optional
        What a search asked: its level and the keys it used (never their values).

    Raises
    ------
    ValueError
        An unknown event (a programming error, not an I/O one).
    """
    kind = EVENTS.get(event)
    if kind is None:
        raise ValueError(f"unknown audit event {event!r}")
    entry: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        "event": event,
        "event_id": {"code": kind.code, "scheme": "DCM", "meaning": kind.meaning},
        "action": kind.action,
        "outcome": int(outcome),
        "user": {"id": _user(), "process": Path(sys.argv[0] or "python").name,
                 "pid": os.getpid(), "host": socket.gethostname()},
        "objects": list(objects),
    }
    if destination:
        entry["destination"] = destination
    if source:
        entry["source"] = source
    if query:
        entry["query"] = query
    if detail:
        entry["detail"] = detail
    line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    try:
        append_record(audit_log_path(), line)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        with _lock:
            first = reason not in _warned
            _warned.add(reason)
        if first:
            _log.warning("the audit log %s cannot be written (%s): events are not recorded",
                         audit_log_path(), reason)
        return False
    return True


def parse_since(text: str) -> datetime:
    """``YYYY-MM-DD`` (local midnight) or an ISO date and time (local when no offset).

    Raises
    ------
    ValueError
        Not a date, in words.
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date: write YYYY-MM-DD or "
                         "YYYY-MM-DDTHH:MM") from None
    return when.astimezone() if when.tzinfo is None else when


def read_events(since: datetime | None = None, path: Path | None = None,
                ) -> Iterator[dict[str, Any]]:
    """The events of the log at or after ``since``, oldest first; a line that is not a JSON
    object (a log edited by hand) is skipped. Nothing when there is no log."""
    path = path or audit_log_path()
    try:
        fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            try:
                entry = json.loads(line)
                when = datetime.fromisoformat(entry["time"])
            except (ValueError, KeyError, TypeError):
                continue
            if since is None or when >= since:
                yield entry


def event_line(entry: dict[str, Any]) -> str:
    """One event in one line for people: time, user, event, outcome, objects, where."""
    when = datetime.fromisoformat(entry["time"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    objects = entry.get("objects") or []
    studies = [o["uid"] for o in objects if o.get("type") == "study"]
    instances = sum(1 for o in objects if o.get("type") == "instance")
    what = ", ".join(f"study {u}" for u in studies[:3]) + (
        f" (+{len(studies) - 3} more)" if len(studies) > 3 else "")
    if instances:
        what += f"{'; ' if what else ''}{instances} instance(s)"
    where = entry.get("destination") or entry.get("source") or {}
    place = where.get("node") or where.get("file") or where.get("address") or ""
    arrow = "to" if "destination" in entry else "from"
    outcome = OUTCOME_WORDS.get(entry.get("outcome"), str(entry.get("outcome")))
    parts = [when, entry.get("user", {}).get("id", "?"), entry.get("event", "?"), outcome,
             what or "-"]
    if place:
        parts.append(f"{arrow} {place}")
    if entry.get("detail"):
        parts.append(entry["detail"])
    return "\t".join(parts)


__all__: Sequence[str] = (
    "AUDIT_DIR_ENV",
    "EVENTS",
    "MAJOR_FAILURE",
    "MINOR_FAILURE",
    "SERIOUS_FAILURE",
    "SUCCESS",
    "EventType",
    "audit_dir",
    "audit_log_path",
    "event_line",
    "merge_objects",
    "parse_since",
    "opened",
    "read_events",
    "record_event",
    "record_objects",
    "study_objects",
)
