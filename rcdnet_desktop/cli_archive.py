"""``rcdnet archive``: the review of ``rcdnet classify`` over a whole archive, on Ray Data.

The source is folders (shared storage; sub-folders included) or a DICOMweb service
(``--url``, or a ``--node`` of the PACS config file with a URL) searched by study date and
modality. The output folder (``--out``) is the run's state: Parquet shards, ``results.csv``
with classify's columns, ``studies.csv`` and ``patients.csv``; a rerun with the same output
does only what is not done (:mod:`rcdnet_desktop.archive.state`). ``--send-sr`` stores each
result's Structured Report on the PACS (the source, or the node named). Ray runs embedded on
this machine unless ``--address`` or ``$RAY_ADDRESS`` names a cluster.

Importing this module does not import Ray: without the extra ``[cluster]`` the command says
how to install it. Exit status as classify's: 0 when every image was reviewed (some may have
failed, each with its reason) and every SR asked was sent; 1 when none could be classified,
a PACS failed, a series must be fetched again or an SR was not sent; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_archive_parser(sub, frames: Callable[[str], int | str]) -> None:
    """``rcdnet archive`` on the main parser's subparsers; ``frames`` parses ``--frames``."""
    a = sub.add_parser("archive", help="review a whole archive (folders or a DICOMweb PACS) "
                                       "on Ray: embedded here, or on a cluster")
    a.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="folders (and files) of images on storage every worker can read; "
                        "sub-folders are included. Without PATH the source is the PACS")
    a.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="the output folder, which is also the run's state: a rerun with the "
                        "same DIR skips what is done")
    g = a.add_argument_group("PACS (the source without PATH, else where --send-sr stores)")
    g.add_argument("--node", metavar="NAME", help="a node of the PACS config file")
    g.add_argument("--url", metavar="URL", help="a DICOMweb service (QIDO-RS, WADO-RS, STOW-RS)")
    g.add_argument("--pacs", metavar="AET@HOST:PORT",
                   help="a DICOM node, for --send-sr only (C-STORE)")
    g.add_argument("--config", type=Path, metavar="FILE", help="the PACS config file (TOML)")
    g.add_argument("--aet", metavar="AET", help="this program's own AE title (default RCDNET)")
    g.add_argument("--timeout", type=float, metavar="SECONDS", help="PACS timeout")
    g.add_argument("--from", dest="date_from", default="", metavar="YYYYMMDD",
                   help="first study date")
    g.add_argument("--to", dest="date_to", default="", metavar="YYYYMMDD",
                   help="last study date")
    g.add_argument("--modality", default="US", help="US by default")
    g.add_argument("--send-sr", action="store_true",
                   help="store each result's Structured Report on the PACS (STOW-RS or "
                        "C-STORE), under UIDs derived from the source instance and the model, "
                        "so a rerun never files a second copy")
    r = a.add_argument_group("review (as rcdnet classify)")
    r.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cpu: one model worker per core (ONNX Runtime); cuda: one per GPU")
    r.add_argument("--no-auto-box", action="store_true",
                   help="do not let the lesion localiser find a box: classify whole images")
    r.add_argument("--frame", type=int, default=None, metavar="N",
                   help="classify frame N of every cine clip (from 1; default 1)")
    r.add_argument("--frames", type=frames, default=None, metavar="all|N",
                   help="sweep each clip (every frame or N of them); still one row per clip")
    c = a.add_argument_group("Ray")
    c.add_argument("--address", metavar="ray://HOST:10001",
                   help="run on this Ray cluster (default $RAY_ADDRESS; neither: a local Ray "
                        "on this machine, stopped at the end)")
    c.add_argument("--workers", type=int, default=None, metavar="N",
                   help="model workers (default: one per CPU, or per GPU with --device cuda)")
    c.add_argument("--batch-size", type=int, default=8, metavar="N",
                   help="images per model call (default 8)")
    c.add_argument("--shard-rows", type=int, default=500, metavar="N",
                   help="rows per Parquet shard (default 500; a shard is also written every "
                        "minute)")


class _Usage(Exception):
    pass


def _node_args(args: argparse.Namespace) -> argparse.Namespace:
    """The options as :func:`rcdnet_desktop.cli_pacs.resolve_node` reads them."""
    return argparse.Namespace(node=args.node, address=args.pacs, url=args.url,
                              config=args.config, aet=args.aet, timeout=args.timeout,
                              storage_port=None, move=False)


def _checked(args: argparse.Namespace):
    """The PACS node (or None) and the query, every option checked before any work."""
    from rcdnet_desktop.cli_pacs import resolve_node
    from rcdnet_desktop.core.pacs import PacsError, Query

    if args.frame is not None and args.frame < 1:
        raise _Usage("--frame must be 1 or more (frames are counted from 1)")
    if args.frame is not None and args.frames is not None:
        raise _Usage("--frame N classifies one frame of each clip and --frames sweeps "
                     "several; give only one of them")
    for name in ("workers", "batch_size", "shard_rows"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _Usage(f"--{name.replace('_', '-')} must be 1 or more")
    named = any((args.node, args.url, args.pacs))
    if not args.paths and not named:
        raise _Usage("nothing to review: give folders (PATH) or a DICOMweb PACS (--url URL or "
                     "--node NAME)")
    if args.paths and (args.date_from or args.date_to):
        raise _Usage("--from and --to select studies of a PACS; with folders, give only the "
                     "folders")
    if args.send_sr and not named:
        raise _Usage("--send-sr needs the PACS to store on: --url, --node or --pacs")
    node = None
    if named:
        try:
            node = resolve_node(_node_args(args))
        except PacsError as exc:
            raise _Usage(exc.reason if exc.node is None else str(exc)) from exc
        if not args.paths and node.transport != "dicomweb":
            raise _Usage(f"{node.label}: an archive is read from a PACS over DICOMweb "
                         "(QIDO-RS and WADO-RS); give its DICOMweb URL (--url)")
    try:
        query = Query(level="study", date_from=args.date_from, date_to=args.date_to,
                      modality=args.modality).checked()
    except ValueError as exc:
        raise _Usage(str(exc)) from exc
    return node, query


def run_archive(args: argparse.Namespace, out: TextIO | None = None,
                err: TextIO | None = None) -> int:
    """Run ``rcdnet archive``; the exit status."""
    from rcdnet_desktop.archive import ray_missing

    err = err or sys.stderr
    why = ray_missing()
    if why:
        print(f"rcdnet: error: {why}", file=err)
        return EXIT_USAGE
    try:
        node, query = _checked(args)
    except _Usage as exc:
        print(f"rcdnet: error: {exc}", file=err)
        return EXIT_USAGE
    return _review(args, node, query, err)


def _review(args: argparse.Namespace, node, query, err: TextIO) -> int:
    from rcdnet_desktop.archive import pipeline, sources
    from rcdnet_desktop.archive.cluster import ray_session
    from rcdnet_desktop.archive.progress import Progress
    from rcdnet_desktop.archive.state import ArchiveError, OutputFolder
    from rcdnet_desktop.archive.summary import PATIENT_FIELDS, STUDY_FIELDS, Summaries
    from rcdnet_desktop.core import pacs
    from rcdnet_desktop.core.errors import WeightsError

    try:
        if node is not None:
            pacs.echo(node)  # an unreachable PACS is said before anything starts
        folder = OutputFolder(args.out)
        model = pipeline.current_model()
        done = folder.done(model.id)
        if args.paths:
            items, left_out = sources.folder_items(args.paths, done)
            source, total = "folder", len(items)
        else:
            items, left_out = sources.dicomweb_items(node, query, done)
            counts = [i["instances"] for i in items]
            source, total = "dicomweb", (None if -1 in counts else sum(counts))
    except (pacs.PacsError, ArchiveError, WeightsError) as exc:
        print(f"rcdnet: error: {exc}", file=err)
        return EXIT_FAILED
    what = "file(s)" if source == "folder" else "series"
    print(f"rcdnet: {len(items)} {what} to review"
          + (f", {len(left_out)} image(s) done by an earlier run left out" if left_out else ""),
          file=err)
    settings = pipeline.Settings(
        device=args.device, frame=(args.frame or 1) - 1, auto_box=not args.no_auto_box,
        sweep=args.frames, workers=args.workers, batch_size=args.batch_size,
        shard_rows=args.shard_rows, send_node=node if args.send_sr else None)
    progress = Progress(total, err)
    try:
        if items:
            with ray_session(args.address, args.workers) as where:
                print(f"rcdnet: running on {where}", file=err)
                pipeline.run(items, source, folder, model, done, settings, progress, node=node,
                             left_out=left_out)
    except KeyboardInterrupt as stop:
        if hasattr(stop, "progress"):
            stop.progress = (f"after {progress.rows} image(s); the rows done are kept in "
                             f"{folder.shards}, rerun to go on")
        raise
    except ArchiveError as exc:
        print(f"rcdnet: error: {exc}", file=err)
        return EXIT_FAILED
    finally:
        progress.close()
    summaries, tally = Summaries(), _Tally()

    def each_row():
        for row in folder.results(model.id):
            summaries.add(row)
            tally.add(row, args.send_sr)
            yield row

    try:
        folder.write_tables(each_row(), lambda: {
            "studies.csv": (STUDY_FIELDS, summaries.studies()),
            "patients.csv": (PATIENT_FIELDS, summaries.patients())})
    except ArchiveError as exc:
        print(f"rcdnet: error: {exc}", file=err)
        return EXIT_FAILED
    return _closing_line(progress, tally, folder, model, err)


class _Tally:
    """What the tables hold: images, classified, to be tried again, SRs not sent."""

    def __init__(self) -> None:
        self.images = self.classified = self.transient = self.not_sent = 0

    def add(self, row, send_sr: bool) -> None:
        self.images += 1
        self.classified += row["status"] == "ok"
        self.transient += row["transient"] == "yes"
        self.not_sent += send_sr and row["sr"].startswith("not sent")


def _closing_line(progress, tally: _Tally, folder, model, err: TextIO) -> int:
    s = progress.status
    print(f"{s['ok']} classified, {s['failed']} failed"
          + (f", {s['skipped']} skipped (see their error)" if s["skipped"] else "")
          + (f", {progress.already} done by an earlier run" if progress.already else "")
          + (f", {progress.copies} cop(ies) of a file already reviewed"
             if progress.copies else "")
          + f"; model {model.version}"
          + (f"; {progress.auto} on a lesion box found automatically" if progress.auto else "")
          + (f"; {tally.not_sent} SR(s) not sent" if tally.not_sent else "")
          + f"; {tally.images} image(s) in {folder.folder / 'results.csv'}", file=err)
    if progress.failures:
        print(f"rcdnet: {progress.failures_text()}", file=err)
    if tally.transient:
        print(f"rcdnet: {tally.transient} item(s) could not be fetched or finished; run again "
              "with the same --out to retry them", file=err)
    ok = tally.classified and not tally.transient and not tally.not_sent
    return EXIT_OK if ok else EXIT_FAILED


__all__ = ("add_archive_parser", "run_archive")
