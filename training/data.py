"""Labelled image lists: a class-folder layout (BUSI's) or a CSV manifest.

A :class:`Sample` is one image with its label and, where present, its lesion mask files. Masks are
recognised by name (``<stem>_mask.png``, ``<stem>_mask_1.png``, ...) and attached to their image;
several masks of one image are combined as a union. Images that cannot be read are reported and
skipped by the cache (:mod:`training.cache`), never dropped silently.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.io import IMAGE_SUFFIXES  # the application's readable suffixes
from rcdnet_desktop.core.types import CLASS_NAMES

_MASK_RE = re.compile(r"^(?P<stem>.+?)_mask(?:_\d+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    """One labelled image.

    Attributes
    ----------
    path : Path
        Image file.
    label : int
        0 = benign, 1 = malignant.
    masks : tuple of Path
        Lesion mask files (union), empty when there is none.
    site : str
        The data source (hospital) the image comes from: the name of its data folder.
    patient : str or None
        Patient code where the site gives one (its ``manifest.csv``); images of one patient
        always land on the same side of a split and are resampled together.
    """

    path: Path
    label: int
    masks: tuple[Path, ...] = field(default_factory=tuple)
    site: str = ""
    patient: str | None = None

    @property
    def key(self) -> str:
        """A stable name for the split CSV: the path as given."""
        return str(self.path)


def parse_label(text: str) -> int:
    """'benign'/'malignant' (any case) or '0'/'1' -> class index."""
    t = str(text).strip().lower()
    if t in CLASS_NAMES:
        return CLASS_NAMES.index(t)
    if t in ("0", "1"):
        return int(t)
    raise ValueError(f"unknown label {text!r}; expected one of {CLASS_NAMES} or 0/1")


def site_name(source: Path) -> str:
    """The site a data source stands for: its folder's name (a manifest's parent folder)."""
    source = Path(source)
    return (source if source.is_dir() else source.parent).resolve().name


def read_patients(root: Path) -> dict[str, str]:
    """``relative file -> patient code`` from ``root/manifest.csv`` when it has both columns."""
    f = Path(root) / "manifest.csv"
    if not f.is_file():
        return {}
    with f.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"file", "patient"} <= set(reader.fieldnames or ()):
            return {}
        return {row["file"]: row["patient"] for row in reader if row["patient"].strip()}


def scan_class_folders(root: Path, classes: Sequence[str] = CLASS_NAMES) -> list[Sample]:
    """Read ``root/<class>/*`` for each class name; other folders (e.g. ``normal/``) are ignored.

    Files whose stem matches ``*_mask`` or ``*_mask_N`` are lesion masks of the image with the
    same stem in the same folder. A mask without its image is ignored (and not an image).
    Patient codes come from ``root/manifest.csv`` (columns ``file``, ``patient``) where present.
    """
    root = Path(root)
    site = site_name(root)
    patients = read_patients(root)
    samples: list[Sample] = []
    for name in classes:
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(f"class folder not found: {folder}")
        label = parse_label(name)
        images: dict[str, Path] = {}
        masks: dict[str, list[Path]] = {}
        for f in sorted(folder.iterdir()):
            if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            m = _MASK_RE.match(f.stem)
            if m:
                masks.setdefault(m.group("stem"), []).append(f)
            else:
                images[f.stem] = f
        for stem, path in sorted(images.items(), key=lambda kv: _natural_key(kv[0])):
            rel = path.relative_to(root).as_posix()
            samples.append(Sample(path, label, tuple(sorted(masks.get(stem, []))), site,
                                  patients.get(rel)))
    return samples


def read_manifest(csv_path: Path) -> list[Sample]:
    """CSV with a header ``path,label[,mask]``; relative paths are relative to the CSV.

    ``mask`` may hold several files separated by ``;`` (union); an optional ``patient`` column
    groups images of one patient.
    """
    csv_path = Path(csv_path)
    base = csv_path.parent
    site = site_name(csv_path)
    out: list[Sample] = []
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{csv_path}: header must contain 'path' and 'label'")
        for row in reader:
            p = Path(row["path"])
            masks = tuple(_resolve(base, Path(m)) for m in (row.get("mask") or "").split(";")
                          if m.strip())
            out.append(Sample(_resolve(base, p), parse_label(row["label"]), masks, site,
                              (row.get("patient") or "").strip() or None))
    return out


def load_samples(source: Path, include_masks: bool = True) -> list[Sample]:
    """A folder (class-folder layout) or a CSV manifest."""
    source = Path(source)
    samples = read_manifest(source) if source.is_file() else scan_class_folders(source)
    if not include_masks:
        samples = [replace(s, masks=()) for s in samples]
    return samples


def read_grey(path: Path) -> np.ndarray:
    """Decode an image with the application's reader and return uint8 (H, W) grey.

    Raises the reader's typed error for unreadable files.
    """
    from rcdnet_desktop.core.preprocess import to_grey

    pixels = _read_pixels(Path(path))
    return np.ascontiguousarray(to_grey(pixels))


def read_mask(paths: Sequence[Path], shape: tuple[int, int]) -> np.ndarray | None:
    """Union of the mask files as bool (H, W), or None when there is no mask or it is empty."""
    import cv2

    if not paths:
        return None
    union = np.zeros(shape, dtype=bool)
    for p in paths:
        m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise ValueError(f"{p}: cannot read mask")
        if m.shape != shape:
            m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
        union |= m > 0
    return union if union.any() else None


def mask_box(mask: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """Bounding box (x, y, w, h) of a bool mask, or None."""
    if mask is None or not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    return (x0, y0, x1 - x0, y1 - y0)


def _read_pixels(path: Path) -> np.ndarray:
    from rcdnet_desktop.core.io import read_image  # the application's reader, nothing else

    return read_image(path).pixels


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else base / p


def _natural_key(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]
