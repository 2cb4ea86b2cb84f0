"""Headless entry points: ``rcdnet classify`` (files and folders) and ``rcdnet self-test``.

Exit status: 0 when at least one file was classified, 1 when none could be (or the self-test
failed), 2 for usage errors (bad arguments, unreadable ROI file, unusable model or device).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rcdnet_desktop.core.types import BatchItem, Box

EXIT_OK, EXIT_NONE_READ, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input; reported without a traceback, exit status 2."""


def read_rois(path: Path) -> dict[Path, Box]:
    """Read a lesion-box CSV ``file,x,y,w,h`` (header optional) into {resolved path: Box}.

    Relative file names are taken relative to the CSV's folder.
    """
    boxes: dict[Path, Box] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
                    continue
                if lineno == 1 and row[0].strip().lower() == "file":
                    continue
                if len(row) != 5:
                    raise UsageError(f"{path}:{lineno}: expected file,x,y,w,h, got {len(row)} "
                                     "fields")
                try:
                    x, y, w, h = (int(round(float(v))) for v in row[1:])
                except ValueError as exc:
                    raise UsageError(f"{path}:{lineno}: box values must be numbers") from exc
                if w <= 0 or h <= 0 or x < 0 or y < 0:
                    raise UsageError(f"{path}:{lineno}: box must have x, y >= 0 and w, h > 0")
                f = Path(row[0].strip())
                boxes[(f if f.is_absolute() else path.parent / f).resolve()] = Box(x, y, w, h)
    except OSError as exc:
        raise UsageError(f"cannot read ROI file {path}: {exc.strerror or exc}") from exc
    return boxes


Export = tuple[str, Path, str]
"""One export asked on the command line: format key, folder, file-name tag."""


def _exports(args: argparse.Namespace) -> list[Export]:
    """The exports asked: ``--export FORMAT`` into ``--export-dir``, and ``--heatmaps DIR``
    (the annotated PNG, named ``<stem>_heatmaps.png``)."""
    if args.export_dir and not args.export:
        raise UsageError("--export-dir needs --export FORMAT")
    folder = args.export_dir or Path(".")
    exports = [(key, folder, "rcdnet") for key in dict.fromkeys(args.export or ())]
    if args.heatmaps:
        exports.append(("png", args.heatmaps, "heatmaps"))
    return exports


def _target(item: BatchItem, key: str, folder: Path, tag: str, used: set[Path]) -> Path:
    """The export's file: the viewer's default name, numbered when two files share a stem."""
    from rcdnet_desktop.core.export.formats import export_file_name

    assert item.record is not None and item.heatmaps is not None
    name = Path(export_file_name(item.record, item.heatmaps.prediction.frame, key, tag))
    target, n = folder / name, 1
    while target in used:  # same stem in two folders
        n += 1
        target = folder / f"{name.stem}_{n}{name.suffix}"
    used.add(target)
    return target


def _write_exports(item: BatchItem, exports: list[Export], used: set[Path]) -> list[str]:
    """Render the item's report once and write every export; returns notes on failures."""
    from rcdnet_desktop.core.errors import RcdNetError
    from rcdnet_desktop.core.export.formats import write_report
    from rcdnet_desktop.core.export.report import render_record_report

    assert item.heatmaps is not None and item.record is not None
    try:
        report = render_record_report(item.record, item.heatmaps)
    except (RcdNetError, OSError, ValueError) as exc:
        return [f"report not rendered: {exc}"]
    notes = []
    for key, folder, tag in exports:
        try:
            write_report(key, _target(item, key, folder, tag, used), item.record, report,
                         overwrite=True)
        except (RcdNetError, OSError, ValueError) as exc:
            notes.append(f"{key} not written: {exc}")
    return notes


def _progress(total: int, stream: TextIO):
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=stream, disable=not stream.isatty(),
                dynamic_ncols=True)


def classify(args: argparse.Namespace, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """``rcdnet classify``: one row per file, continuing past bad files."""
    out, err = out or sys.stdout, err or sys.stderr
    from rcdnet_desktop.core.batch import review
    from rcdnet_desktop.core.export.batch_csv import batch_row
    from rcdnet_desktop.core.io import find_images

    rois = read_rois(args.rois) if args.rois else None
    files = find_images(args.paths, recursive=args.recursive)
    if not files:
        print("no image files found in: " + ", ".join(map(str, args.paths)), file=err)
        return EXIT_NONE_READ
    exports = _exports(args)
    engine = _engine(args.device)
    for _key, folder, _tag in exports:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the folder {folder}: {exc.strerror or exc}") from exc
    rows: list[dict[str, str]] = []
    used: set[Path] = set()
    with _progress(len(files), err) as bar:
        for item in review(files, engine, rois=rois, explain=bool(exports),
                           frame=args.frame, auto_box=not args.no_auto_box):
            row = batch_row(item)
            if exports and item.heatmaps is not None:
                notes = _write_exports(item, exports, used)
                row["warnings"] = "; ".join(filter(None, (row["warnings"], *notes)))
            rows.append(row)
            bar.update(1)
    _write_rows(rows, args, out)
    failed = sum(r["status"] != "ok" for r in rows)
    auto = sum(r["box_source"] == "auto" for r in rows)
    print(f"{len(rows) - failed} classified, {failed} failed, model {engine.model_version} on "
          f"{engine.device}" + (" - UNTRAINED weights" if engine.untrained else "")
          + (f"; {auto} on a lesion box found automatically" if auto else ""), file=err)
    return EXIT_OK if failed < len(rows) else EXIT_NONE_READ


def _write_rows(rows: list[dict[str, str]], args: argparse.Namespace, out: TextIO) -> None:
    from rcdnet_desktop.core.errors import ExportError
    from rcdnet_desktop.core.export.batch_csv import csv_text, write_batch_csv

    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
    if args.csv:
        try:
            write_batch_csv(args.csv, rows, overwrite=True)
        except ExportError as exc:
            raise UsageError(str(exc)) from exc
    elif not args.json:
        out.write(csv_text(rows))


def _engine(device: str | None):
    from rcdnet_desktop.core.errors import InferenceError, WeightsError
    from rcdnet_desktop.core.inference import InferenceEngine

    try:
        return InferenceEngine(device=device)
    except (WeightsError, InferenceError, ValueError) as exc:
        raise UsageError(f"cannot load the model: {exc}") from exc


def self_test(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``rcdnet self-test``: verify the weights, classify the sample, check both heat maps."""
    out = out or sys.stdout
    import numpy as np

    from rcdnet_desktop.core.io import read_image
    from rcdnet_desktop.core.resources import sample_path

    engine = _engine(args.device)
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
    print(f"{record.path.name}: {pred.display_label}, P(malignant) = {pred.p_malignant:.3f}",
          file=out)
    problems += _check_goldens(engine, out)
    for p in problems:
        print(f"FAIL: {p}", file=out)
    print("self-test " + ("FAILED" if problems else "passed"), file=out)
    return EXIT_NONE_READ if problems else EXIT_OK


def _check_goldens(engine, out: TextIO) -> list[str]:
    """The bundled samples' P(malignant) against the values the model card recorded at bundle
    time, and the separation of the malignant from the benign sample: a bundle whose bytes
    verify but whose behaviour changed (e.g. zeroed weights with a matching hash) fails."""
    from rcdnet_desktop.core.io import read_image
    from rcdnet_desktop.core.resources import resources_dir

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
    from rcdnet_desktop.core.export.formats import EXPORT_FORMATS

    return [f.key for f in EXPORT_FORMATS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcdnet", description="RcdNet breast ultrasound decision support (not a diagnosis).")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify", help="classify image files and folders")
    c.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    c.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    c.add_argument("--csv", type=Path, metavar="OUT", help="write the rows to this CSV file")
    c.add_argument("--json", action="store_true", help="print the rows as JSON")
    c.add_argument("--export", action="append", metavar="FORMAT", choices=_export_keys(),
                   help="write each image's annotated report in FORMAT ("
                        + ", ".join(_export_keys()) + "; repeat for several) into "
                        "--export-dir, named like the viewer's exports")
    c.add_argument("--export-dir", type=Path, metavar="DIR",
                   help="folder of the --export files (default: the current folder)")
    c.add_argument("--heatmaps", type=Path, metavar="DIR",
                   help="write an annotated PNG with both heat maps per image into DIR "
                        "(<name>_heatmaps.png)")
    c.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=None,
                   help="where to run the model (default: $RCDNET_DEVICE, else auto)")
    c.add_argument("--rois", type=Path, metavar="CSV",
                   help="lesion boxes, one row file,x,y,w,h per image (pixels); a box given "
                        "here is used instead of one the localiser would find")
    c.add_argument("--no-auto-box", action="store_true",
                   help="do not let the lesion localiser find a box: images without one in "
                        "--rois are classified whole")
    c.add_argument("--frame", type=int, default=0, help="frame of multi-frame files")
    s = sub.add_parser("self-test", help="verify the weights and classify the bundled sample")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # pydicom warns about every odd value it tolerates; a file that cannot be read gets its
    # reason in its own row, so these would only bury the progress bar.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    try:
        if args.command == "classify":
            if args.frame < 0:
                raise UsageError("--frame must be 0 or more")
            return classify(args)
        return self_test(args)
    except UsageError as exc:
        print(f"rcdnet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rcdnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
