"""Stratified train/validation split by near-duplicate group, saved as an auditable CSV.

Every member of a near-duplicate group lands on the same side, so no scan (or a re-crop of it)
is seen in training and then scored in validation. Groups are drawn per class (groups carry a
single label once conflicting groups are dropped) with a fixed seed until the validation side
holds ``val_fraction`` of that class's images.

CSV columns: ``path,label,group,split,site`` with split one of ``train``, ``val`` or
``excluded_conflict`` (members of a group whose images carry different labels). Several sites
are split each on its own (each by its own groups, stratified by label) and written to one CSV;
``path`` is relative to its site's data folder and ``group`` is unique across sites. A CSV
without the ``site`` column (one site) is still read.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.types import CLASS_NAMES

from .data import Sample
from .dedup import DedupResult

SPLITS = ("train", "val", "excluded_conflict")


@dataclass(frozen=True)
class SplitRow:
    path: str
    label: int
    group: int
    split: str
    site: str = ""


def make_split(samples: Sequence[Sample], dedup: DedupResult, val_fraction: float = 0.3,
               seed: int = 0, drop_conflicts: bool = True) -> list[SplitRow]:
    """Assign each sample to train/val by group, stratified by label."""
    rng = np.random.default_rng(seed)
    members = dedup.members()
    conflicts = set(dedup.conflicts)
    split_of: dict[int, str] = {}
    for g in conflicts:
        split_of[g] = "excluded_conflict" if drop_conflicts else "train"
    for label in sorted({s.label for s in samples}):
        gids = sorted(g for g, m in members.items() if g not in conflicts
                      and samples[m[0]].label == label)
        total = sum(len(members[g]) for g in gids)
        target = val_fraction * total
        order = rng.permutation(len(gids))
        n_val = 0
        for k in order:
            g = gids[k]
            size = len(members[g])
            # Take the group when that brings the count closer to the target.
            if abs(n_val + size - target) < abs(n_val - target):
                split_of[g] = "val"
                n_val += size
            else:
                split_of[g] = "train"
    return [SplitRow(str(s.path), s.label, dedup.groups[i], split_of[dedup.groups[i]], s.site)
            for i, s in enumerate(samples)]


def write_split(rows: Sequence[SplitRow], path: Path,
                roots: Mapping[str, Path] | None = None) -> None:
    """Write the CSV; paths are written relative to their site's root when given (portable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "group", "split", "site"])
        for r in rows:
            p = Path(r.path)
            if roots and r.site in roots:
                with contextlib.suppress(ValueError):
                    p = p.relative_to(roots[r.site])
            w.writerow([p.as_posix(), CLASS_NAMES[r.label], r.group, r.split, r.site])


def read_split(path: Path, roots: Mapping[str, Path] | None = None) -> list[SplitRow]:
    """Read a split CSV; relative paths are resolved against their site's data folder.

    A CSV without a ``site`` column belongs to the only site in ``roots``.
    """
    from .data import parse_label

    roots = dict(roots or {})
    rows = []
    with Path(path).open(newline="") as fh:
        for r in csv.DictReader(fh):
            site = r.get("site") or (next(iter(roots)) if len(roots) == 1 else "")
            p = Path(r["path"])
            if not p.is_absolute() and site in roots:
                p = Path(roots[site]) / p
            if r["split"] not in SPLITS:
                raise ValueError(f"{path}: unknown split {r['split']!r}")
            rows.append(SplitRow(str(p), parse_label(r["label"]), int(r["group"]), r["split"],
                                 site))
    return rows


def check_no_leak(rows: Sequence[SplitRow]) -> None:
    """Raise if a group has members on both the train and the validation side."""
    sides: dict[int, set[str]] = {}
    for r in rows:
        sides.setdefault(r.group, set()).add(r.split)
    leaks = [g for g, s in sides.items() if {"train", "val"} <= s]
    if leaks:
        raise ValueError(f"groups on both sides of the split: {leaks[:10]}")
