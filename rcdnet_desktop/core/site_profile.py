"""A site profile: the bundled model's operating point adapted to one hospital, without retraining.

No Qt and no torch here. A hospital measures the bundled model on its own scanners' images
(``rcdnet validate``) and keeps, in a small JSON file, what it measured:

* **the guard limit** for its scanners (:func:`fit_guard_limit`), from the input guard's
  distances of its own unlabelled breast ultrasound images;
* **a temperature** (:func:`rcdnet_desktop.core.metrics.fit_temperature`, the fitting the
  training package uses), from the logits and labels of its labelled cases;
* **a suspicious cut-off** for a chosen sensitivity (:func:`cutoff_for_sensitivity`), with the
  sensitivity and specificity measured there and their 95% intervals, resampled by patient
  (:func:`measure_at_cutoff`).

The file is tied to one model: its version and the sha256 of the bundle's classifier weights
(the model card's ``weights.sha256``). Its own sha256, over the canonical JSON of everything
else (:func:`canonical_bytes`), is written inside it. :func:`read_profile` refuses, with one
sentence naming the file and the reason, a file that was changed by even one byte, that is not
a profile, or whose model is not the one running (:func:`check_model`).

The engine applies a profile (:meth:`rcdnet_desktop.core.model.engine.InferenceEngine.
use_profile`): its temperature replaces the card's, its cut-off decides
``Prediction.suspicious`` (and is ``Prediction.threshold``), and its guard limit replaces the
card's. Every place that shows a result then says so in the words of
:func:`rcdnet_desktop.core.result.site_sentence`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from rcdnet_desktop.core.atomic import atomic_write
from rcdnet_desktop.core.errors import RcdNetError
from rcdnet_desktop.core.metrics import binary_metrics, bootstrap_ci, fit_temperature, softmax

PROFILE_FORMAT = "rcdnet-site-profile"
PROFILE_VERSION = 1

GUARD_QUANTILE = 98.0
"""The site's guard limit is at least this percentile of its own images' distances, so the
guard flags at most 2% of the genuine breast ultrasound of the site's scanners."""
GUARD_MAX_RAISE = 1.5
"""The most a site's limit may exceed the bundle's, as a multiple. Images farther than that
from the training data are not made familiar by a profile: the profile is refused."""
MIN_GUARD_IMAGES = 20
"""Fewest images a guard limit is fitted on (a few hundred are advisable)."""
MIN_CLASS_CASES = 10
"""Fewest cancers, and fewest benign cases, a temperature and a cut-off are fitted on."""


class ProfileError(RcdNetError):
    """A site profile cannot be made, read or used; the message is one plain sentence."""


@dataclass(frozen=True)
class SiteProfile:
    """What one site measured, and the model it measured it on.

    Attributes
    ----------
    site : str
        The site's name, as every place that shows a result will print it.
    created : str
        The day it was made (ISO ``YYYY-MM-DD``).
    model_version, classifier_sha256 : str
        The model card's version and its classifier weights' sha256: the only model the
        profile may be used with.
    cases, patients : int
        Images and patients it was made from (patients 0 when not known: unlabelled images).
    guard_limit : float or None
        The input guard's limit for this site's scanners (None: the card's).
    guard_flagged : float or None
        Share of the site's images the guard flags at ``guard_limit``.
    temperature : float or None
        Temperature for this site's logits (None: the card's).
    cutoff : float or None
        The suspicious cut-off for this site (None: the card's).
    target_sensitivity : float or None
        The sensitivity the cut-off was chosen for.
    sensitivity, specificity : float or None
        Measured at ``cutoff`` on the site's cases (the sensitivity is at least the target
        there by construction: an optimistic figure for future cases).
    sensitivity_ci, specificity_ci : (float, float) or None
        Their 95% intervals, resampled by patient.
    """

    site: str
    created: str
    model_version: str
    classifier_sha256: str
    cases: int
    patients: int = 0
    guard_limit: float | None = None
    guard_flagged: float | None = None
    temperature: float | None = None
    cutoff: float | None = None
    target_sensitivity: float | None = None
    sensitivity: float | None = None
    sensitivity_ci: tuple[float, float] | None = None
    specificity: float | None = None
    specificity_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The profile's fields as JSON values (intervals as two-item lists)."""
        d = asdict(self)
        for k in ("sensitivity_ci", "specificity_ci"):
            if d[k] is not None:
                d[k] = [float(v) for v in d[k]]
        return d


# --- fitting ---------------------------------------------------------------------------


def fit_guard_limit(distances: Sequence[float] | np.ndarray, bundle_limit: float) -> float:
    """The guard limit for a site's scanners from its own images' guard distances.

    The rule: the :data:`GUARD_QUANTILE` th percentile of the site's distances (the k-th
    smallest, k = ceil(0.98 n), so that at most 2% of them are above it), never below the
    bundle's limit. Never below, because a profile only loosens the guard for images it
    has seen: a stricter limit fitted on a few hundred images would flag genuine images by the
    noise of a small sample, and the bundle's limit was set, leave one site out, to flag at
    most 5% of a hospital it was not fitted on. At most :data:`GUARD_MAX_RAISE` times the
    bundle's limit, because a site whose images are farther than that from the training data
    is not one the model should be used at: the profile is refused (:class:`ProfileError`).

    Parameters
    ----------
    distances : array of float
        The guard's distances of the site's unlabelled images (at least
        :data:`MIN_GUARD_IMAGES`, all finite).
    bundle_limit : float
        The model card's guard limit.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.size < MIN_GUARD_IMAGES:
        raise ProfileError(f"a guard limit needs at least {MIN_GUARD_IMAGES} images of the "
                           f"site, got {d.size}")
    if not np.isfinite(d).all():
        raise ProfileError("some guard distances are not finite numbers")
    # The k-th smallest distance, k = ceil(q n): at most n - k <= (1 - q) n images lie above
    # it, whatever n (an interpolated percentile would flag more on a small sample).
    k = math.ceil(GUARD_QUANTILE / 100.0 * d.size - 1e-9)
    limit = max(float(bundle_limit), float(np.sort(d)[k - 1]))
    if limit > GUARD_MAX_RAISE * bundle_limit:
        raise ProfileError(
            f"the site's images lie too far from the training data for the guard (the "
            f"{GUARD_QUANTILE:g}th percentile of their distances is {limit:.1f}, more than "
            f"{GUARD_MAX_RAISE:g} x the bundle's limit {bundle_limit:.1f}): the model should "
            "not be used on them, and no profile is made")
    return limit


def cutoff_for_sensitivity(p: Sequence[float] | np.ndarray, y: Sequence[int] | np.ndarray,
                           target: float) -> float:
    """The highest cut-off whose sensitivity on these cases is at least ``target``.

    That is the k-th highest P of the cancers, k = ceil(target x cancers): a result is
    suspicious at P >= cut-off, so exactly the k cancers at or above it are found (more when
    P ties there).
    """
    if not 0.0 < target <= 1.0:
        raise ProfileError(f"the sensitivity must be above 0 and at most 1, got {target:g}")
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y).astype(int)
    cancers = np.sort(p[y == 1])[::-1]
    if cancers.size == 0:
        raise ProfileError("a cut-off for a sensitivity needs cancers among the cases")
    k = max(1, math.ceil(target * cancers.size - 1e-9))
    return float(cancers[k - 1])


def measure_at_cutoff(p: Sequence[float] | np.ndarray, y: Sequence[int] | np.ndarray,
                      cutoff: float, groups: Sequence | None = None, n_boot: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
    """Sensitivity and specificity at ``cutoff``, with 95% intervals resampled by ``groups``
    (patients). Returns ``{"sensitivity", "sensitivity_ci", "specificity",
    "specificity_ci"}`` (intervals None when ``n_boot`` is 0)."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y).astype(int)

    def at(yy: np.ndarray, pp: np.ndarray) -> dict[str, float]:
        m = binary_metrics(yy, pp, cutoff)
        return {"sensitivity": m["recall"], "specificity": m["specificity"]}

    values = at(y, p)
    cis = bootstrap_ci(y, p, at, groups=groups, n_boot=n_boot, seed=seed) if n_boot else {}
    out: dict[str, Any] = {}
    for k, v in values.items():
        out[k] = float(v)
        ci = cis.get(k)
        out[f"{k}_ci"] = (float(ci[0]), float(ci[1])) if ci is not None else None
    return out


def labelled_fit(logits: np.ndarray, y: Sequence[int] | np.ndarray, target: float,
                 groups: Sequence | None = None, n_boot: int = 2000,
                 seed: int = 0) -> dict[str, Any]:
    """Temperature, cut-off and what was measured there, from a site's labelled cases.

    The temperature is fitted first (:func:`~rcdnet_desktop.core.metrics.fit_temperature`),
    then the cut-off on the probabilities at that temperature, as the engine will compute
    them. Returns the :class:`SiteProfile` fields ``temperature``, ``cutoff``,
    ``target_sensitivity``, ``sensitivity`` (``_ci``), ``specificity`` (``_ci``).
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y).astype(int)
    n_cancer, n_benign = int(y.sum()), int((y == 0).sum())
    if min(n_cancer, n_benign) < MIN_CLASS_CASES:
        raise ProfileError(f"a temperature and a cut-off need at least {MIN_CLASS_CASES} "
                           f"cancers and {MIN_CLASS_CASES} benign cases, got {n_cancer} and "
                           f"{n_benign}")
    temperature = fit_temperature(logits, y)
    p = softmax(logits, temperature)[:, 1]
    cutoff = cutoff_for_sensitivity(p, y, target)
    return {"temperature": temperature, "cutoff": cutoff, "target_sensitivity": float(target),
            **measure_at_cutoff(p, y, cutoff, groups, n_boot, seed)}


def make_profile(site: str, card: Any, cases: int, patients: int = 0, *,
                 created: str | None = None, **measured: Any) -> SiteProfile:
    """A profile of ``site`` for the model of ``card`` (its version and weights' sha256), with
    the ``measured`` fields (:func:`labelled_fit`'s, ``guard_limit``, ``guard_flagged``)."""
    site = " ".join(str(site).split())
    if not site:
        raise ProfileError("a site profile needs the site's name")
    return SiteProfile(site=site, created=created or date.today().isoformat(),
                       model_version=card.version,
                       classifier_sha256=str(card.weights.get("sha256", "")),
                       cases=int(cases), patients=int(patients), **measured)


def profile_from_results(site: str, card: Any, predictions: Sequence[Any],
                         labels: Sequence[int] | None = None,
                         patients: Sequence[str] | None = None, target: float | None = None, *,
                         n_boot: int = 2000, seed: int = 0) -> SiteProfile:
    """A site profile from the bundle's results on a site's images (``Prediction`` objects
    made under the model card's operating point, carrying their logits and guard distances).

    Every result gives its guard distance to the guard limit (:func:`fit_guard_limit`; none
    when the bundle has no guard). With ``labels`` and ``target``, the temperature and the
    cut-off for that sensitivity are fitted too (:func:`labelled_fit`), resampled by
    ``patients`` (one patient per image when not given).
    """
    measured: dict[str, Any] = {}
    limit = (card.guard or {}).get("threshold")
    distances = [p.guard_distance for p in predictions]
    if limit is not None and distances and all(d is not None for d in distances):
        measured["guard_limit"] = fit_guard_limit(distances, float(limit))
        measured["guard_flagged"] = float(np.mean(np.asarray(distances)
                                                  > measured["guard_limit"]))
    elif labels is None:
        raise ProfileError("the model has no input guard, so unlabelled images give it "
                           "nothing to fit")
    if labels is not None and target is not None:
        if any(p.logits is None for p in predictions):
            raise ProfileError("some results carry no logits to fit a temperature on")
        logits = np.array([p.logits for p in predictions], dtype=np.float64)
        groups = list(patients) if patients is not None else None
        measured.update(labelled_fit(logits, labels, target, groups, n_boot, seed))
    if not measured:
        raise ProfileError("there is nothing to fit: the model has no input guard, and no "
                           "sensitivity was asked for")
    n_patients = len(set(patients)) if patients is not None else 0
    return make_profile(site, card, len(predictions), n_patients, **measured)


# --- the file ----------------------------------------------------------------------------


def canonical_bytes(d: dict[str, Any]) -> bytes:
    """The canonical JSON of ``d`` (sorted keys, no spaces, UTF-8): what the sha256 is over."""
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def profile_bytes(profile: SiteProfile) -> bytes:
    """The file's bytes: the profile's fields, its format, and its sha256 over the rest."""
    body = {"format": PROFILE_FORMAT, "format_version": PROFILE_VERSION, **profile.to_dict()}
    body["sha256"] = hashlib.sha256(canonical_bytes(body)).hexdigest()
    return (json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_profile(path: str | Path, profile: SiteProfile, *, overwrite: bool = False) -> Path:
    """Write ``profile`` to ``path`` atomically (:class:`~rcdnet_desktop.core.errors.
    ExportError` when it cannot be written, or exists without ``overwrite``)."""
    data = profile_bytes(profile)
    return atomic_write(path, lambda f: f.write(data), overwrite=overwrite)


def _number(d: dict[str, Any], key: str, positive: bool = False,
            share: bool = False) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
            or (positive and v <= 0) or (share and not 0.0 <= v <= 1.0):
        raise ValueError(f"{key} is {v!r}")
    return float(v)


def _interval(d: dict[str, Any], key: str) -> tuple[float, float] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != 2:
        raise ValueError(f"{key} is {v!r}")
    lo, hi = (_number({"v": x}, "v", share=True) for x in v)
    assert lo is not None and hi is not None
    return (lo, hi)


def _from_dict(d: dict[str, Any]) -> SiteProfile:
    """The profile of a verified file's fields (ValueError naming a bad field)."""
    for key in ("site", "created", "model_version", "classifier_sha256"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise ValueError(f"{key} is missing")
    for key in ("cases", "patients"):
        if isinstance(d.get(key), bool) or not isinstance(d.get(key), int) or d[key] < 0:
            raise ValueError(f"{key} is {d.get(key)!r}")
    cutoff = _number(d, "cutoff", share=True)
    if cutoff is not None and not 0.0 < cutoff < 1.0:
        raise ValueError(f"cutoff is {cutoff!r}")
    return SiteProfile(
        **{k: d[k] for k in ("site", "created", "model_version", "classifier_sha256",
                             "cases", "patients")},
        guard_limit=_number(d, "guard_limit", positive=True),
        guard_flagged=_number(d, "guard_flagged", share=True),
        temperature=_number(d, "temperature", positive=True), cutoff=cutoff,
        target_sensitivity=_number(d, "target_sensitivity", share=True),
        sensitivity=_number(d, "sensitivity", share=True),
        sensitivity_ci=_interval(d, "sensitivity_ci"),
        specificity=_number(d, "specificity", share=True),
        specificity_ci=_interval(d, "specificity_ci"))


def read_profile(path: str | Path, card: Any = None) -> SiteProfile:
    """Read and verify a site profile; with ``card``, check it is this model's
    (:func:`check_model`).

    Raises
    ------
    ProfileError
        One sentence naming the file and why it is refused: unreadable, not a site profile,
        changed since it was written (its sha256 does not match), a bad field, or made for
        another model.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"{path}: the site profile cannot be read "
                           f"({exc.strerror or exc}).") from exc
    try:
        d = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProfileError(f"{path}: not a site profile (not JSON); it was not used.") from None
    if not isinstance(d, dict) or d.get("format") != PROFILE_FORMAT:
        raise ProfileError(f"{path}: not a site profile; it was not used.")
    if d.get("format_version") != PROFILE_VERSION:
        raise ProfileError(f"{path}: a site profile of format version "
                           f"{d.get('format_version')!r}, which this version of the program "
                           f"does not read (it reads {PROFILE_VERSION}); it was not used.")
    stored = d.pop("sha256", None)
    try:
        actual = hashlib.sha256(canonical_bytes(d)).hexdigest()
    except ValueError:
        actual = ""
    if stored != actual:
        raise ProfileError(f"{path}: the site profile was changed after it was written (its "
                           "sha256 does not match its content); it was not used.")
    try:
        profile = _from_dict(d)
    except (ValueError, TypeError, AssertionError) as exc:
        raise ProfileError(f"{path}: the site profile has a bad field ({exc}); it was not "
                           "used.") from None
    if card is not None:
        check_model(profile, card, path)
    return profile


def check_model(profile: SiteProfile, card: Any, path: str | Path = "site profile") -> None:
    """Raise :class:`ProfileError` unless ``profile`` was made with the model of ``card`` (the
    same version and classifier weights)."""
    if profile.model_version != card.version:
        raise ProfileError(f"{path}: the site profile was made for model "
                           f"{profile.model_version}, not the model running ({card.version}); "
                           "it was not used.")
    if profile.classifier_sha256 != card.weights.get("sha256"):
        raise ProfileError(f"{path}: the site profile was made for other classifier weights "
                           f"than the model running (sha256 {profile.classifier_sha256[:12]}"
                           f"..., not {str(card.weights.get('sha256'))[:12]}...); it was not "
                           "used.")


__all__ = [
    "GUARD_MAX_RAISE", "GUARD_QUANTILE", "MIN_CLASS_CASES", "MIN_GUARD_IMAGES",
    "PROFILE_FORMAT", "PROFILE_VERSION", "ProfileError", "SiteProfile", "canonical_bytes",
    "check_model", "cutoff_for_sensitivity", "fit_guard_limit", "labelled_fit",
    "make_profile", "measure_at_cutoff", "profile_bytes", "profile_from_results",
    "read_profile", "write_profile",
]
