"""The input guard's fitting: re-exported copies, patient halves, the limit chosen by leaving
one site out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.guard import (
    SiteFeatures,
    choose_scale,
    export_variant,
    held_out_rates,
    patient_halves,
)


def test_a_re_exported_copy_is_another_crop_size_and_aspect_reproducibly():
    img = np.random.default_rng(0).integers(0, 256, (600, 800), dtype=np.uint8)
    a = export_variant(img, np.random.default_rng(7))
    b = export_variant(img, np.random.default_rng(7))
    assert np.array_equal(a, b)  # the same seed, the same copy
    assert a.dtype == np.uint8 and a.ndim == 2 and a.shape != img.shape
    assert 250 * 0.8 - 1 <= max(a.shape) <= 900 * 1.25 + 1
    rgb = export_variant(np.dstack([img] * 3), np.random.default_rng(1))
    assert rgb.ndim == 3 and rgb.shape[2] == 3


def test_patient_halves_never_split_a_patient():
    paths = [Path(f"p{i}.png") for i in range(30)]
    patients = [f"P{i // 3}" for i in range(30)]
    fit, val = patient_halves(paths, patients)
    assert len(fit) + len(val) == 30 and val
    who = dict(zip(paths, patients, strict=True))
    assert not {who[p] for p in fit} & {who[p] for p in val}


def _site(rng, shift: float, spread: float = 1.0) -> SiteFeatures:
    def draw(n):
        return rng.normal(shift, spread, (n, 6))
    return SiteFeatures(fit=draw(300), val=draw(100), exported=draw(100), reexported=draw(100))


def test_the_limit_is_the_smallest_multiple_that_spares_every_held_out_site():
    rng = np.random.default_rng(0)
    sites = {"a": _site(rng, 0.0), "b": _site(rng, 0.0), "c": _site(rng, 0.6, 1.3)}
    rates = held_out_rates(sites, shrinkage=0.1, quantile=99.5, scales=(1.0, 1.2, 1.5, 2.0))
    assert set(rates) == {"a", "b", "c"}
    # The site unlike the others is flagged most, and less the higher the limit.
    flagged_c = [rates["c"][s][0] for s in (1.0, 1.2, 1.5, 2.0)]
    assert flagged_c == sorted(flagged_c, reverse=True) and flagged_c[0] > rates["a"][1.0][0]
    scale = choose_scale(rates, max_rate=0.05)
    assert all(k / n <= 0.05 for r in rates.values() for k, n in [r[scale]])
    smaller = [s for s in (1.0, 1.2, 1.5, 2.0) if s < scale]
    assert all(any(k / n > 0.05 for r in rates.values() for k, n in [r[s]]) for s in smaller)


def test_when_no_multiple_is_enough_the_largest_is_taken():
    rates = {"a": {1.0: (50, 100), 2.0: (30, 100)}}
    assert choose_scale(rates, max_rate=0.05) == 2.0
