"""Shared steps of the CLI: load data sources, deduplicate, split, select the split's items.

Several sources (sites) can be given at once. Each is deduplicated and split on its own, by its
own groups (near-duplicate groups, joined by patient where the site gives patient codes), so the
split of one site never depends on another site; group ids are offset to stay unique across
sites, and every row keeps its site so every metric can be reported per site.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .cache import CachedImage, LoadReport, load_all
from .data import Sample, load_samples, site_name
from .dedup import DedupResult, find_duplicates
from .split import SplitRow, check_no_leak, make_split, read_split, write_split

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    items: list[CachedImage]
    rows: list[SplitRow]
    load_report: LoadReport
    dedup_summary: dict

    def _rows(self, split: str | None) -> list[SplitRow]:
        have = {str(it.sample.path) for it in self.items}
        return [r for r in self.rows if (split is None or r.split == split) and r.path in have]

    def subset(self, split: str | None) -> list[CachedImage]:
        """Readable items of one side of the split (``None``: every readable item)."""
        by_path = {str(it.sample.path): it for it in self.items}
        return [by_path[r.path] for r in self._rows(split)]

    def groups(self, split: str | None) -> list[int]:
        """Group ids aligned with :meth:`subset`."""
        return [r.group for r in self._rows(split)]

    def sites(self, split: str | None) -> list[str]:
        """Site names aligned with :meth:`subset`."""
        return [r.site for r in self._rows(split)]


def default_cache_dir() -> Path:
    return Path(".cache") / "training"


def data_roots(data: Sequence[Path]) -> dict[str, Path]:
    """``site name -> folder`` of each data source (a folder, or a manifest's folder)."""
    roots: dict[str, Path] = {}
    for d in data:
        d = Path(d)
        name = site_name(d)
        if name in roots:
            raise ValueError(f"two data sources share the site name {name!r}: {roots[name]}, {d}")
        roots[name] = d if d.is_dir() else d.parent
    return roots


def prepare(data: Path | Sequence[Path], split_csv: Path | None, cache_dir: Path | None,
            seed: int = 0, val_fraction: float = 0.3, hash_bits: int = 4,
            min_corr: float = 0.95, keep_conflicts: bool = False,
            progress: bool = True) -> Prepared:
    """Load every source in ``data`` (folders or manifests) and make (or read) the group split."""
    sources = [Path(data)] if isinstance(data, str | Path) else [Path(d) for d in data]
    roots = data_roots(sources)
    if split_csv is not None and Path(split_csv).exists():
        rows = read_split(split_csv, roots)
        known = {str(s.path): s for d in sources for s in load_samples(d)}
        samples = [known.get(r.path) or Sample(Path(r.path), r.label, site=r.site) for r in rows]
        items, rep = load_all(samples, cache_dir, progress)
        check_no_leak(rows)
        return Prepared(items, rows, rep, summary_from_rows(rows))
    items, rows, skipped, summary = [], [], [], {}
    for source in sources:
        samples = load_samples(source)
        site_items, rep = load_all(samples, cache_dir, progress)
        readable = [it.sample for it in site_items]
        dd = find_duplicates([it.grey for it in site_items], [it.label for it in site_items],
                             hash_bits, min_corr, [s.patient for s in readable])
        offset = max((r.group for r in rows), default=-1) + 1
        site_rows = [SplitRow(r.path, r.label, r.group + offset, r.split, r.site)
                     for r in make_split(readable, dd, val_fraction, seed,
                                         drop_conflicts=not keep_conflicts)]
        name = site_name(source)
        summary[name] = dedup_summary(dd, readable, site_rows, roots[name], hash_bits, min_corr,
                                      keep_conflicts)
        items += site_items
        rows += site_rows
        skipped += rep.skipped
    check_no_leak(rows)
    if len(sources) > 1:
        summary = {**summary_from_rows(rows), "sites": summary}
    else:
        summary = next(iter(summary.values()))
    summary["skipped_unreadable"] = skipped
    return Prepared(items, rows, LoadReport(len(items), skipped), summary)


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
                  f"{min_corr}; images of one patient joined where the site gives patient "
                  "codes; union-find groups",
        "images": len(samples),
        "groups": dd.n_groups,
        "multi_image_groups": dd.n_multi,
        "images_in_multi_groups": sum(len(m) for m in members.values() if len(m) > 1),
        "conflicting_groups": len(dd.conflicts),
        "conflict_handling": "kept in train" if keep_conflicts else "dropped (excluded_conflict)",
        "conflicts": [[rel(samples[i].path) for i in members[g]] for g in dd.conflicts],
        **summary_from_rows(rows),
    }


def summary_from_rows(rows) -> dict:
    out: dict = {}
    for split in ("train", "val", "excluded_conflict"):
        sel = [r for r in rows if r.split == split]
        out[f"{split}_images"] = len(sel)
        out[f"{split}_malignant"] = sum(r.label for r in sel)
        out[f"{split}_groups"] = len({r.group for r in sel})
    sites = sorted({r.site for r in rows})
    if len(sites) > 1:
        out["images_by_site"] = {s: {sp: sum(r.site == s and r.split == sp for r in rows)
                                     for sp in ("train", "val")} for s in sites}
    return out


def save_split(prep: Prepared, out_csv: Path, data: Path | Sequence[Path]) -> None:
    sources = [Path(data)] if isinstance(data, str | Path) else [Path(d) for d in data]
    write_split(prep.rows, out_csv, data_roots(sources))
    Path(out_csv).with_suffix(".summary.json").write_text(json.dumps(prep.dedup_summary,
                                                                     indent=1))
