"""Decoded-image cache: grey pixels, lesion mask and its box, one .npz per image.

What is cached is the *decoded* greyscale image (and the union of its masks), not the enhanced
224 input. The shared :func:`rcdnet_desktop.core.preprocess.enhance` (resize + CLAHE + median) is
run per sample after the geometric augmentation, on exactly the region the model will see (the
whole image or a padded lesion box), as the app does at inference. Decoding a PNG is the slow
part (~10 ms); enhance() at 224 costs about 1 ms, so an epoch stays well under a minute of I/O.

The cache key is the sha256 of the image bytes, the mask bytes and :data:`CACHE_VERSION`, so a
changed file or a changed cache format never serves stale pixels.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import Sample, mask_box, read_grey, read_mask

log = logging.getLogger(__name__)

CACHE_VERSION = "decoded-v1"
MAX_SIDE = 4096  # larger images are shrunk to bound memory; BUSI (<= 1048 px) is kept as is


@dataclass
class CachedImage:
    """A decoded sample ready for augmentation."""

    sample: Sample
    grey: np.ndarray  # uint8 (H, W)
    mask: np.ndarray | None  # bool (H, W) or None
    box: tuple[int, int, int, int] | None  # x, y, w, h of the mask, in ``grey`` pixels
    found_box: tuple[int, int, int, int] | None = None  # the lesion localiser's box, if run

    @property
    def label(self) -> int:
        return self.sample.label


@dataclass
class LoadReport:
    """What was loaded and what was skipped (with the reason)."""

    loaded: int
    skipped: list[tuple[str, str]]


def content_key(sample: Sample) -> str:
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(f"|{MAX_SIDE}|".encode())
    for p in (sample.path, *sample.masks):
        h.update(Path(p).read_bytes())
        h.update(b"|")
    return h.hexdigest()[:32]


def _decode(sample: Sample) -> tuple[np.ndarray, np.ndarray | None]:
    import cv2

    grey = read_grey(sample.path)
    mask = read_mask(sample.masks, grey.shape) if sample.masks else None
    scale = MAX_SIDE / max(grey.shape)
    if scale < 1:
        size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        if mask is not None:
            mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return grey, mask


def load_one(sample: Sample, cache_dir: Path | None) -> CachedImage:
    """Decode one sample, through the cache when ``cache_dir`` is given."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{content_key(sample)}.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    grey = z["grey"]
                    mask = z["mask"] if "mask" in z.files else None
                return CachedImage(sample, grey, mask, mask_box(mask))
            except Exception as exc:  # corrupt cache entry: rebuild it
                log.warning("rebuilding corrupt cache entry %s: %s", path, exc)
    grey, mask = _decode(sample)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"grey": grey} if mask is None else {"grey": grey, "mask": mask}
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    return CachedImage(sample, grey, mask, mask_box(mask))


def load_all(samples: Sequence[Sample], cache_dir: Path | None,
             progress: bool = True) -> tuple[list[CachedImage], LoadReport]:
    """Decode every sample; unreadable ones are skipped and listed in the report (and logged)."""
    from tqdm import tqdm

    items: list[CachedImage] = []
    skipped: list[tuple[str, str]] = []
    for s in tqdm(samples, desc="decode", disable=not progress, leave=False):
        try:
            items.append(load_one(s, cache_dir))
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("skipping unreadable image %s (%s)", s.path, reason)
            skipped.append((str(s.path), reason))
    return items, LoadReport(len(items), skipped)
