"""Shared steps of the CLI: load a data source, deduplicate, split, select the split's items."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .cache import CachedImage, LoadReport, load_all
from .data import Sample, load_samples
from .dedup import DedupResult, find_duplicates
from .split import SplitRow, check_no_leak, make_split, read_split, write_split

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    items: list[CachedImage]
    rows: list[SplitRow]
    load_report: LoadReport
    dedup_summary: dict

    def subset(self, split: str) -> list[CachedImage]:
        by_path = {str(it.sample.path): it for it in self.items}
        return [by_path[r.path] for r in self.rows if r.split == split and r.path in by_path]

    def groups(self, split: str) -> list[int]:
        """Group ids aligned with :meth:`subset`."""
        have = {str(it.sample.path) for it in self.items}
        return [r.group for r in self.rows if r.split == split and r.path in have]


def default_cache_dir() -> Path:
    return Path(".cache") / "training"


def prepare(data: Path, split_csv: Path | None, cache_dir: Path | None, seed: int = 0,
            val_fraction: float = 0.3, hash_bits: int = 4, min_corr: float = 0.95,
            keep_conflicts: bool = False, progress: bool = True) -> Prepared:
    """Load ``data`` (folder or manifest) and make (or read) the group split."""
    data = Path(data)
    root = data if data.is_dir() else data.parent
    if split_csv is not None and Path(split_csv).exists():
        rows = read_split(split_csv, root)
        known = {str(s.path): s for s in load_samples(data)}
        samples = [known.get(r.path) or Sample(Path(r.path), r.label) for r in rows]
        items, rep = load_all(samples, cache_dir, progress)
        check_no_leak(rows)
        summary = _summary_from_rows(rows)
        return Prepared(items, rows, rep, summary)
    samples = load_samples(data)
    items, rep = load_all(samples, cache_dir, progress)
    readable = [it.sample for it in items]
    dd = find_duplicates([it.grey for it in items], [it.label for it in items], hash_bits,
                         min_corr)
    rows = make_split(readable, dd, val_fraction, seed, drop_conflicts=not keep_conflicts)
    check_no_leak(rows)
    summary = dedup_summary(dd, readable, rows, root, hash_bits, min_corr, keep_conflicts)
    summary["skipped_unreadable"] = rep.skipped
    return Prepared(items, rows, rep, summary)


def dedup_summary(dd: DedupResult, samples, rows, root: Path, hash_bits, min_corr,
                  keep_conflicts) -> dict:
    def rel(p):
        try:
            return Path(p).relative_to(root).as_posix()
        except ValueError:
            return str(p)

    members = dd.members()
    return {
        "method": f"64-bit dHash Hamming <= {hash_bits} OR 32x32 thumbnail correlation >= "
                  f"{min_corr}; union-find groups",
        "images": len(samples),
        "groups": dd.n_groups,
        "multi_image_groups": dd.n_multi,
        "images_in_multi_groups": sum(len(m) for m in members.values() if len(m) > 1),
        "conflicting_groups": len(dd.conflicts),
        "conflict_handling": "kept in train" if keep_conflicts else "dropped (excluded_conflict)",
        "conflicts": [[rel(samples[i].path) for i in members[g]] for g in dd.conflicts],
        **_summary_from_rows(rows),
    }


def _summary_from_rows(rows) -> dict:
    out: dict = {}
    for split in ("train", "val", "excluded_conflict"):
        sel = [r for r in rows if r.split == split]
        out[f"{split}_images"] = len(sel)
        out[f"{split}_malignant"] = sum(r.label for r in sel)
        out[f"{split}_groups"] = len({r.group for r in sel})
    return out


def save_split(prep: Prepared, out_csv: Path, data: Path) -> None:
    data = Path(data)
    root = data if data.is_dir() else data.parent
    write_split(prep.rows, out_csv, root)
    Path(out_csv).with_suffix(".summary.json").write_text(json.dumps(prep.dedup_summary,
                                                                     indent=1))
