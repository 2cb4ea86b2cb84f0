"""``rcdnet validate``: local validation on a hospital's own labelled cases.

The cases (class folders ``benign/`` and ``malignant/``, or a CSV ``path,label[,mask]
[,patient]``) go through the same review as ``rcdnet classify`` -- same engine, guard, automatic
box, bands and decision at the model card's cut-off -- and the report (HTML, PDF and a JSON of
every figure) is written into ``--out DIR`` once every case is done. The computing is
:mod:`rcdnet_desktop.core.validation`'s; this module reads the options, shows the progress
and says how it went.

Exit status as ``rcdnet classify``: 0 when the report was written, 1 when no case could be
classified, 2 for usage errors (bad cases, an unusable output folder, a report already there
without ``--overwrite``, the model); after Ctrl+C nothing is written.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TextIO


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def add_validate_parser(sub, seconds) -> None:
    """``rcdnet validate`` on the main parser's subparsers (``seconds`` parses a time)."""
    from rcdnet_desktop.core.batch import DEFAULT_FILE_TIMEOUT
    from rcdnet_desktop.core.validation.figures import N_BOOT, SEED
    from rcdnet_desktop.core.validation.report import REPORT_FILES

    v = sub.add_parser(
        "validate", help="measure the model on your own labelled cases (local validation)",
        description="Classify labelled cases as rcdnet classify does and write a validation "
                    "report (AUC, sensitivity, specificity, PPV and NPV at the model card's "
                    "cut-off with 95% CIs resampled by patient, likelihood bands, "
                    "calibration, guard and localiser) into --out: "
                    + ", ".join(REPORT_FILES.values()) + ".")
    v.add_argument("cases", type=Path, metavar="CASES",
                   help="a folder holding benign/ and malignant/ (nested folders included; "
                        "X_mask.png beside X is X's lesion mask), or a CSV file "
                        "path,label[,mask][,patient] (label benign/malignant or 0/1; paths "
                        "relative to the CSV)")
    v.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder of the report, created when missing")
    v.add_argument("--overwrite", action="store_true",
                   help="replace a report already in DIR (without it the run stops before "
                        "any work)")
    v.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=None,
                   help="where to run the model (default: $RCDNET_DEVICE, else auto)")
    v.add_argument("--no-auto-box", action="store_true",
                   help="classify whole images, without the lesion localiser's box (no "
                        "localiser hit rate then)")
    v.add_argument("--bootstrap", type=_count, default=N_BOOT, metavar="N",
                   help=f"patient resamples for the confidence intervals (default {N_BOOT}; "
                        "0: no intervals)")
    v.add_argument("--seed", type=int, default=SEED,
                   help=f"the bootstrap's seed (default {SEED})")
    v.add_argument("--file-timeout", type=seconds, default=None, metavar="SECONDS",
                   help="time one file may take to be read and prepared (default "
                        f"{DEFAULT_FILE_TIMEOUT:g}, 0 for no limit)")


def _check_out(args: argparse.Namespace) -> None:
    """The output folder is writable and holds no report (unless ``--overwrite``)."""
    from rcdnet_desktop.cli import UsageError
    from rcdnet_desktop.core.errors import ExportError, ExportExistsError
    from rcdnet_desktop.core.export.atomic import check_folder, check_target
    from rcdnet_desktop.core.validation.report import report_paths

    try:
        check_folder(args.out)
        for p in report_paths(args.out).values():
            check_target(p, overwrite=args.overwrite)
    except ExportExistsError as exc:
        raise UsageError(f"--out: {exc} (give --overwrite to replace the report)") from exc
    except ExportError as exc:
        raise UsageError(f"--out: {exc}") from exc


def validate(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """Run ``rcdnet validate`` (see the module's notes); the exit status."""
    err = err or sys.stderr
    from rcdnet_desktop.cli import EXIT_FAILED, EXIT_OK, Stopped, UsageError, _engine, _progress
    from rcdnet_desktop.core.batch import DEFAULT_FILE_TIMEOUT, review
    from rcdnet_desktop.core.errors import ExportError
    from rcdnet_desktop.core.operating_point import OperatingPoint
    from rcdnet_desktop.core.validation.cases import CasesError, read_cases, with_patients
    from rcdnet_desktop.core.validation.figures import validation_figures
    from rcdnet_desktop.core.validation.outcomes import Outcome, outcome
    from rcdnet_desktop.core.validation.report import write_report

    try:
        cases = with_patients(read_cases(args.cases))
    except CasesError as exc:
        raise UsageError(str(exc)) from exc
    _check_out(args)
    engine = _engine(args.device)
    timeout = DEFAULT_FILE_TIMEOUT if args.file_timeout is None else args.file_timeout
    items = review([c.path for c in cases], engine, auto_box=not args.no_auto_box,
                   file_timeout=timeout)
    by_path = {c.path: c for c in cases}
    done = {}
    try:
        with _progress(len(cases), err) as bar, contextlib.closing(items):
            for item in items:
                case = by_path.get(item.path)
                if case is not None:
                    done[case.path] = outcome(case, item)
                bar.update(1)
    except Stopped as stop:
        stop.progress = f"after {len(done)} of {len(cases)} case(s); no report written"
        raise
    # A path the review did not yield (the same file named twice): said, not dropped.
    outcomes = [done.get(c.path) or Outcome(c, error=f"{c.path}: the same file as another "
                                               "case; classified once")
                for c in cases]
    failed = [o for o in outcomes if o.prediction is None]
    for o in failed:
        print(f"rcdnet: not classified: {o.error}", file=err)
    classified = len(outcomes) - len(failed)
    if not classified:
        print(f"rcdnet: none of the {len(outcomes)} case(s) could be classified; no report "
              "written", file=err)
        return EXIT_FAILED
    figures = validation_figures(outcomes, OperatingPoint.from_card(engine.card),
                                 engine.card.to_dict(), n_boot=args.bootstrap, seed=args.seed,
                                 auto_box=not args.no_auto_box)
    try:
        paths = write_report(args.out, figures, overwrite=args.overwrite)
    except ExportError as exc:
        raise UsageError(str(exc)) from exc
    c = figures["cases"]
    print(f"{classified} classified, {len(failed)} not classified, {c['patients']} patient(s), "
          f"model {engine.model_version} on {engine.device}"
          + (" - UNTRAINED weights" if engine.untrained else "")
          + f"; report: {', '.join(str(p) for p in paths.values())}", file=err)
    return EXIT_OK


__all__ = ["add_validate_parser", "validate"]
