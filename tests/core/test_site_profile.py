"""Site profiles: fitting from hand-made arrays, the file's round trip, and refusals."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from rcdnet_desktop.core import site_profile as sp
from rcdnet_desktop.core.metrics import fit_temperature, softmax

SHA = "ab" * 32
CARD = SimpleNamespace(version="1.2.0", weights={"sha256": SHA})


def _profile(**kw) -> sp.SiteProfile:
    fields = dict(guard_limit=24.5, guard_flagged=0.02, temperature=1.3, cutoff=0.21,
                  target_sensitivity=0.9, sensitivity=0.9, sensitivity_ci=(0.82, 0.95),
                  specificity=0.61, specificity_ci=(0.5, 0.7))
    fields.update(kw)
    return sp.make_profile("Hospital X", CARD, 212, 40, created="2026-12-07", **fields)


def test_round_trip(tmp_path):
    prof = _profile()
    path = sp.write_profile(tmp_path / "x.json", prof)
    assert sp.read_profile(path, CARD) == prof
    d = json.loads(path.read_text())
    assert d["format"] == sp.PROFILE_FORMAT and len(d["sha256"]) == 64
    # Only what was measured: a guard-only profile reads back with None elsewhere.
    guard_only = sp.make_profile("  Site\tB ", CARD, 30, guard_limit=21.0)
    back = sp.read_profile(sp.write_profile(tmp_path / "g.json", guard_only))
    assert back.site == "Site B" and back.cutoff is None and back.temperature is None


def test_existing_file_kept_without_overwrite(tmp_path):
    from rcdnet_desktop.core.errors import ExportExistsError

    path = sp.write_profile(tmp_path / "x.json", _profile())
    with pytest.raises(ExportExistsError):
        sp.write_profile(path, _profile(cutoff=0.3))
    sp.write_profile(path, _profile(cutoff=0.3), overwrite=True)
    assert sp.read_profile(path).cutoff == 0.3


@pytest.mark.parametrize("edit", [
    lambda t: t.replace('"cutoff": 0.21', '"cutoff": 0.11'),
    lambda t: t.replace("Hospital X", "Hospital Y"),
    lambda t: t.replace('"cases": 212', '"cases": 213'),
])
def test_a_changed_byte_is_refused(tmp_path, edit):
    path = sp.write_profile(tmp_path / "x.json", _profile())
    text = path.read_text()
    changed = edit(text)
    assert changed != text
    path.write_text(changed)
    with pytest.raises(sp.ProfileError, match=r"x\.json: the site profile was changed after"):
        sp.read_profile(path, CARD)


def test_reformatting_alone_is_not_a_change(tmp_path):
    path = sp.write_profile(tmp_path / "x.json", _profile())
    path.write_text(json.dumps(json.loads(path.read_text())))  # other spacing, same content
    assert sp.read_profile(path, CARD).cutoff == 0.21


def test_other_model_is_refused(tmp_path):
    path = sp.write_profile(tmp_path / "x.json", _profile())
    with pytest.raises(sp.ProfileError, match=r"x\.json: .*made for model 1\.2\.0, not the "
                                              r"model running \(1\.3\.0\)"):
        sp.read_profile(path, SimpleNamespace(version="1.3.0", weights={"sha256": SHA}))
    with pytest.raises(sp.ProfileError, match="other classifier weights"):
        sp.read_profile(path, SimpleNamespace(version="1.2.0", weights={"sha256": "cd" * 32}))


@pytest.mark.parametrize("content, why", [
    (b"\x00\xff", "not JSON"), (b"[1, 2]", "not a site profile"),
    (b'{"format": "rcdnet-site-profile", "format_version": 9}', "format version 9"),
])
def test_not_a_profile(tmp_path, content, why):
    path = tmp_path / "p.json"
    path.write_bytes(content)
    with pytest.raises(sp.ProfileError, match=why):
        sp.read_profile(path)
    with pytest.raises(sp.ProfileError, match="cannot be read"):
        sp.read_profile(tmp_path / "missing.json")


def test_a_bad_field_with_a_matching_sha256_is_refused(tmp_path):
    d = {"format": sp.PROFILE_FORMAT, "format_version": 1, **_profile().to_dict()}
    d["cutoff"] = 1.5
    import hashlib

    d["sha256"] = hashlib.sha256(sp.canonical_bytes(d)).hexdigest()
    path = tmp_path / "p.json"
    path.write_text(json.dumps(d))
    with pytest.raises(sp.ProfileError, match=r"bad field \(cutoff is 1\.5\)"):
        sp.read_profile(path)


def test_guard_limit_rule():
    bundle = 20.0
    # Every image within the bundle's limit: the bundle's limit stays (never stricter).
    assert sp.fit_guard_limit(np.linspace(5, 15, 100), bundle) == bundle
    # Farther images: the 98th percentile, so at most 2% of them are flagged.
    d = np.linspace(10, 28, 100)
    limit = sp.fit_guard_limit(d, bundle)
    assert limit == np.sort(d)[97] and (d > limit).mean() == 0.02
    # On a small sample too, at most 2% above (of 24 images: none).
    d = np.linspace(10, 28, 24)
    assert sp.fit_guard_limit(d, bundle) == 28 and (d > sp.fit_guard_limit(d, bundle)).sum() == 0
    with pytest.raises(sp.ProfileError, match="too far from the training data"):
        sp.fit_guard_limit(np.linspace(20, 40, 100), bundle)
    with pytest.raises(sp.ProfileError, match="at least 20 images"):
        sp.fit_guard_limit(np.ones(19), bundle)


@pytest.mark.parametrize("target, expected",
                         [(0.9, 0.2), (1.0, 0.2), (0.5, 0.7), (0.75, 0.5), (0.66, 0.6)])
def test_cutoff_for_sensitivity(target, expected):
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.2, 0.65, 0.1, 0.4, 0.55])
    y = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    cut = sp.cutoff_for_sensitivity(p, y, target)
    assert cut == expected
    found = (p[y == 1] >= cut).mean()
    assert found >= target
    # The highest such cut-off: any higher one finds fewer than the target.
    assert (p[y == 1] >= np.nextafter(cut, 1.0)).mean() < target


def test_measure_at_cutoff_by_patient():
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.05, 0.4])
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    m = sp.measure_at_cutoff(p, y, 0.35, groups=[0, 0, 1, 1, 2, 2, 3, 3], n_boot=200)
    assert m["sensitivity"] == 0.75 and m["specificity"] == 0.75
    for k in ("sensitivity", "specificity"):
        lo, hi = m[f"{k}_ci"]
        assert 0 <= lo <= m[k] <= hi <= 1
    assert sp.measure_at_cutoff(p, y, 0.35, n_boot=0)["sensitivity_ci"] is None


def test_labelled_fit_temperature_then_cutoff():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 60)
    margin = np.where(y == 1, 2.0, -2.0) + rng.normal(0, 2.0, y.size)
    logits = np.stack([-margin, margin], 1) * 3  # overconfident by 3x
    fit = sp.labelled_fit(logits, y, 0.9, groups=np.arange(y.size) // 2, n_boot=200)
    assert fit["temperature"] == pytest.approx(fit_temperature(logits, y))
    assert fit["temperature"] > 2
    p = softmax(logits, fit["temperature"])[:, 1]
    assert fit["cutoff"] == sp.cutoff_for_sensitivity(p, y, 0.9)
    assert fit["sensitivity"] >= 0.9 and fit["sensitivity_ci"][0] <= fit["sensitivity"]
    with pytest.raises(sp.ProfileError, match="at least 10 cancers"):
        sp.labelled_fit(logits[:65], y[:65], 0.9)


def test_fit_temperature_matches_a_grid():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    logits = np.stack([np.zeros(200), (2 * y - 1) * 4 + rng.normal(0, 4, 200)], 1)
    from rcdnet_desktop.core.metrics import nll

    grid = np.exp(np.linspace(-3, 3, 6001))
    best = grid[np.argmin([nll(logits, y, t) for t in grid])]
    assert fit_temperature(logits, y) == pytest.approx(best, rel=2e-3)


def test_profile_from_results():
    from types import SimpleNamespace as NS

    card = NS(version="1.2.0", weights={"sha256": SHA}, guard={"threshold": 20.0})
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 15)
    margin = np.where(y == 1, 1.5, -1.5) + rng.normal(0, 1.5, y.size)
    preds = [NS(guard_distance=float(d), logits=(0.0, float(m)))
             for d, m in zip(np.linspace(15, 25, y.size), margin, strict=True)]
    guard_only = sp.profile_from_results("S", card, preds)
    assert guard_only.guard_limit == 25.0 and guard_only.cutoff is None
    assert (guard_only.cases, guard_only.patients) == (30, 0)
    patients = [f"P{i // 2}" for i in range(y.size)]
    full = sp.profile_from_results("S", card, preds, y, patients, 0.8, n_boot=100)
    assert full.patients == 15 and full.sensitivity >= 0.8 and full.temperature > 0
    assert full.guard_limit == 25.0
    no_guard = NS(version="1.2.0", weights={"sha256": SHA}, guard={})
    with pytest.raises(sp.ProfileError, match="no input guard"):
        sp.profile_from_results("S", no_guard, preds)
    with pytest.raises(sp.ProfileError, match="nothing to fit"):
        sp.profile_from_results("S", no_guard, preds, y, patients)
