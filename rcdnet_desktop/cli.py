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

CSV_FIELDS = ("file", "label", "p_malignant", "p_benign", "device", "status", "error", "warnings",
              "box_source", "box_x", "box_y", "box_w", "box_h", "band", "suspicious")
"""Columns of ``rcdnet classify``'s rows. ``box_source`` is user (the ROI file), auto (found by
the lesion localiser) or none (whole image); ``box_*`` is that box as given or found, unpadded,
in image pixels (empty when none); ``band`` is the likelihood band's name (see
:mod:`rcdnet_desktop.core.bands`); ``suspicious`` is yes when p_malignant reaches the model card's
suspicious threshold (chosen for sensitivity, so it can be yes for a "benign" label)."""
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


def item_row(item: BatchItem) -> dict[str, str]:
    """One CSV/JSON row for a batch item."""
    p = item.prediction
    box = p.box if p else None
    x, y, w, h = (str(v) for v in box.as_tuple()) if box else ("",) * 4
    return {
        "file": str(item.path),
        "label": p.display_label if p else "",
        "p_malignant": f"{p.p_malignant:.4f}" if p else "",
        "p_benign": f"{p.p_benign:.4f}" if p else "",
        "device": p.device if p else "",
        "status": item.status,
        "error": item.error,
        "warnings": "; ".join(p.warnings) if p else "",
        "box_source": p.box_source if p else "",
        "box_x": x,
        "box_y": y,
        "box_w": w,
        "box_h": h,
        "band": p.band.name if p and p.band else "",
        "suspicious": ("yes" if p.suspicious else "no") if p else "",
    }


def _heatmap_name(item: BatchItem, used: set[str]) -> str:
    base = f"{item.path.stem}_heatmaps"
    name, n = f"{base}.png", 1
    while name in used:  # same stem in two folders
        n += 1
        name = f"{base}_{n}.png"
    used.add(name)
    return name


def _write_heatmaps(item: BatchItem, out_dir: Path, used: set[str]) -> str:
    """Write the annotated report image for one item; returns an error text or ''."""
    from rcdnet_desktop.core.errors import RcdNetError
    from rcdnet_desktop.core.export import export_png
    from rcdnet_desktop.core.export.report import render_record_report

    assert item.heatmaps is not None and item.record is not None
    try:
        report = render_record_report(item.record, item.heatmaps)
        export_png(out_dir / _heatmap_name(item, used), report, overwrite=True)
    except (RcdNetError, OSError, ValueError) as exc:
        return f"heat map not written: {exc}"
    return ""


def _progress(total: int, stream: TextIO):
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=stream, disable=not stream.isatty(),
                dynamic_ncols=True)


def classify(args: argparse.Namespace, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """``rcdnet classify``: one row per file, continuing past bad files."""
    out, err = out or sys.stdout, err or sys.stderr
    from rcdnet_desktop.core.batch import review
    from rcdnet_desktop.core.io import find_images

    rois = read_rois(args.rois) if args.rois else None
    files = find_images(args.paths, recursive=args.recursive)
    if not files:
        print("no image files found in: " + ", ".join(map(str, args.paths)), file=err)
        return EXIT_NONE_READ
    engine = _engine(args.device)
    if args.heatmaps:
        args.heatmaps.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    used: set[str] = set()
    with _progress(len(files), err) as bar:
        for item in review(files, engine, rois=rois, explain=bool(args.heatmaps),
                           frame=args.frame, auto_box=not args.no_auto_box):
            row = item_row(item)
            if args.heatmaps and item.heatmaps is not None:
                note = _write_heatmaps(item, args.heatmaps, used)
                if note:
                    row["warnings"] = "; ".join(filter(None, (row["warnings"], note)))
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
    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
    if args.csv:
        from rcdnet_desktop.core.export.atomic import atomic_write

        data = _csv_text(rows).encode("utf-8")
        atomic_write(args.csv, lambda fh: fh.write(data), overwrite=True)
    elif not args.json:
        out.write(_csv_text(rows))


def _csv_text(rows: list[dict[str, str]]) -> str:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


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
    for p in problems:
        print(f"FAIL: {p}", file=out)
    print("self-test " + ("FAILED" if problems else "passed"), file=out)
    return EXIT_NONE_READ if problems else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcdnet", description="RcdNet breast ultrasound decision support (not a diagnosis).")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify", help="classify image files and folders")
    c.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    c.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    c.add_argument("--csv", type=Path, metavar="OUT", help="write the rows to this CSV file")
    c.add_argument("--json", action="store_true", help="print the rows as JSON")
    c.add_argument("--heatmaps", type=Path, metavar="DIR",
                   help="write an annotated PNG with both heat maps per image into DIR")
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
