"""``rcdnet validate``: local validation on a hospital's own labelled cases.

The cases (class folders ``benign/`` and ``malignant/``, or a CSV ``path,label[,mask]
[,patient]``) go through the same review as ``rcdnet classify`` -- same engine, guard, automatic
box, bands and decision at the model card's cut-off -- and the report (HTML, PDF and a JSON of
every figure) is written into ``--out DIR`` once every case is done. The computing is
:mod:`rcdnet_desktop.core.validation`'s; this module reads the options, shows the progress
and says how it went.

A site profile (:mod:`rcdnet_desktop.core.site_profile`) is made with ``--profile-out FILE``:
from ``--unlabelled DIR`` (the site's unlabelled images: the guard limit only), or from CASES
(the guard limit, and with ``--sensitivity S`` the temperature and the cut-off for that
sensitivity), with or without the report. ``--site FILE`` validates under a profile made before.

Exit status as ``rcdnet classify``: 0 when the report (or the profile) was written, 1 when no
case could be classified, 2 for usage errors (bad cases or options, an unusable output folder, a
report or profile already there without ``--overwrite``, the model, a profile that cannot be
made or used); after Ctrl+C nothing is written.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TextIO

from rcdnet_desktop.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    Stopped,
    UsageError,
    add_engine_options,
    load_engine,
    progress_bar,
    use_site,
)
from rcdnet_desktop.core.atomic import check_folder, check_target
from rcdnet_desktop.core.batch import DEFAULT_FILE_TIMEOUT, review
from rcdnet_desktop.core.errors import ExportError, ExportExistsError
from rcdnet_desktop.core.io import find_images
from rcdnet_desktop.core.result import site_sentence
from rcdnet_desktop.core.site_profile import ProfileError, profile_from_results, write_profile
from rcdnet_desktop.core.validation.cases import CasesError, read_cases, with_patients
from rcdnet_desktop.core.validation.figures import N_BOOT, SEED, validation_figures
from rcdnet_desktop.core.validation.outcomes import Outcome, outcome
from rcdnet_desktop.core.validation.report import REPORT_FILES, report_paths, write_report


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share above 0 and at most 1 (e.g. 0.9), "
                                         f"got {text}")
    return value


def add_validate_parser(sub, seconds) -> None:
    """``rcdnet validate`` on the main parser's subparsers (``seconds`` parses a time)."""
    v = sub.add_parser(
        "validate", help="measure the model on your own labelled cases (local validation)",
        description="Classify labelled cases as rcdnet classify does and write a validation "
                    "report (AUC, sensitivity, specificity, PPV and NPV at the model card's "
                    "cut-off with 95% CIs resampled by patient, likelihood bands, "
                    "calibration, guard and localiser) into --out: "
                    + ", ".join(REPORT_FILES.values()) + ".")
    v.add_argument("cases", type=Path, metavar="CASES", nargs="?",
                   help="a folder holding benign/ and malignant/ (nested folders included; "
                        "X_mask.png beside X is X's lesion mask), or a CSV file "
                        "path,label[,mask][,patient] (label benign/malignant or 0/1; paths "
                        "relative to the CSV)")
    v.add_argument("--out", type=Path, metavar="DIR",
                   help="folder of the report, created when missing (needed unless "
                        "--profile-out is given)")
    v.add_argument("--overwrite", action="store_true",
                   help="replace a report already in DIR, or the --profile-out file "
                        "(without it the run stops before any work)")
    v.add_argument("--profile-out", type=Path, metavar="FILE",
                   help="write a site profile for this site's scanners: the input guard's "
                        "limit from the images' guard distances; with --sensitivity, the "
                        "temperature and cut-off too")
    v.add_argument("--unlabelled", type=Path, metavar="DIR",
                   help="instead of CASES: a folder of this site's unlabelled breast "
                        "ultrasound images (nested folders included), for a --profile-out "
                        "holding the guard limit only; no report")
    v.add_argument("--sensitivity", type=_share, metavar="S",
                   help="with CASES and --profile-out: fit the temperature on the cases and "
                        "set the profile's cut-off to the highest with at least this "
                        "sensitivity on them (e.g. 0.9)")
    v.add_argument("--site-name", metavar="NAME",
                   help="the site's name in the --profile-out file, printed with every "
                        "result under it (default: the name of CASES or DIR)")
    add_engine_options(v, "validate")
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
    try:
        check_folder(args.out)
        for p in report_paths(args.out).values():
            check_target(p, overwrite=args.overwrite)
    except ExportExistsError as exc:
        raise UsageError(f"--out: {exc} (give --overwrite to replace the report)") from exc
    except ExportError as exc:
        raise UsageError(f"--out: {exc}") from exc


def _check_options(args: argparse.Namespace) -> None:
    """The options go together (a usage error saying which do not)."""

    if (args.cases is None) == (args.unlabelled is None):
        raise UsageError("give the labelled CASES, or --unlabelled DIR for a guard-only site "
                         "profile (not both)")
    if args.unlabelled is not None and (args.profile_out is None or args.out is not None):
        raise UsageError("--unlabelled DIR makes a site profile and no report: give "
                         "--profile-out FILE, not --out")
    if args.cases is not None and args.out is None and args.profile_out is None:
        raise UsageError("give --out DIR for the report, --profile-out FILE for a site "
                         "profile, or both")
    if args.sensitivity is not None and (args.cases is None or args.profile_out is None):
        raise UsageError("--sensitivity chooses a site profile's cut-off on labelled cases: "
                         "give it with CASES and --profile-out FILE")
    if args.site_name is not None and args.profile_out is None:
        raise UsageError("--site-name names a new site profile: give --profile-out FILE")
    if args.site is not None and args.profile_out is not None:
        raise UsageError("a new site profile is fitted on the model card's own results: give "
                         "--site FILE or --profile-out FILE, not both")


def _check_profile_out(args: argparse.Namespace) -> None:
    """The profile's file can be written (and is not there, unless ``--overwrite``)."""
    try:
        check_target(args.profile_out, overwrite=args.overwrite)
    except ExportExistsError as exc:
        raise UsageError(f"--profile-out: {exc} (give --overwrite to replace it)") from exc
    except ExportError as exc:
        raise UsageError(f"--profile-out: {exc}") from exc


def _write_profile(args: argparse.Namespace, engine, predictions, labels=None, patients=None,
                   err: TextIO | None = None) -> None:
    """Fit the site profile on the results and write it to ``--profile-out``."""
    source = args.cases if args.cases is not None else args.unlabelled
    site = args.site_name or Path(source).resolve().stem
    try:
        profile = profile_from_results(site, engine.card, predictions, labels, patients,
                                       args.sensitivity, n_boot=args.bootstrap, seed=args.seed)
        path = write_profile(args.profile_out, profile, overwrite=args.overwrite)
    except ProfileError as exc:
        raise UsageError(f"--profile-out: no site profile written: {exc}") from exc
    except ExportError as exc:
        raise UsageError(f"--profile-out: {exc}") from exc
    card_limit = (engine.card.guard or {}).get("threshold")
    if profile.guard_limit is not None and card_limit is not None:
        flagged = sum(p.guard_distance > card_limit for p in predictions)
        print(f"the model card's guard limit {card_limit:.1f} flags {flagged} of "
              f"{len(predictions)} image(s) here; the site's limit "
              f"{profile.guard_limit:.1f} flags {profile.guard_flagged:.1%}", file=err)
    print(f"site profile written to {path}: {site_sentence(profile)}", file=err)


def _unlabelled(args: argparse.Namespace, err: TextIO) -> int:
    """``--unlabelled DIR --profile-out FILE``: the guard limit of this site's images."""
    files = find_images([args.unlabelled], recursive=True)
    if not files:
        print(f"rcdnet: no image files found in {args.unlabelled}", file=err)
        return EXIT_FAILED
    _check_profile_out(args)
    engine = load_engine(args.device)
    timeout = DEFAULT_FILE_TIMEOUT if args.file_timeout is None else args.file_timeout
    predictions = []
    items = review(files, engine, auto_box=not args.no_auto_box, file_timeout=timeout)
    try:
        with progress_bar(len(files), err) as bar, contextlib.closing(items):
            for item in items:
                if item.prediction is not None:
                    predictions.append(item.prediction)
                else:
                    print(f"rcdnet: not classified: {item.error}", file=err)
                bar.update(1)
    except Stopped as stop:
        stop.progress = (f"after {len(predictions)} of {len(files)} image(s); no profile "
                         "written")
        raise
    if not predictions:
        print(f"rcdnet: none of the {len(files)} image(s) could be classified; no profile "
              "written", file=err)
        return EXIT_FAILED
    _write_profile(args, engine, predictions, err=err)
    return EXIT_OK


def validate(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """Run ``rcdnet validate`` (see the module's notes); the exit status."""
    err = err or sys.stderr

    _check_options(args)
    if args.unlabelled is not None:
        return _unlabelled(args, err)
    try:
        cases = with_patients(read_cases(args.cases))
    except CasesError as exc:
        raise UsageError(str(exc)) from exc
    if args.out is not None:
        _check_out(args)
    if args.profile_out is not None:
        _check_profile_out(args)
    engine = use_site(load_engine(args.device), args.site, err)
    timeout = DEFAULT_FILE_TIMEOUT if args.file_timeout is None else args.file_timeout
    items = review([c.path for c in cases], engine, auto_box=not args.no_auto_box,
                   file_timeout=timeout)
    by_path = {c.path: c for c in cases}
    done = {}
    try:
        with progress_bar(len(cases), err) as bar, contextlib.closing(items):
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
    if args.profile_out is not None:
        done_ = [o for o in outcomes if o.prediction is not None]
        _write_profile(args, engine, [o.prediction for o in done_],
                       [o.case.label for o in done_], [o.case.patient for o in done_], err)
    if args.out is None:
        return EXIT_OK
    figures = validation_figures(outcomes, engine.operating_point,
                                 engine.card.to_dict(), n_boot=args.bootstrap, seed=args.seed,
                                 auto_box=not args.no_auto_box)
    if engine.profile is not None:
        figures["site_profile"] = {**engine.profile.to_dict(),
                                   "sentence": site_sentence(engine.profile)}
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
