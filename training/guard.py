"""Fit the input guard on the training sites and measure every intended-use check.

``rcdnet-train guard --bundle resources/model --data BUSI --data BrEaST --split split.csv
[--external BUS-UCLM] --out docs/training/guard``:

1. re-exports the bundle's classifier graph so it gives the guard's features
   (``guard_features``) beside its logits and feature map (same weights, same logits);
2. computes those features on the whole images of the training sites AND on
   :data:`EXPORT_VARIANTS` copies of each exported the ways hospitals export scans
   (:func:`export_variant`: a tighter crop around the breast, another size and aspect, JPEG),
   so that a hospital that crops or scales its images differently is not "unfamiliar";
3. sets the limit by leave-one-site-out, not in-sample: for each site (the training sites and
   every ``--external`` one), a guard fitted on the *other* sites flags what share of this
   site's images, as exported and re-exported; the limit is the smallest multiple of the
   ``quantile``-th percentile of the fitting sites' validation distances that flags at most
   :data:`MAX_SITE_RATE` of every held-out site (:func:`choose_scale`). The shipped guard is
   fitted on the training sites only; an external site enters only this one number;
4. writes the guard into the bundle, records in the card what the self-test must find on the
   bundled samples (golden probabilities), and measures the whole guard (what the file says,
   the pixel checks and the learned score, exactly as the application runs them) on: the
   internal validation images per site, the external site (measured only), and images that are
   not breast B-mode ultrasound (DICOM test files of other modalities and other ultrasound
   found in the installed pydicom / pydicom-data packages, photographs from matplotlib's sample
   data, synthetic noise and shapes, and validation images made unusable on purpose:
   scrambled geometry, colour overlay, probe in air);
5. writes ``guard.md`` and ``guard.json`` with every rate and its 95% Wilson interval.

The external site only ever gets measured: nothing here is chosen by looking at it.
"""

from __future__ import annotations

import glob
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rcdnet_desktop.core.guard import GUARD_FEATURES, fit, npz_bytes
from rcdnet_desktop.core.model.bundle import load_localiser, load_model
from training.augment import reexport
from training.bundle_write import save_card, save_guard, save_onnx

SHRINKAGE = 0.1
QUANTILE = 99.5
EXPORT_VARIANTS = 3
"""Re-exported copies of each image that the guard is fitted and measured on."""
MAX_SITE_RATE = 0.05
"""The most genuine breast ultrasound the guard may flag at a site it was not fitted on."""
SCALES = tuple(round(1.0 + 0.025 * i, 3) for i in range(25))
"""Multiples of the quantile tried for the limit, strictest first."""
SAMPLES = ("busi_benign_sample.png", "busi_malignant_sample.png")
GOLDEN_TOLERANCE = 1e-4

Loader = Callable[[], object]  # returns an ImageRecord or a uint8 array


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``k / n``."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def _rate(flags: Sequence[bool]) -> dict:
    k, n = int(sum(flags)), len(flags)
    lo, hi = wilson(k, n)
    return {"flagged": k, "n": n, "rate": k / n if n else float("nan"), "ci95": [lo, hi]}


# --- image sets ----------------------------------------------------------------------------------

def internal_sets(data: Sequence[Path], split_csv: Path) -> dict[tuple[str, str], list[Path]]:
    """``(site, split) -> image paths`` from the split CSV (excluded rows left out)."""
    from .pipeline import data_roots
    from .split import read_split

    out: dict[tuple[str, str], list[Path]] = {}
    for row in read_split(split_csv, data_roots(data)):
        if row.split in ("train", "val"):
            out.setdefault((row.site, row.split), []).append(Path(row.path))
    return out


def external_paths(root: Path) -> list[Path]:
    from .data import load_samples

    return [s.path for s in load_samples(root, include_masks=False)]


def _installed(package: str, *parts: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def other_images() -> Iterator[tuple[str, str, Loader]]:
    """``(name, kind, loader)`` of every image that is not breast B-mode ultrasound."""
    import pydicom

    from rcdnet_desktop.core.io import read_image

    folders = [_installed("pydicom", "data", "test_files"), _installed("data_store", "data")]
    for folder in folders:
        for f in sorted(glob.glob(str(folder / "**" / "*.dcm"), recursive=True)) if folder else []:
            try:
                modality = str(pydicom.dcmread(f, stop_before_pixels=True).get("Modality", ""))
            except Exception:  # noqa: BLE001 - unreadable headers are a kind of their own
                modality = "unreadable header"
            kind = f"DICOM {modality or 'without modality'}"
            yield Path(f).name, kind, (lambda f=f: read_image(f))
    sample = _installed("matplotlib", "mpl-data", "sample_data")
    for f in sorted(glob.glob(str(sample / "*.[pj][np]g"))) if sample else []:
        yield Path(f).name, "photograph or drawing", (lambda f=f: read_image(f))
    rng = np.random.default_rng(0)
    for k in range(10):
        h, w = (int(v) for v in rng.integers(300, 700, 2))
        yield f"noise_{k}", "synthetic noise", (lambda h=h, w=w, s=k: np.random.default_rng(
            s).integers(0, 256, (h, w), dtype=np.uint8))
        yield f"gradient_{k}", "synthetic gradient", (lambda h=h, w=w: np.tile(
            np.linspace(0, 255, w).astype(np.uint8), (h, 1)))
        yield f"shapes_{k}", "synthetic shapes", (lambda h=h, w=w, s=k: _shapes(h, w, s))


def _shapes(h: int, w: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.uint8)
    for _ in range(6):
        c = tuple(int(v) for v in rng.integers(0, min(h, w), 2))
        cv2.circle(img, c, int(rng.integers(10, 80)), int(rng.integers(60, 255)), -1)
    return img


def spoiled(paths: Sequence[Path]) -> Iterator[tuple[str, str, Loader]]:
    """Validation images made unusable the way real files are: scrambled geometry (wrong
    width, swapped or halved Rows/Columns, RGB read as grey), a colour-flow patch, and a
    probe-in-air frame (black with on-screen text)."""
    import cv2

    from rcdnet_desktop.core.io import read_image

    def grey(p: Path) -> np.ndarray:
        px = read_image(p).pixels
        return px if px.ndim == 2 else px.max(axis=2)

    def swapped(g):
        return g.ravel().reshape(g.shape[1], g.shape[0])

    def halved(g):
        w = g.shape[1] // 2
        return g.ravel()[: g.size // w * w].reshape(-1, w)

    def rgb_as_grey(g):
        return np.repeat(g.ravel(), 3)[: g.size].reshape(g.shape)

    def colour_flow(g):
        rgb = np.stack([g] * 3, axis=2)
        h, w = g.shape
        y0, x0 = h // 3, w // 3
        patch = rgb[y0:y0 + h // 4, x0:x0 + w // 4]
        ramp = np.linspace(0, 1, patch.shape[1])[None, :]
        patch[..., 0] = (255 * ramp).astype(np.uint8)
        patch[..., 2] = (255 * (1 - ramp)).astype(np.uint8)
        patch[..., 1] = 40
        return rgb

    def probe_in_air(g):
        img = np.zeros_like(g)
        for i, text in enumerate(("BREAST L", "12L-RS 9.0MHz", "Gain 52 DR 60", "Depth 4.0cm")):
            cv2.putText(img, text, (10, 25 + 22 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 220, 1)
        return img

    for p in paths:
        for kind, fn in (("scrambled: Rows and Columns swapped", swapped),
                         ("scrambled: half the Columns", halved),
                         ("scrambled: RGB data read as grey", rgb_as_grey),
                         ("colour-flow patch", colour_flow), ("probe in air", probe_in_air)):
            yield f"{p.name} ({kind})", kind, (lambda p=p, fn=fn: fn(grey(p)))


# --- export variants ------------------------------------------------------------------------

def export_variant(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same scan as another hospital might export it: cropped tighter around the breast
    (40-85% of each side kept), resampled to a long side of 250-900 px with the aspect changed
    by up to 25%, and, half the time, saved as JPEG at quality 40-90
    (:func:`training.augment.reexport` with its default ranges)."""
    return reexport(pixels, rng)[0]


def variant_loaders(paths: Sequence[Path], copies: int, seed: int = 0) -> list[Loader]:
    """``copies`` re-exported versions of each image (:func:`export_variant`), reproducibly."""
    from rcdnet_desktop.core.io import read_image

    out: list[Loader] = []
    for i, p in enumerate(paths):
        for k in range(copies):
            rng = np.random.default_rng([seed, i, k])
            out.append(lambda p=p, rng=rng: export_variant(read_image(p).pixels, rng))
    return out


# --- features and checks ----------------------------------------------------------------------

def _prepared(engine, loaders: Sequence[Loader]):
    from rcdnet_desktop.core.errors import RcdNetError

    out = []
    for load in loaders:
        try:
            out.append(engine.prepare(load(), auto_box=False))
        except (RcdNetError, ValueError, OSError):
            out.append(None)
    return out


def features(engine, paths: Sequence[Path]) -> np.ndarray:
    """Guard features of each image's whole-image view."""
    from rcdnet_desktop.core.io import read_image

    return loader_features(engine, [lambda p=p: read_image(p) for p in paths])


def loader_features(engine, loaders: Sequence[Loader]) -> np.ndarray:
    """Guard features of each loaded image's whole-image view (unreadable ones left out)."""
    items = _prepared(engine, loaders)
    return engine.guard_features([it for it in items if it is not None])


@dataclass(frozen=True)
class SiteFeatures:
    """One site's guard features: ``fit`` and ``val`` (as exported, then re-exported), and
    ``exported`` / ``reexported`` (all of its images, for measuring it when held out)."""

    fit: np.ndarray
    val: np.ndarray
    exported: np.ndarray
    reexported: np.ndarray


def site_features(engine, fit_paths: Sequence[Path], val_paths: Sequence[Path],
                  copies: int) -> SiteFeatures:
    f_fit, f_val = features(engine, fit_paths), features(engine, val_paths)
    v_fit = loader_features(engine, variant_loaders(fit_paths, copies, seed=1))
    v_val = loader_features(engine, variant_loaders(val_paths, copies, seed=2))
    return SiteFeatures(fit=np.concatenate([f_fit, v_fit]), val=np.concatenate([f_val, v_val]),
                        exported=np.concatenate([f_fit, f_val]),
                        reexported=np.concatenate([v_fit, v_val]))


def patient_halves(paths: Sequence[Path], patients: Sequence[str | None]):
    """Split a site without a split into fitting and validation images by patient (every third
    patient, in sorted order, to validation), so one patient is never on both sides."""
    codes = sorted({c or p.name for p, c in zip(paths, patients, strict=True)})
    val = {c for i, c in enumerate(codes) if i % 3 == 2}
    fit_p = [p for p, c in zip(paths, patients, strict=True) if (c or p.name) not in val]
    val_p = [p for p, c in zip(paths, patients, strict=True) if (c or p.name) in val]
    return fit_p, val_p


@dataclass(frozen=True)
class HeldOut:
    """A site measured by a guard fitted on the other sites: that guard's limit at scale 1 and
    the site's distances, as exported and re-exported."""

    limit: float
    exported: np.ndarray
    reexported: np.ndarray

    def flagged(self, scale: float) -> tuple[int, int]:
        """``(flagged, n)`` of all of the site's images at the limit ``scale * limit``."""
        d = np.concatenate([self.exported, self.reexported])
        return int((d > self.limit * scale).sum()), len(d)


def held_out(feats: dict[str, SiteFeatures], shrinkage: float,
             quantile: float) -> dict[str, HeldOut]:
    """Leave each site out in turn: a guard fitted on the other sites measures it."""
    out: dict[str, HeldOut] = {}
    for site in feats:
        kept = [s for s in feats if s != site]
        g, _, _ = fit(np.concatenate([feats[s].fit for s in kept]),
                      np.concatenate([feats[s].val for s in kept]), shrinkage, quantile)
        out[site] = HeldOut(g.threshold, g.distance(feats[site].exported),
                            g.distance(feats[site].reexported))
    return out


def held_out_rates(feats: dict[str, SiteFeatures], shrinkage: float, quantile: float,
                   scales: Sequence[float] = SCALES) -> dict[str, dict[float, tuple[int, int]]]:
    """For each site, a guard fitted on the other sites: how many of this site's images (as
    exported and re-exported) it flags at each limit ``scale * quantile``; ``site -> scale ->
    (flagged, n)``."""
    return {site: {sc: h.flagged(sc) for sc in scales}
            for site, h in held_out(feats, shrinkage, quantile).items()}


def choose_scale(rates: dict[str, dict[float, tuple[int, int]]],
                 max_rate: float = MAX_SITE_RATE) -> float:
    """The smallest scale at which no held-out site is flagged above ``max_rate`` (the
    largest tried when none is)."""
    scales = sorted(next(iter(rates.values())))
    for sc in scales:
        if all(k / n <= max_rate for r in rates.values() for k, n in [r[sc]]):
            return sc
    return scales[-1]


def flagged(engine, loaders: Sequence[Loader]) -> list[bool | None]:
    """Whether the application's checks flag each image (None: it cannot be read at all,
    which the application reports as an error, not a result)."""
    from rcdnet_desktop.core.errors import RcdNetError

    out: list[bool | None] = []
    for load in loaders:
        try:
            out.append(engine.predict(load()).outside_intended_use)
        except (RcdNetError, ValueError, OSError):
            out.append(None)
    return out


# --- the command -----------------------------------------------------------------------------

def run(bundle: Path, data: Sequence[Path], split_csv: Path, external: Sequence[Path],
        out_dir: Path, version: str | None = None, shrinkage: float = SHRINKAGE,
        quantile: float = QUANTILE, copies: int = EXPORT_VARIANTS,
        reexport: bool = True) -> dict:
    from rcdnet_desktop.core.model.engine import InferenceEngine

    from .data import load_samples

    model, card = load_model(bundle)
    if reexport:
        card = save_onnx(model, load_localiser(bundle, card), card, bundle)
    engine = InferenceEngine(bundle, device="cpu", backend="onnx")
    sets = internal_sets(data, split_csv)
    sites = sorted({site for site, _ in sets})
    feats = {s: site_features(engine, sets[(s, "train")], sets[(s, "val")], copies)
             for s in sites}
    guard, mean, precision = fit(np.concatenate([feats[s].fit for s in sites]),
                                 np.concatenate([feats[s].val for s in sites]), shrinkage,
                                 quantile)
    # Leave one site out, the external ones included: they enter this one number only.
    held = dict(feats)
    for root in external:
        samples = load_samples(Path(root), include_masks=False)
        fit_p, val_p = patient_halves([x.path for x in samples], [x.patient for x in samples])
        held[Path(root).name] = site_features(engine, fit_p, val_p, copies)
    measured = held_out(held, shrinkage, quantile)
    scale = choose_scale({s: {sc: h.flagged(sc) for sc in SCALES}
                          for s, h in measured.items()})
    guard = replace(guard, threshold=guard.threshold * scale)
    loso = {}
    for s, h in measured.items():  # the figure at the chosen limit, and its two halves
        limit = h.limit * scale
        loso[s] = {"as exported and re-exported": _count(h.flagged(scale)),
                   "as exported": _rate(list(h.exported > limit)),
                   "re-exported": _rate(list(h.reexported > limit)),
                   "site": "training" if s in sites else "external"}

    section = {"features": GUARD_FEATURES, "transform": "signed_log1p",
               "dim": int(mean.shape[0]), "shrinkage": shrinkage,
               "threshold": round(guard.threshold, 4), "quantile": quantile,
               "fitted_on": {s: {"train": len(sets[(s, "train")]),
                                 "val": len(sets[(s, "val")]),
                                 "re-exported copies each": copies} for s in sites},
               "metrics": {"limit": {"scale": scale, "rule": LIMIT_RULE.format(
                               scale=scale, quantile=quantile, rate=MAX_SITE_RATE)},
                           "leave_one_site_out": loso}}
    card = save_guard(card, bundle, npz_bytes(mean, precision), section)
    engine = InferenceEngine(bundle, device="cpu", backend="onnx")

    from rcdnet_desktop.core.io import read_image

    def path_loaders(paths):
        return [lambda p=p: read_image(p) for p in paths]

    report: dict = {"threshold": guard.threshold, "quantile": quantile, "shrinkage": shrinkage,
                    "scale": scale, "copies": copies, "leave_one_site_out": loso, "breast": {},
                    "other": {}}
    def breast(name: str, loaders) -> None:
        report["breast"][name] = _rate([f for f in flagged(engine, loaders) if f is not None])

    for s in sites:
        val = sets[(s, "val")]
        breast(f"{s} validation (internal)", path_loaders(val))
        breast(f"{s} validation, re-exported (internal)", variant_loaders(val, 1, seed=3))
    for root in external:
        paths = external_paths(root)
        breast(f"{Path(root).name} (external)", path_loaders(paths))
        breast(f"{Path(root).name}, re-exported (external)", variant_loaders(paths, 1, seed=3))
    kinds: dict[str, list[bool]] = {}
    unreadable: dict[str, int] = {}
    val_paths = [p for s in sites for p in sets[(s, "val")][:20]]
    for _name, kind, load in (*other_images(), *spoiled(val_paths)):
        f = flagged(engine, [load])[0]
        if f is None:
            unreadable[kind] = unreadable.get(kind, 0) + 1
        else:
            kinds.setdefault(kind, []).append(f)
    report["other"] = {k: _rate(v) for k, v in sorted(kinds.items())}
    report["other_all"] = _rate([f for v in kinds.values() for f in v])
    report["unreadable"] = unreadable

    section["metrics"].update({"internal_validation": {k: v for k, v in report["breast"].items()
                                                       if "internal" in k},
                               "external": {k: v for k, v in report["breast"].items()
                                            if "external" in k},
                               "not_breast_b_mode": report["other_all"]})
    card = save_guard(card, bundle, npz_bytes(mean, precision), section)
    card = record_self_test(card, bundle, version)
    write_report(report, out_dir)
    return report


LIMIT_RULE = ("{scale:g} x the {quantile}th percentile of the fitting sites' validation "
              "distances (as exported and re-exported): the smallest multiple at which a guard "
              "fitted on the other sites flags at most {rate:.0%} of each site held out")


def _count(kn: tuple[int, int]) -> dict:
    k, n = kn
    lo, hi = wilson(k, n)
    return {"flagged": k, "n": n, "rate": k / n if n else float("nan"), "ci95": [lo, hi]}


def record_self_test(card, bundle: Path, version: str | None):
    """Golden P(malignant) of the bundled samples, as ``rcdnet self-test`` computes them."""
    from rcdnet_desktop.core.io import read_image
    from rcdnet_desktop.core.model.engine import InferenceEngine
    from rcdnet_desktop.core.resources import resources_dir

    if version:
        card = save_card(replace(card, version=version), bundle)
    engine = InferenceEngine(bundle, device="cpu", backend="onnx")
    probs = {name: round(engine.predict(read_image(resources_dir() / "samples" / name))
                         .p_malignant, 6) for name in SAMPLES}
    separation = probs["busi_malignant_sample.png"] - probs["busi_benign_sample.png"]
    self_test = {"samples": probs, "tolerance": GOLDEN_TOLERANCE,
                 "min_separation": round(max(0.0, separation / 2), 4),
                 "weights_sha256": card.weights["sha256"]}
    return save_card(replace(card, self_test=self_test), bundle)


def write_report(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "guard.json").write_text(json.dumps(report, indent=2) + "\n")

    def row(name: str, r: dict) -> str:
        lo, hi = r["ci95"]
        return f"| {name} | {r['flagged']} / {r['n']} | {r['rate']:.1%} [{lo:.1%}, {hi:.1%}] |"

    lines = ["# Input guard: what it flags", "",
             f"Learned score: Mahalanobis distance of the backbone's last block features "
             f"(signed log1p, covariance shrunk by {report['shrinkage']}), fitted on the "
             f"training sites' images as exported and on {report['copies']} re-exported copies "
             "of each (a tighter crop around the breast, another size and aspect, JPEG: the "
             "ways hospitals export scans). Limit "
             f"{report['threshold']:.1f} = {report['scale']:g} x the {report['quantile']}th "
             "percentile of the validation images' distances, the multiple chosen by leaving "
             "one site out (below), not in-sample. The rates below are of the whole guard as the "
             "application runs it (what the DICOM file says, the pixel checks and the learned "
             "score): an image counts as flagged when its result is marked outside intended "
             "use. 95% Wilson intervals.", "",
             "## Breast B-mode ultrasound (should pass: <= 5% flagged)", "",
             "| images | flagged | rate [95% CI] |", "|---|---|---|"]
    lines += [row(k, v) for k, v in report["breast"].items()]
    lines += ["", "Leave one site out (the learned score alone, fitted on the other sites, at the "
              "chosen limit): the share of the held-out site flagged, as its images were "
              "exported and re-exported as another hospital might; what a new hospital sees. "
              "The external site enters only the choice of the limit's multiple: the shipped "
              "guard is fitted on the training sites.", "",
              "| held-out site | images | flagged | rate [95% CI] |", "|---|---|---|---|"]
    for site, r in report["leave_one_site_out"].items():
        for name in ("as exported", "re-exported"):
            v = r[name]
            lo, hi = v["ci95"]
            lines.append(f"| {site} ({r['site']}) | {name} | {v['flagged']} / {v['n']} | "
                         f"{v['rate']:.1%} [{lo:.1%}, {hi:.1%}] |")
    lines += ["", "## Not breast B-mode ultrasound (should be flagged: >= 95%)", "",
              "| kind | flagged | rate [95% CI] |", "|---|---|---|"]
    lines += [row(k, v) for k, v in report["other"].items()]
    lines += [row("**all of the above**", report["other_all"])]
    if report["unreadable"]:
        lines += ["", "Files the application refuses to read at all (reported as errors, not "
                  "results; not counted above): " + ", ".join(
                      f"{k} {v}" for k, v in sorted(report["unreadable"].items())) + "."]
    (out_dir / "guard.md").write_text("\n".join(lines) + "\n")
