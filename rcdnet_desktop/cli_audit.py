"""``rcdnet audit``: print the audit trail (:mod:`rcdnet_desktop.core.audit`).

One line per event, oldest first: local time, user, event, outcome, studies and instances,
where to or from, and a few words; ``--json`` prints the log's own JSON lines instead.
``--since DATE`` (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``, local time) leaves out what came
before. The log's path is said on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from rcdnet_desktop.core.audit import audit_log_path, event_line, parse_since, read_events

EXIT_OK, EXIT_USAGE = 0, 2


def add_audit_parser(sub) -> None:
    p = sub.add_parser("audit", help="print the audit trail: who opened, exported, sent or "
                                     "retrieved which study, and what the PACS was asked")
    p.add_argument("--since", metavar="DATE",
                   help="only events at or after DATE (YYYY-MM-DD, or YYYY-MM-DDTHH:MM; "
                        "local time)")
    p.add_argument("--json", action="store_true", help="print the log's JSON lines as they are")


def run_audit(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Run ``rcdnet audit``; the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"rcdnet: error: --since: {exc}", file=err)
        return EXIT_USAGE
    path = audit_log_path()
    n = 0
    for entry in read_events(since, path):
        print(json.dumps(entry, ensure_ascii=False) if args.json else event_line(entry),
              file=out)
        n += 1
    print(f"{n} event(s) in {path}" + ("" if path.exists() else " (no log yet)"), file=err)
    return EXIT_OK
