"""A site profile in use: the engine decides at it, and every place that shows a result says so
in the words of result.site_sentence (panel text, report lines, SR comments, CSV column)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from rcdnet_desktop.core import result
from rcdnet_desktop.core import site_profile as sp
from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.types import Box, Prediction

SHA = "ab" * 32


def _profile(card=None, **kw) -> sp.SiteProfile:
    fields = dict(cutoff=0.21, target_sensitivity=0.9, sensitivity=0.9,
                  sensitivity_ci=(0.82, 0.95))
    fields.update(kw)
    if card is None:
        return sp.SiteProfile("Hospital X", "2026-12-07", "1.0", SHA, 212, 40, **fields)
    return sp.make_profile("Hospital X", card, 212, 40, created="2026-12-07", **fields)


def _pred(p: float, threshold: float = 0.21) -> Prediction:
    return Prediction(p_benign=1 - p, p_malignant=p, device="cpu", model_version="1.0",
                      threshold=threshold, suspicious=p >= threshold)


def test_site_sentence():
    assert result.site_sentence(None) == ""
    assert result.site_sentence(_profile()) == (
        "Site profile 'Hospital X' (2026-12-07, 212 cases of 40 patients): cut-off 0.21, "
        "sensitivity 0.90 [0.82, 0.95] there.")
    full = _profile(specificity=0.61, specificity_ci=(0.5, 0.7), temperature=1.3,
                    guard_limit=24.46)
    assert result.site_sentence(full) == (
        "Site profile 'Hospital X' (2026-12-07, 212 cases of 40 patients): cut-off 0.21, "
        "sensitivity 0.90 [0.82, 0.95] and specificity 0.61 [0.50, 0.70] there; its own "
        "calibration (temperature 1.30); input guard limit 24.5 for its scanners.")
    guard = sp.SiteProfile("B", "2026-12-07", "1.0", SHA, 300, guard_limit=22.0)
    assert result.site_sentence(guard) == ("Site profile 'B' (2026-12-07, 300 images): input "
                                           "guard limit 22.0 for its scanners.")


def test_cutoff_sentence_uses_the_site_measure():
    card = OperatingPoint(threshold=0.158, sensitivity_internal=0.9, sensitivity_external=0.76)
    op = card.with_profile(_profile())
    assert op.threshold == 0.21 and card.with_profile(None) is card
    below = result.cutoff_sentence(_pred(0.18), op)
    assert below.startswith("Below the suspicious cut-off (0.21).")
    assert "90% of cancers on the 212 cases of Hospital X" in below
    assert "internal validation" not in below and "another hospital" not in below
    # A guard-only profile keeps the card's cut-off and the card's figures.
    guard_only = card.with_profile(sp.SiteProfile("B", "d", "1.0", SHA, 30, guard_limit=22.0))
    assert guard_only.threshold == 0.158
    assert "another hospital" in result.cutoff_sentence(_pred(0.18, 0.158), guard_only)
    words = result.describe(_pred(0.3), op)
    assert words.site == result.site_sentence(_profile())
    assert result.describe(_pred(0.3), card).site == ""
    assert result.site_name(op) == "Hospital X" and result.site_name(card) == ""
    assert result.site_sentence(_profile()) in result.rules_sentences(op)


def test_csv_site_column():
    from rcdnet_desktop.core.export.batch_csv import CSV_FIELDS, batch_row

    item = BatchItem(path=Path("a.png"), prediction=_pred(0.3))
    assert CSV_FIELDS[-1] == "site"
    assert batch_row(item, "Hospital X")["site"] == "Hospital X"
    row = batch_row(item)
    assert row["site"] == "" and row["clip_frames"] == ""


def test_report_lines_and_sr_comments_say_the_profile():
    from rcdnet_desktop.core.export.dicom_sr import _comments
    from rcdnet_desktop.core.export.report import ReportOptions, report_lines
    from rcdnet_desktop.core.types import HeatMaps

    op = OperatingPoint(threshold=0.158).with_profile(_profile())
    pred = replace(_pred(0.3), roi=Box(1, 1, 5, 5), box=Box(1, 1, 5, 5), box_source="user")
    maps = HeatMaps(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32), "fast", pred)
    texts = [ln.text for ln in report_lines(
        maps, ReportOptions(when=datetime(2026, 12, 7), operating_point=op))]
    assert result.site_sentence(_profile()) in texts
    assert not any("Site profile" in t
                   for t in (ln.text for ln in report_lines(
                       maps, ReportOptions(when=datetime(2026, 12, 7)))))
    comments = _comments(pred, "user", op)
    assert result.site_sentence(_profile()) in comments
    assert any("on the 212 cases of Hospital X" in c for c in comments)


def test_engine_applies_a_profile(engine, sample_benign):
    """Temperature, cut-off and guard limit: each replaces the card's; None goes back."""
    from rcdnet_desktop.core.model.engine import InferenceEngine

    eng = InferenceEngine(model=engine.model, card=engine.card, device="cpu")
    base = eng.predict(sample_benign, auto_box=False)
    assert base.logits is not None and eng.profile is None
    lg = np.array(base.logits)
    prof = _profile(eng.card, cutoff=0.01, temperature=3.0)
    eng.use_profile(prof)
    p = eng.predict(sample_benign, auto_box=False)
    expected = 1 / (1 + np.exp(-(lg[1] - lg[0]) / 3.0))
    assert p.p_malignant == pytest.approx(expected, abs=1e-6)
    assert p.threshold == 0.01 and p.suspicious
    assert eng.operating_point.site is prof and eng.operating_point.threshold == 0.01
    # The heat maps' cut-off follows: the margin is >= 0 exactly where it is suspicious.
    assert eng.cutoff_margin(lg[None])[0] >= 0
    eng.use_profile(None)
    again = eng.predict(sample_benign, auto_box=False)
    assert again.p_malignant == pytest.approx(base.p_malignant)
    assert again.threshold == base.threshold and eng.operating_point.site is None
    other = replace(prof, model_version="0.0.1")
    with pytest.raises(sp.ProfileError, match="made for model 0.0.1"):
        eng.use_profile(other)
    assert eng.profile is None


def test_engine_applies_a_guard_limit(sample_benign):
    """With the bundle's guard: a limit below the image's distance flags it, the card's not."""
    from rcdnet_desktop.core.model.engine import InferenceEngine

    eng = InferenceEngine(device="cpu")
    base = eng.predict(sample_benign)
    assert base.guard_distance is not None and not base.checks
    limit = base.guard_distance / 2
    eng.use_profile(sp.make_profile("S", eng.card, 30, guard_limit=limit))
    flagged = eng.predict(sample_benign)
    assert "not_breast_ultrasound" in flagged.checks
    assert flagged.threshold == base.threshold  # no cut-off in the profile: the card's
