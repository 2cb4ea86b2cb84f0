"""Headless entry points: ``rcdnet classify`` (files and folders), ``rcdnet self-test``,
``rcdnet pacs`` (:mod:`rcdnet_desktop.cli_pacs`), ``rcdnet validate``
(:mod:`rcdnet_desktop.cli_validate`), ``rcdnet audit`` (:mod:`rcdnet_desktop.cli_audit`) and
``rcdnet archive`` (:mod:`rcdnet_desktop.cli_archive`, on Ray with the extra ``[cluster]``).

Exit status: 0 when at least one file was classified and every output asked was made; 1 when
no file could be classified, an output option (``--sr``, ``--export``, ``--heatmaps``,
``--send``) produced nothing, a result was not sent, or the self-test failed; 2 for usage errors
(bad arguments, unreadable ROI file, unusable output, PACS, model or device); 130 after Ctrl+C
(SIGINT) and 143 after SIGTERM, once the rows done are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import signal
import sys
import textwrap
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from rcdnet_desktop.cli_archive import add_archive_parser, run_archive
from rcdnet_desktop.cli_audit import add_audit_parser, run_audit
from rcdnet_desktop.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Stopped,
    UsageError,
    add_engine_options,
    load_engine,
    progress_bar,
    use_site,
)
from rcdnet_desktop.cli_outputs import Outputs, check_folders, file_outputs
from rcdnet_desktop.cli_pacs import (
    ResultSender,
    add_pacs_parser,
    add_result_options,
    check_result_options,
    run_pacs,
)
from rcdnet_desktop.cli_validate import add_validate_parser, validate
from rcdnet_desktop.core.batch import DEFAULT_FILE_TIMEOUT, loader_threads, review
from rcdnet_desktop.core.cine import ALL_FRAMES
from rcdnet_desktop.core.errors import ExportError
from rcdnet_desktop.core.export.batch_csv import batch_row, csv_header, csv_line, open_batch_csv
from rcdnet_desktop.core.export.formats import EXPORT_FORMATS
from rcdnet_desktop.core.files import not_regular
from rcdnet_desktop.core.io import find_images, read_image
from rcdnet_desktop.core.model.device import DEVICES
from rcdnet_desktop.core.resources import resources_dir, sample_path
from rcdnet_desktop.core.result import describe, site_name
from rcdnet_desktop.core.types import Box

Rois = dict[Path, tuple[Box, int]]
"""Lesion boxes from an ROI file: {resolved path: (box, line number)}."""


def read_rois(path: Path) -> Rois:
    """Read a lesion-box CSV ``file,x,y,w,h`` (UTF-8, header optional).

    Relative file names are taken relative to the CSV's folder. Every row is checked before
    any work: five fields, finite numbers, x, y >= 0 and w, h > 0 (whether the box lies inside
    its image is checked when the image is read).

    Raises
    ------
    UsageError
        Naming the file, and the line when one is wrong, in words.
    """
    other = not_regular(path)
    if other is not None:
        raise UsageError(f"cannot read ROI file {path}: it is {other}, not a regular file")
    boxes: Rois = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
                    continue
                if reader.line_num == 1 and row[0].strip().lower() == "file":
                    continue
                if len(row) != 5:
                    raise UsageError(f"{where}: expected file,x,y,w,h, got {len(row)} fields")
                if not row[0].strip():
                    raise UsageError(f"{where}: the file name is empty")
                f = Path(row[0].strip())
                key = (f if f.is_absolute() else path.parent / f).resolve()
                boxes[key] = (_roi_box(row[1:], where), reader.line_num)
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read ROI file {path}: it is not UTF-8 text; save it as "
                         "UTF-8 (\"CSV UTF-8\")") from exc
    except csv.Error as exc:
        raise UsageError(f"cannot read ROI file {path}: it is not a readable CSV file "
                         f"({exc})") from exc
    except OSError as exc:
        raise UsageError(f"cannot read ROI file {path}: {exc.strerror or exc}") from exc
    return boxes


def _roi_box(values: list[str], where: str) -> Box:
    try:
        numbers = [float(v) for v in values]
    except ValueError as exc:
        raise UsageError(f"{where}: box values must be numbers") from exc
    for text, n in zip(values, numbers, strict=True):
        if not math.isfinite(n):
            raise UsageError(f"{where}: box values must be finite numbers, not {text.strip()}")
    x, y, w, h = (round(n) for n in numbers)
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise UsageError(f"{where}: box must have x, y >= 0 and w, h > 0")
    return Box(x, y, w, h)


def _unmatched_rois(rois: Rois, files: list[Path], source: Path, err: TextIO) -> int:
    """Warn about ROI rows whose file is not among those classified; how many there are."""
    classified = {f.resolve() for f in files}
    missing = sorted((line, p) for p, (_box, line) in rois.items() if p not in classified)
    if missing:
        shown = ", ".join(f"line {line} ({p})" for line, p in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        print(f"rcdnet: warning: {len(missing)} row(s) of {source} match no file being "
              f"classified, their boxes are not used: {shown}{more}", file=err)
    return len(missing)


def _outputs(args: argparse.Namespace) -> Outputs:
    """The files and PACS results asked, every folder and the PACS checked before any work."""
    try:
        check_result_options(args)
        files = file_outputs(args)
        check_folders(files)
        sender = ResultSender(args) if args.send else None
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return Outputs(files, sender, with_patient=args.with_patient)


def classify(args: argparse.Namespace, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """``rcdnet classify``: one row per file, continuing past bad files.

    Every input and output is checked before any work; rows are written as they come. A run
    stopped by a signal raises :class:`Stopped`, saying how far it got and where its rows are.
    """
    out, err = out or sys.stdout, err or sys.stderr

    rois = read_rois(args.rois) if args.rois else {}
    notices: list[str] = []
    files = find_images(args.paths, recursive=args.recursive, notices=notices)
    for notice in notices:
        print(notice, file=err)
    if not files:
        print("no image files found in: " + ", ".join(map(str, args.paths)), file=err)
        return EXIT_FAILED
    outputs = _outputs(args)
    unmatched = _unmatched_rois(rois, files, args.rois, err) if rois else 0
    timeout = DEFAULT_FILE_TIMEOUT if args.file_timeout is None else args.file_timeout
    counts: Counter[str] = Counter()  # rows by status
    auto = 0  # rows on a box the localiser found
    try:
        with _row_writer(args, out, err) as write:
            engine = use_site(load_engine(args.device), args.site, err)
            outputs.operating_point = engine.operating_point
            site = site_name(engine.operating_point)
            # Every output needs the image and the report's heat maps; the closed-form maps
            # come from the same forward pass as the prediction.
            items = review(files, engine, rois={p: box for p, (box, _) in rois.items()},
                           explain=outputs.active, frame=(args.frame or 1) - 1,
                           auto_box=not args.no_auto_box, file_timeout=timeout,
                           sweep=args.frames)
            # closing(): the review's loader thread is stopped here, however the loop ends.
            with progress_bar(len(files), err) as bar, contextlib.closing(items):
                for item in items:
                    row = batch_row(item, site)
                    notes = outputs.handle(item)
                    row["warnings"] = "; ".join(filter(None, (row["warnings"], *notes)))
                    write(row)
                    counts[item.status] += 1
                    auto += row["box_source"] == "auto"
                    bar.update(1)
    except Stopped as stop:
        stop.progress = f"after {counts.total()} of {len(files)} file(s)"
        raise
    print(f"{counts['ok']} classified, {counts['failed']} failed"
          + (f", {counts['skipped']} skipped (see their error)" if counts["skipped"] else "")
          + f", model {engine.model_version} on {engine.device}"
          + (" - UNTRAINED weights" if engine.untrained else "")
          + (f"; {auto} on a lesion box found automatically" if auto else "")
          + (f"; {unmatched} row(s) of the ROI file matched no file" if unmatched else "")
          + outputs.summary(),
          file=err)
    problems = outputs.problems() if counts["ok"] else []
    for line in problems:
        print(f"rcdnet: {line}", file=err)
    for line in outputs.notes():
        print(f"rcdnet: note: {line}", file=err)
    not_sent = outputs.sender is not None and outputs.sender.failed
    return EXIT_OK if counts["ok"] and not problems and not not_sent else EXIT_FAILED


@contextlib.contextmanager
def _row_writer(args: argparse.Namespace, out: TextIO,
                err: TextIO) -> Iterator[Callable[[dict[str, str]], None]]:
    """Where the rows go, each as soon as it comes: ``--csv FILE`` (opened, so checked, now),
    ``--json`` or the CSV on standard output (also ``--csv -``).

    When the run stops early (Ctrl+C, a crash, the disk full) the rows done so far stay: on
    standard output, in a JSON array that is closed, and for ``--csv FILE`` in
    ``<stem>.partial<suffix>`` beside it, while FILE itself is left as it was.
    """
    to_file = args.csv is not None and str(args.csv) != "-"
    if args.json and args.csv is not None and not to_file:
        raise UsageError("--csv - and --json both write to standard output; give only one")
    csv_file = None
    try:
        with contextlib.ExitStack() as stack:
            writers: list[Callable[[dict[str, str]], None]] = []
            if to_file:
                try:
                    csv_file = stack.enter_context(open_batch_csv(args.csv, overwrite=True))
                except ExportError as exc:
                    raise UsageError(f"--csv: {exc}") from exc
                writers.append(csv_file.write)
            if args.json or not to_file:
                writers.append(stack.enter_context(_stdout_rows(out, as_json=args.json)))

            def write(row: dict[str, str]) -> None:
                for w in writers:
                    w(row)

            yield write
    except BaseException as exc:
        if csv_file is not None and csv_file.partial is not None:
            kept = (f"the {csv_file.rows} row(s) done are kept in {csv_file.partial}; "
                    f"{args.csv} was left as it was")
            if isinstance(exc, Stopped):
                exc.kept = kept  # said on the stop's one line
            else:
                print(f"rcdnet: {kept}", file=err)
        if isinstance(exc, ExportError):
            raise UsageError(str(exc)) from exc
        raise


def _print(out: TextIO, text: str) -> None:
    out.write(text)
    out.flush()


@contextlib.contextmanager
def _stdout_rows(out: TextIO, *, as_json: bool) -> Iterator[Callable[[dict[str, str]], None]]:
    """Print rows as they come: CSV (header first) or one JSON array, closed however the run
    ends. A run that fails before its first row prints nothing here."""
    n = 0

    def write(row: dict[str, str]) -> None:
        nonlocal n
        if as_json:
            _print(out, ("," if n else "[") + "\n"
                   + textwrap.indent(json.dumps(row, indent=2), "  "))
        else:
            _print(out, ("" if n else csv_header()) + csv_line(row))
        n += 1

    try:
        yield write
    except BaseException:
        if n and as_json:
            _print(out, "\n]\n")
        raise
    if as_json:
        _print(out, "\n]\n" if n else "[]\n")
    elif not n:
        _print(out, csv_header())


def self_test(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``rcdnet self-test``: verify the weights, classify the sample, check both heat maps."""
    out = out or sys.stdout
    engine = load_engine(args.device)
    print(f"model {engine.model_version} verified, running on {engine.device}", file=out)
    if engine.has_localiser:
        print("lesion localiser verified", file=out)
    record = read_image(sample_path())
    maps = engine.explain(record)
    pred = maps.prediction
    problems = []
    for name in ("benign", "malignant"):
        m = getattr(maps, name)
        if m.shape != record.pixels.shape[:2] or m.dtype != np.float32:
            problems.append(f"{name} map has shape {m.shape} {m.dtype}")
        elif not (np.isfinite(m).all() and m.min() >= 0.0 and m.max() <= 1.0):
            problems.append(f"{name} map is not within [0, 1]")
    if abs(pred.p_benign + pred.p_malignant - 1.0) > 1e-4:
        problems.append("probabilities do not add up to 1")
    words = describe(pred, engine.operating_point)
    print(f"{record.path.name}: {words.band}, {words.decision}, P(malignant) = "
          f"{words.probability}", file=out)
    problems += _check_goldens(engine, out)
    for p in problems:
        print(f"FAIL: {p}", file=out)
    print("self-test " + ("FAILED" if problems else "passed"), file=out)
    return EXIT_FAILED if problems else EXIT_OK


def _check_goldens(engine, out: TextIO) -> list[str]:
    """The bundled samples' P(malignant) against the values the model card recorded at bundle
    time, and the separation of the malignant from the benign sample: a bundle whose bytes
    verify but whose behaviour changed (e.g. zeroed weights with a matching hash) fails."""
    st = engine.card.self_test
    if not st:
        if engine.card.untrained:
            return []
        return ["the model card records no expected results for the samples (self_test): the "
                "model's behaviour cannot be checked"]
    problems, probs = [], {}
    for name, expected in st["samples"].items():
        probs[name] = p = engine.predict(read_image(resources_dir() / "samples" / name)).p_malignant
        ok = abs(p - expected) <= st["tolerance"]
        print(f"{name}: P(malignant) = {p:.6f}, expected {expected:.6f} "
              f"{'ok' if ok else 'DIFFERENT'}", file=out)
        if not ok:
            problems.append(f"{name}: P(malignant) {p:.6f} differs from the recorded "
                            f"{expected:.6f} by more than {st['tolerance']}")
    benign = [v for k, v in probs.items() if "benign" in k]
    malignant = [v for k, v in probs.items() if "malignant" in k]
    if benign and malignant and min(malignant) - max(benign) < st["min_separation"]:
        problems.append(f"the malignant sample is not separated from the benign one "
                        f"({min(malignant):.3f} vs {max(benign):.3f}; at least "
                        f"{st['min_separation']} apart expected)")
    return problems


def _export_keys() -> list[str]:
    return [f.key for f in EXPORT_FORMATS]


def _export_help() -> str:
    """The export formats for ``--help``, from the export table: key, what, file name."""
    return "; ".join(f"{f.key}: {f.label} as <name>_{f.name_tag}{f.suffix}"
                     + (", DICOM images only" if f.needs_dicom_source else "")
                     for f in EXPORT_FORMATS)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) or a positive number of "
                                         f"seconds, got {text!r}")
    return value


def _frames(text: str) -> int | str:
    """``--frames``: ``all``, or a number of evenly spaced frames (1 or more)."""
    if text.strip().lower() == ALL_FRAMES:
        return ALL_FRAMES
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected all or a number of frames (1 or more), "
                                         f"got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected all or a number of frames (1 or more), "
                                         f"got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcdnet", description="RcdNet breast ultrasound decision support (not a diagnosis).")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify", help="classify image files and folders")
    c.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="image files (DICOM, PNG, JPEG, ...) and folders of them")
    c.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    c.add_argument("--csv", type=Path, metavar="OUT",
                   help="write the rows (one per file) to the CSV file OUT instead of standard "
                        "output ('-' for standard output); a run stopped early keeps its rows "
                        "in OUT's .partial file and leaves OUT as it was")
    c.add_argument("--json", action="store_true",
                   help="print the rows to standard output as a JSON array instead of CSV "
                        "(with --csv OUT, the CSV still goes to OUT)")
    c.add_argument("--export", action="append", metavar="FORMAT", choices=_export_keys(),
                   help="write each image's result as the viewer exports it, into "
                        "--export-dir (repeat for several): " + _export_help())
    c.add_argument("--export-dir", type=Path, metavar="DIR",
                   help="folder of the --export files, created when missing (default: the "
                        "current folder)")
    c.add_argument("--heatmaps", type=Path, metavar="DIR",
                   help="write each image's annotated PNG report (the image and both heat "
                        "maps) into DIR as <name>_heatmaps.png")
    add_engine_options(c)
    c.add_argument("--rois", type=Path, metavar="CSV",
                   help="lesion boxes, one row file,x,y,w,h per image (pixels); a box given "
                        "here is used instead of one the localiser would find")
    c.add_argument("--no-auto-box", action="store_true",
                   help="do not let the lesion localiser find a box: images without one in "
                        "--rois are classified whole")
    c.add_argument("--frame", type=int, default=None, metavar="N",
                   help="classify frame N of every cine clip, counted from 1 as everywhere "
                        "in the program (default 1); a clip without it fails; single-frame "
                        "images use their only frame")
    c.add_argument("--frames", type=_frames, default=None, metavar="all|N",
                   help="sweep each cine clip instead of one frame: every frame (all) or N "
                        "evenly spaced frames; each clip is still one row, its most "
                        "suspicious classifiable frame, with the clip's summary (clip_* "
                        "columns). Not with --frame")
    c.add_argument("--file-timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="time one file may take to be read and prepared; a slower file is "
                        f"reported as failed and the run goes on (default {DEFAULT_FILE_TIMEOUT:g}"
                        ", 0 for no limit)")
    add_result_options(c)
    s = sub.add_parser("self-test", help="verify the weights and classify the bundled sample")
    s.add_argument("--device", choices=DEVICES, default=None)
    add_pacs_parser(sub)
    add_validate_parser(sub, _seconds)
    add_audit_parser(sub)
    add_archive_parser(sub, _frames)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: this process's own); the exit status.

    Without ``argv`` main owns the process (the ``rcdnet`` command), and ends it at once when
    a file's reader is still running in the background (see :func:`_leave_if_busy`).
    """
    status = _run(argv)
    if argv is None:
        _leave_if_busy(status)
    return status


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # pydicom warns about every odd value it tolerates; a file that cannot be read gets its
    # reason in its own row, so these would only bury the progress bar.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    try:
        if args.command == "classify":
            if args.frame is not None and args.frame < 1:
                raise UsageError("--frame must be 1 or more (frames are counted from 1)")
            if args.frame is not None and args.frames is not None:
                raise UsageError("--frame N classifies one frame of each clip and --frames "
                                 "sweeps several; give only one of them")
            with _lossless_stdout(), _stop_on_signals():
                return classify(args)
        if args.command == "pacs":
            return run_pacs(args)
        if args.command == "audit":
            return run_audit(args)
        if args.command == "validate":
            with _stop_on_signals():
                return validate(args)
        if args.command == "archive":
            with _stop_on_signals():
                return run_archive(args)
        return self_test(args)
    except UsageError as exc:
        print(f"rcdnet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # Stopped, or Ctrl+C outside a run
        stop = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
        print(f"rcdnet: {stop.line()}", file=sys.stderr)
        return stop.status
    except BrokenPipeError:
        # Whoever read standard output went away (| head): stop quietly, as other tools do.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Stopped` in the main thread while a run lasts.

    Only the first signal stops the run; one that comes while it winds down (keeping the rows,
    stopping the reader) is ignored, so the winding down is not itself cut short.
    """
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stopped(signum)

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    except ValueError:  # not the main thread: signals are Python's default there
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _leave_if_busy(status: int) -> None:
    """End the process now, with ``status``, if a file's reader is still running.

    A reader past its time budget (or one that outlived a stopped run's grace) may be inside a
    native library with the interpreter lock released. Python before 3.14 tears such a thread
    down when it comes back for the lock during the interpreter's shutdown, and the C++ runtime
    then aborts the process ("terminate called without an active exception", status 134)
    after the run had done everything right. Everything is written and flushed by now, so the
    shutdown is skipped instead.
    """
    if not loader_threads():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


@contextlib.contextmanager
def _lossless_stdout() -> Iterator[None]:
    """File names that are not valid UTF-8 go to standard output as their original bytes."""
    errors = getattr(sys.stdout, "errors", None)
    try:
        sys.stdout.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        errors = None
    try:
        yield
    finally:
        if errors is not None:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                sys.stdout.reconfigure(errors=errors)  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main())
