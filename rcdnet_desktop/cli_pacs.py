"""The command line's PACS parts: ``rcdnet pacs echo|find|get``, and ``classify``'s DICOM result
options (``--sr``, ``--with-patient``, ``--send``, ``--send-sc``, ``--aet``) with the sender of
``--send`` (what is written and sent for each image: :mod:`rcdnet_desktop.cli_outputs`).

Node options (any subcommand): ``--node NAME`` from the config file (``--config FILE``, else
``$RCDNET_PACS_CONFIG`` or ``~/.config/rcdnet-desktop/pacs.toml``), ``--address AET@HOST:PORT``
or ``--url`` (DICOMweb); ``--aet`` this program's AE title, ``--timeout``, ``--move`` with
``--storage-port`` to retrieve by C-MOVE. Security (also on ``classify --send``): ``--tls``
(DICOM over TLS), ``--ca FILE`` (the CA bundle the server's certificate must chain to; default
the system's), ``--cert FILE`` / ``--key FILE`` (this computer's certificate), ``--user NAME``
(DICOMweb basic authentication) or ``--auth bearer`` (a token); the password or token comes
from ``$RCDNET_PACS_PASSWORD`` / ``$RCDNET_PACS_TOKEN``, the system keyring, or is asked on a
terminal -- never from the command line, where other users could read it. A PACS that fails
gives one line saying why, and exit status 1; a bad node or option exit status 2.

The PACS modules (:mod:`rcdnet_desktop.core.pacs`) are imported inside the functions that use a
PACS: they are ~25 ms of imports, 15% of what ``rcdnet --help`` and every ``classify`` without
``--send`` would otherwise load (``python -X importtime``; ``benchmarks/bench_startup.py``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _node_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("PACS node")
    g.add_argument("--node", metavar="NAME", help="a node of the config file")
    g.add_argument("--address", metavar="AET@HOST:PORT", help="a DICOM node given directly")
    g.add_argument("--url", metavar="URL", help="a DICOMweb service (QIDO/WADO/STOW) instead")
    g.add_argument("--config", type=Path, metavar="FILE", help="the PACS config file (TOML)")
    g.add_argument("--aet", metavar="AET", help="this program's own AE title (default RCDNET)")
    g.add_argument("--timeout", type=float, metavar="SECONDS", help="connection timeout")
    g.add_argument("--move", action="store_true", help="retrieve by C-MOVE (not C-GET)")
    g.add_argument("--storage-port", type=int, metavar="PORT",
                   help="where this program listens during a C-MOVE (default 11112)")
    add_security_options(g)
    return p


def add_security_options(g) -> None:
    """TLS and authentication options (``rcdnet pacs ...`` and ``classify --send``)."""
    g.add_argument("--tls", action="store_true", default=None,
                   help="DICOM over TLS (1.2 or newer; the certificate and host name are "
                        "verified); a DICOMweb URL uses TLS when it starts with https://")
    g.add_argument("--ca", metavar="FILE",
                   help="CA bundle (PEM) the server's certificate must chain to (default: the "
                        "system's trusted certificates)")
    g.add_argument("--cert", metavar="FILE",
                   help="this computer's certificate (PEM), for servers that ask for one")
    g.add_argument("--key", metavar="FILE", help="the key of --cert (PEM)")
    g.add_argument("--user", metavar="NAME",
                   help="DICOMweb user name (HTTP basic authentication); the password comes "
                        "from $RCDNET_PACS_PASSWORD, the system keyring, or is asked")
    g.add_argument("--auth", choices=("basic", "bearer"),
                   help="how to log in to DICOMweb: basic (with --user) or bearer (a token "
                        "from $RCDNET_PACS_TOKEN or the system keyring)")


SECURITY_OPTIONS = (("tls", "tls"), ("ca", "ca_file"), ("cert", "cert_file"),
                    ("key", "key_file"), ("user", "user"), ("auth", "auth"))
"""(option, node field) of :func:`add_security_options`."""


def with_options(node, args: argparse.Namespace, *, ask: bool = True):
    """``node`` with the security options given on the command line, checked; on a terminal
    the password or token is asked when the node needs one and none was found.

    Raises
    ------
    PacsError
        Kind ``config``: the node is not usable.
    """
    # Lazy: the PACS modules load when a PACS is used (module docstring).
    from rcdnet_desktop.core.pacs.credentials import auth_kind, find_secret

    changes = {field: getattr(args, option) for option, field in SECURITY_OPTIONS
               if getattr(args, option, None) is not None}
    node = replace(node, **changes).checked()
    if ask and auth_kind(node) and find_secret(node) is None and sys.stdin.isatty():
        what = "token" if auth_kind(node) == "bearer" else f"password of {node.user}"
        node = node.with_secret(getpass.getpass(f"{what} for {node.label}: ") or None)
    return node


def add_pacs_parser(sub) -> None:
    """``rcdnet pacs echo|find|get`` on the main parser's subparsers."""
    nodes = _node_options()
    p = sub.add_parser("pacs", help="query and retrieve from a PACS (DICOM or DICOMweb)")
    ps = p.add_subparsers(dest="pacs_command", required=True)
    ps.add_parser("echo", parents=[nodes], help="test the connection (C-ECHO)")
    f = ps.add_parser("find", parents=[nodes], help="search (C-FIND or QIDO-RS)")
    _query_options(f)
    f.add_argument("--json", action="store_true", help="print the matches as JSON")
    g = ps.add_parser("get", parents=[nodes],
                      help="retrieve studies into the cache (C-GET, C-MOVE or WADO-RS); prints "
                           "the files")
    _query_options(g)
    g.add_argument("--cache", type=Path, metavar="DIR",
                   help="cache folder (default $RCDNET_PACS_CACHE or ~/.cache/rcdnet-desktop/pacs)")


def _query_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--level", choices=("patient", "study", "series"), default="study")
    p.add_argument("--patient-id", default="", metavar="ID")
    p.add_argument("--name", default="", help="patient name, matched from its start")
    p.add_argument("--from", dest="date_from", default="", metavar="YYYYMMDD")
    p.add_argument("--to", dest="date_to", default="", metavar="YYYYMMDD")
    p.add_argument("--modality", default="US", help="US by default; '' for any")
    p.add_argument("--accession", default="", metavar="NUMBER")
    p.add_argument("--study", default="", metavar="UID", help="one study (series: its series)")


def resolve_node(args: argparse.Namespace):
    """The node the options name (PacsError of kind ``config`` when they name none)."""
    # Lazy: the PACS modules load when a PACS is used (module docstring).
    from rcdnet_desktop.core.pacs import PacsError, PacsNode, find_node, load_nodes, parse_address

    given = [o for o in ("node", "address", "url") if getattr(args, o, None)]
    if len(given) != 1:
        raise PacsError(None, "name one PACS: --node NAME (from the config file), "
                              "--address AET@HOST:PORT or --url URL", "config")
    if args.node:
        node = find_node(load_nodes(args.config, missing_ok=False) if args.config
                         else load_nodes(), args.node)
    elif args.address:
        node = parse_address(args.address)
    else:
        node = PacsNode(name=args.url, url=args.url)
    changes = {k: v for k, v in (("calling_ae_title", args.aet), ("timeout", args.timeout),
                                 ("storage_port", args.storage_port)) if v is not None}
    if args.move:
        changes["retrieve"] = "move"
    return with_options(replace(node, **changes), args)


def _query(args: argparse.Namespace):
    # Lazy: the PACS modules load when a PACS is used (module docstring).
    from rcdnet_desktop.core.pacs import Query

    return Query(level=args.level, patient_id=args.patient_id, patient_name=args.name,
                 date_from=args.date_from, date_to=args.date_to, modality=args.modality,
                 accession_number=args.accession, study_uid=args.study).checked()


def _match_line(m) -> str:
    if m.level == "patient":
        return f"{m.patient_id}\t{m.patient_name}\t{m.birth_date}\t{m.studies or ''} studies"
    n = "" if m.instances is None else f"{m.instances} images"
    if m.level == "series":
        return f"{m.patient_id}\t{m.series_uid}\t{m.modalities}\t{m.series_description}\t{n}"
    return (f"{m.patient_id}\t{m.patient_name}\t{m.study_date}\t{m.study_uid}\t"
            f"{m.modalities}\t{m.study_description}\t{n}")


def run_pacs(args: argparse.Namespace, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """Run ``rcdnet pacs ...``; the exit status."""
    # Lazy: the PACS modules load when a PACS is used (module docstring).
    from rcdnet_desktop.core import pacs

    out, err = out or sys.stdout, err or sys.stderr
    try:
        node = resolve_node(args)
        if args.pacs_command == "echo":
            seconds = pacs.echo(node)
            print(f"{node.label}: answered in {seconds * 1000:.0f} ms", file=out)
            return EXIT_OK
        query = _query(args)
        matches = pacs.find(node, query)
        if args.pacs_command == "find":
            if args.json:
                print(json.dumps([m.to_dict() for m in matches], indent=2), file=out)
            else:
                for m in matches:
                    print(_match_line(m), file=out)
            print(f"{len(matches)} match(es) on {node.label}", file=err)
            return EXIT_OK
        if not matches:
            print(f"nothing matches on {node.label}; nothing retrieved", file=err)
            return EXIT_FAILED
        result = pacs.retrieve(node, matches, pacs.PacsCache(args.cache))
        for path in result.files:
            print(path, file=out)
        print(result.summary(), file=err)
        return EXIT_OK if result.complete else EXIT_FAILED
    except ValueError as exc:
        print(f"rcdnet: error: {exc}", file=err)
        return EXIT_USAGE
    except pacs.PacsError as exc:
        print(f"rcdnet: error: {exc}", file=err)
        return EXIT_USAGE if exc.kind == "config" else EXIT_FAILED


# --- classify's DICOM results --------------------------------------------------------------


def add_result_options(c: argparse.ArgumentParser) -> None:
    """``rcdnet classify``'s DICOM result options."""
    c.add_argument("--sr", type=Path, metavar="DIR",
                   help="write a DICOM Structured Report (the finding as coded data) of each "
                        "classified DICOM image into DIR, as <name>_rcdnet_sr.dcm (the same "
                        "file as --export sr); de-identified unless --with-patient")
    c.add_argument("--with-patient", action="store_true",
                   help="the DICOM files written (--sr, --export dicom, --export sr) keep the "
                        "source's patient and study; without it they are de-identified")
    c.add_argument("--send", metavar="AET@HOST:PORT|NODE",
                   help="send the Structured Report of each classified DICOM image to this "
                        "PACS (C-STORE), filed under the source's patient and study; a node "
                        "name of the PACS config file also works. The PACS is tested with a "
                        "C-ECHO before any work")
    c.add_argument("--send-sc", action="store_true",
                   help="with --send, also send the Secondary Capture (the annotated report "
                        "image, showing the patient)")
    c.add_argument("--aet", metavar="AET",
                   help="this program's AE title for --send (default: the node's, else RCDNET)")
    add_security_options(c.add_argument_group("--send's security"))


def check_result_options(args: argparse.Namespace) -> None:
    """Options that would do nothing on their own.

    Raises
    ------
    ValueError
        ``--send-sc`` or ``--aet`` without ``--send``, ``--with-patient`` without a DICOM file
        to write.
    """
    if args.send_sc and not args.send:
        raise ValueError("--send-sc needs --send AET@HOST:PORT (the PACS to send the Secondary "
                         "Capture to); to write it as a file, use --export dicom")
    if args.aet and not args.send:
        raise ValueError("--aet is this program's AE title for --send; give --send too")
    given = [f"--{o}" for o, _ in SECURITY_OPTIONS if getattr(args, o, None) is not None]
    if given and not args.send:
        raise ValueError(f"{given[0]} applies to the PACS of --send; give --send too")
    if args.with_patient and args.sr is None and not {"dicom", "sr"} & set(args.export or ()):
        raise ValueError("--with-patient applies to the DICOM files written (--sr DIR, "
                         "--export dicom, --export sr); none was asked")


class ResultSender:
    """Sends each image's results to the ``--send`` PACS; the PACS is checked (C-ECHO) when
    made, before any work."""

    def __init__(self, args: argparse.Namespace) -> None:
        # Lazy: the PACS modules load when a PACS is used (module docstring).
        from rcdnet_desktop.core.pacs import PacsError, echo, find_node, load_nodes, parse_address

        self.send_sc = bool(args.send_sc)
        self.sent = self.failed = 0
        try:
            node = (parse_address(args.send) if "@" in args.send
                    else find_node(load_nodes(), args.send))
            if args.aet:
                node = replace(node, calling_ae_title=args.aet)
            node = with_options(node, args)
            echo(node)
        except PacsError as exc:
            raise ValueError(f"--send: {exc}") from exc
        self.node = node

    def send(self, datasets) -> list[str]:
        """C-STORE one image's results; notes on what the PACS refused or warned about."""
        # Lazy: the PACS modules load when a PACS is used (module docstring).
        from rcdnet_desktop.core.pacs import PacsError, store

        try:
            result = store(self.node, datasets)
        except PacsError as exc:
            self.failed += 1
            return [f"not sent: {exc}"]
        except Exception as exc:  # a run must outlive any one image, whatever it holds
            self.failed += 1
            return [f"not sent: unexpected {type(exc).__name__}: {exc}"]
        if result.ok:
            self.sent += 1
            return [f"sent: {w}" for w in result.warnings]
        self.failed += 1
        return [f"not sent: {r}" for r in result.refused]

    def summary(self) -> str:
        return (f"; results of {self.sent} image(s) sent to {self.node.label}"
                + (f", {self.failed} not sent" if self.failed else ""))
