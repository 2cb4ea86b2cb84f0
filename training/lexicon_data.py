"""What the lexicon heads learn from: BrEaST's radiologists' descriptors and the classifier's
pooled features of each lesion's padded box.

The descriptors come from the site's ``manifest.csv`` (columns ``shape``, ``margin``,
``echogenicity``, ``posterior_features``, ``calcifications``); each is mapped to the classes the
application names (:data:`rcdnet_desktop.core.lexicon.DESCRIPTORS`). Classes with too few
lesions to learn or to measure are merged or left out here, in one place:

* shape: ``round`` (15 lesions) is merged with ``oval`` ("oval or round"): both are the
  lexicon's regular, circumscribed-looking shapes and 15 lesions leave about 4 for validation;
* echo pattern: ``anechoic`` (15), ``isoechoic`` (12), ``complex cystic/solid`` (11) and
  ``hyperechoic`` (9) are merged into "other (anechoic, isoechoic, hyperechoic or complex)";
* posterior features: ``combined`` (7 lesions) is left out of that descriptor (neither
  shadowing nor enhancement alone);
* calcifications: ``in a mass``, ``intraductal`` and ``indefinable`` (27 in all) are "present";
* margin subtypes (indistinct, angular, microlobulated, spiculated) are one yes/no descriptor
  each over every lesion (a circumscribed lesion has none), as the lexicon allows several.

Halo (not a descriptor of the current lexicon's margin) and skin thickening (15 lesions) are not
learned.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.lexicon import DESCRIPTORS

MISSING = -1
"""Label of a lesion left out of a descriptor (its class is not learned)."""

_ECHO = {"hypoechoic": 0, "heterogeneous": 1, "anechoic": 2, "isoechoic": 2,
         "complex cystic/solid": 2, "hyperechoic": 2}
_POSTERIOR = {"no": 0, "shadowing": 1, "enhancement": 2}


def _subtypes(margin: str) -> set[str]:
    m = margin.strip().lower()
    if not m.startswith("not circumscribed"):
        return set()
    return {s.strip() for s in m.partition("-")[2].split("&") if s.strip()}


def descriptor_labels(row: dict[str, str]) -> dict[str, int]:
    """Class index of every descriptor for one manifest row (:data:`MISSING` when left out)."""
    shape = row["shape"].strip().lower()
    margin = row["margin"].strip().lower()
    sub = _subtypes(margin)
    calc = row["calcifications"].strip().lower()
    out = {
        "shape": {"oval": 0, "round": 0, "irregular": 1}.get(shape, MISSING),
        "margin": (0 if margin == "circumscribed" else
                   1 if margin.startswith("not circumscribed") else MISSING),
        "echo pattern": _ECHO.get(row["echogenicity"].strip().lower(), MISSING),
        "posterior features": _POSTERIOR.get(row["posterior_features"].strip().lower(),
                                             MISSING),
        "calcifications": (MISSING if not calc else 0 if calc == "no" else 1),
    }
    for name in ("indistinct", "angular", "microlobulated", "spiculated"):
        out[f"margin {name}"] = MISSING if out["margin"] == MISSING else int(name in sub)
    missing = set(DESCRIPTORS) - set(out)
    assert not missing, missing
    return out


def read_site(root: Path) -> tuple[list[Path], list[int], dict[str, np.ndarray]]:
    """Images, malignancy labels and descriptor labels ``{name: (N,) int}`` of a site whose
    ``manifest.csv`` carries the descriptors (BrEaST)."""
    from .data import parse_label

    root = Path(root)
    manifest = root / "manifest.csv"
    with manifest.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if not (r.get("dropped") or "").strip()]
    needed = {"file", "cls", "shape", "margin", "echogenicity", "posterior_features",
              "calcifications"}
    if not rows or not needed <= set(rows[0]):
        raise ValueError(f"{manifest}: needs the columns {sorted(needed)} (the BI-RADS "
                         "lexicon descriptors of each lesion)")
    paths = [root / r["file"] for r in rows]
    labels = [descriptor_labels(r) for r in rows]
    return (paths, [parse_label(r["cls"]) for r in rows],
            {n: np.array([lab[n] for lab in labels]) for n in DESCRIPTORS})


def mask_boxes(paths: Sequence[Path]) -> list[tuple[int, int, int, int] | None]:
    """The bounding box of each image's lesion mask (``<stem>_mask.png`` beside it)."""
    from PIL import Image

    from .data import mask_box, read_mask

    out = []
    for p in paths:
        masks = sorted(p.parent.glob(f"{p.stem}_mask*.png"))
        with Image.open(p) as im:
            shape = (im.height, im.width)
        out.append(mask_box(read_mask(masks, shape)))
    return out


def localiser_boxes(engine, paths: Sequence[Path]) -> list[tuple[int, int, int, int] | None]:
    """The lesion box the bundle's localiser finds on each image, as the application finds it
    when no box is drawn (None where it finds none with the card's confidence)."""
    from rcdnet_desktop.core.io import read_image

    out = []
    for p in paths:
        item = engine.prepare(read_image(p))
        out.append(item.box.as_tuple() if item.box_source == "auto" else None)
    return out


def box_views(engine, paths: Sequence[Path], boxes: Sequence, cache: Path | None = None,
              progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's pooled features ``(N, D)`` of each image's padded lesion box and its
    P(malignant) ``(N,)`` on that box, exactly as the application computes them
    (``engine.prepare`` with the box as a user box, then
    :meth:`~rcdnet_desktop.core.model.engine.InferenceEngine.box_features` and
    ``predict_prepared``). Cached in ``cache`` (an ``.npz``) keyed by the weights, the margin,
    the images and the boxes."""
    from rcdnet_desktop.core.io import read_image

    key = hashlib.sha256(repr((engine.card.weights["sha256"], engine.card.temperature,
                               engine.card.roi_margin, [str(p) for p in paths],
                               list(boxes))).encode()).hexdigest()
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return np.asarray(z["features"]), np.asarray(z["p_malignant"])
    rows, probs = [], []
    for i, (p, box) in enumerate(zip(paths, boxes, strict=True)):
        item = engine.prepare(read_image(p), roi=box, auto_box=False)
        rows.append(engine.box_features([item])[0])
        probs.append(engine.predict_prepared([item])[0].p_malignant)
        if progress and (i + 1) % 25 == 0:
            print(f"  lesion boxes {i + 1}/{len(paths)}", flush=True)
    feats, p_malignant = np.stack(rows).astype(np.float32), np.array(probs)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, key=np.array(key), features=feats, p_malignant=p_malignant)
    return feats, p_malignant
