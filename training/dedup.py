"""Near-duplicate detection on image content, grouped with union-find.

Two images are near-duplicates when EITHER
- their 64-bit difference hashes (dHash of a 9x8 thumbnail) differ in at most
  ``hash_bits`` bits, OR
- the Pearson correlation of their 32x32 grey thumbnails is at least ``min_corr``.

The hash catches re-encodes and small intensity changes; the correlation catches the slightly
different crops of one scan that BUSI contains. Images of one patient (where a site gives patient
codes) are linked too. Pairs are linked transitively into groups. A
group whose members carry different labels is a *conflict*; by default conflicting groups are
dropped from training and evaluation (their labels cannot both be right) and listed in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

THUMB = 32


def dhash(grey: np.ndarray) -> int:
    """64-bit difference hash of a uint8 grey image."""
    import cv2

    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def thumbnail(grey: np.ndarray, size: int = THUMB) -> np.ndarray:
    """Zero-mean, unit-norm float32 thumbnail (flattened)."""
    import cv2

    t = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    t -= t.mean()
    n = np.linalg.norm(t)
    return t / n if n > 0 else t


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class DedupResult:
    """Group id per image (the smallest member index), plus summary numbers."""

    groups: list[int]
    pairs: list[tuple[int, int, int, float]] = field(default_factory=list)  # i, j, bits, corr
    conflicts: list[int] = field(default_factory=list)  # group ids with mixed labels

    @property
    def n_groups(self) -> int:
        return len(set(self.groups))

    def members(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, g in enumerate(self.groups):
            out.setdefault(g, []).append(i)
        return out

    @property
    def n_multi(self) -> int:
        return sum(1 for m in self.members().values() if len(m) > 1)


def find_duplicates(greys: Sequence[np.ndarray], labels: Sequence[int], hash_bits: int = 4,
                    min_corr: float = 0.95,
                    patients: Sequence[str | None] | None = None) -> DedupResult:
    """Group near-duplicate images; see the module docstring for the criteria.

    ``patients`` (a code per image, None where unknown) also links every image of one patient
    into one group, so a group is the unit a split keeps together and a bootstrap resamples.
    """
    n = len(greys)
    hashes = np.array([dhash(g) for g in greys], dtype=np.uint64)
    thumbs = np.stack([thumbnail(g) for g in greys]) if n else np.zeros((0, THUMB * THUMB))
    corr = thumbs @ thumbs.T
    uf = UnionFind(n)
    pairs = []
    for i in range(n):
        x = np.bitwise_xor(hashes[i], hashes[i + 1:])
        bits = np.array([int(v).bit_count() for v in x], dtype=int)
        c = corr[i, i + 1:]
        for k in np.nonzero((bits <= hash_bits) | (c >= min_corr))[0]:
            j = i + 1 + int(k)
            uf.union(i, j)
            pairs.append((i, j, int(bits[k]), float(c[k])))
    first_of: dict[str, int] = {}
    for i, code in enumerate(patients or ()):
        if code is not None:
            uf.union(first_of.setdefault(code, i), i)
    groups = [uf.find(i) for i in range(n)]
    res = DedupResult(groups, pairs)
    res.conflicts = sorted(g for g, m in res.members().items()
                           if len({int(labels[i]) for i in m}) > 1)
    return res
