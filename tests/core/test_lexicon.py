"""The lexicon heads as the application runs them: the shipped file, what a prediction carries,
the baseline rule, the box size in mm, and the CSV column."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest

from rcdnet_desktop.core import lexicon
from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.export.batch_csv import CSV_FIELDS, batch_row
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.model.card import CARD_FILE, ModelCard
from rcdnet_desktop.core.model.engine import InferenceEngine
from rcdnet_desktop.core.resources import resources_dir, sample_path
from rcdnet_desktop.core.types import Box, Descriptor, Prediction

BUNDLE = resources_dir() / "model"
BOX = Box(150, 120, 200, 160)


@pytest.fixture(scope="module")
def app_engine() -> InferenceEngine:
    return InferenceEngine(BUNDLE, device="cpu")


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(BUNDLE, dst)
    return dst


def test_the_shipped_file_is_the_one_the_card_names():
    card = ModelCard.read(BUNDLE / CARD_FILE)
    section = card.lexicon
    data = (BUNDLE / section["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == section["sha256"]
    assert section["weights_sha256"] == card.weights["sha256"]
    assert "not" in section["rule"] or "above" in section["rule"]
    lex = lexicon.load_lexicon(BUNDLE, section)
    assert lex is not None and lex.shown
    for d in section["descriptors"]:  # every shown descriptor met the rule
        m = d["metrics"]
        k = len(d["classes"])
        beats = m["kappa"]["ci95"][0] > 0 and m["balanced_accuracy"]["ci95"][0] > 1 / k
        assert d["shown"] == beats
    assert len(data) < 100_000


def test_a_changed_lexicon_file_is_refused(bundle_copy):
    path = bundle_copy / "lexicon.npz"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"lexicon\.npz: sha256 differs"):
        InferenceEngine(bundle_copy, device="cpu")


def test_a_lexicon_of_other_weights_is_refused(bundle_copy):
    card_path = bundle_copy / CARD_FILE
    d = json.loads(card_path.read_text())
    d["lexicon"]["weights_sha256"] = "0" * 64
    card_path.write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="lexicon was fitted on other weights"):
        ModelCard.read(card_path)


def test_unknown_descriptor_classes_are_refused(bundle_copy):
    card_path = bundle_copy / CARD_FILE
    d = json.loads(card_path.read_text())
    d["lexicon"]["descriptors"][0]["classes"] = ["oval", "round", "irregular"]
    card_path.write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="classes must be"):
        ModelCard.read(card_path)


def test_new_weights_drop_the_lexicon(engine, tmp_path):
    from training.bundle_write import save_bundle

    card = ModelCard.read(BUNDLE / CARD_FILE)
    out = save_bundle(engine.model, replace(card, localiser={}), tmp_path, dtype="float32")
    assert out.lexicon == {}


def test_a_box_prediction_carries_descriptors_in_lexicon_words(app_engine):
    pred = app_engine.predict(read_image(sample_path()), roi=BOX)
    assert pred.descriptors and pred.descriptor_note == ""
    names = [d.name for d in pred.descriptors]
    hidden = {d["name"] for d in app_engine.card.lexicon["descriptors"] if not d["shown"]}
    assert hidden and not hidden & set(names)  # the shipped heads that failed stay hidden
    assert names == [n for n in lexicon.DESCRIPTORS if n in names]  # the lexicon's order
    for d in pred.descriptors:
        assert d.value in lexicon.DESCRIPTORS[d.name]
        assert 0 < d.confidence <= 1


def test_descriptors_come_from_the_box_that_was_classified(app_engine):
    img = read_image(sample_path())
    items = [app_engine.prepare(img, roi=BOX), app_engine.prepare(img, roi=Box(0, 0, 80, 60))]
    feats = app_engine.box_features(items)
    preds = app_engine.predict_prepared(items)
    lex = lexicon.load_lexicon(BUNDLE, app_engine.card.lexicon)
    for f, p in zip(feats, preds, strict=True):
        assert p.descriptors == lex.describe(f)


def test_a_whole_image_says_descriptors_need_a_box(app_engine):
    pred = app_engine.predict(read_image(sample_path()), auto_box=False)
    assert pred.descriptors == ()
    assert pred.descriptor_note == lexicon.NEEDS_BOX
    assert lexicon.lexicon_words(pred) == lexicon.NEEDS_BOX


def test_a_descriptor_that_failed_its_baseline_is_not_shown(bundle_copy):
    from training.bundle_write import save_lexicon

    card = ModelCard.read(bundle_copy / CARD_FILE)
    section = json.loads(json.dumps(card.lexicon))
    assert any(d["name"] == "shape" and d["shown"] for d in section["descriptors"])
    for d in section["descriptors"]:
        if d["name"] == "shape":
            d["shown"] = False
    save_lexicon(card, bundle_copy, (bundle_copy / "lexicon.npz").read_bytes(), section)
    pred = InferenceEngine(bundle_copy, device="cpu").predict(read_image(sample_path()), roi=BOX)
    assert pred.descriptors and "shape" not in [d.name for d in pred.descriptors]


def test_margin_subtypes_are_left_out_of_a_circumscribed_margin():
    k = 2
    heads = tuple(lexicon.Head(n, lexicon.DESCRIPTORS[n], np.zeros((k, 1)),
                               np.array([1.0, 0.0]) if n == "margin" else np.array([0.0, 1.0]))
                  for n in ("margin", "margin spiculated"))
    lex = lexicon.Lexicon(np.zeros(1), np.ones(1), heads, frozenset({"margin",
                                                                     "margin spiculated"}))
    assert [d.value for d in lex.describe(np.zeros(1))] == ["circumscribed"]


def test_the_csv_has_the_descriptors_column():
    pred = Prediction(0.3, 0.7, "cpu", "t", roi=BOX, descriptors=(
        Descriptor("shape", "irregular", 0.8), Descriptor("margin", "not circumscribed", 0.9)))
    row = batch_row(BatchItem(Path("a.png"), prediction=pred))
    assert "descriptors" in CSV_FIELDS
    assert row["descriptors"] == "shape=irregular;margin=not circumscribed"
    assert batch_row(BatchItem(Path("b.png"), error="bad"))["descriptors"] == ""


def test_reports_state_the_descriptors():
    from datetime import datetime

    from rcdnet_desktop.core.export.report import ReportOptions, report_lines
    from rcdnet_desktop.core.types import HeatMaps

    pred = Prediction(0.3, 0.7, "cpu", "t", roi=BOX,
                      descriptors=(Descriptor("shape", "irregular", 0.8),))
    z = np.zeros((400, 500), np.float32)
    text = [ln.text for ln in report_lines(HeatMaps(z, z, "fast", pred),
                                           ReportOptions(when=datetime.now(UTC)))]
    assert any(t.startswith("What the model sees (lexicon): shape: irregular (80%)")
               and "not a BI-RADS assessment" in t for t in text)


def _doppler(path: Path) -> Path:
    """The sample with a colour-Doppler-like blob over its middle: the intended-use check
    flags it (colour overlay)."""
    from PIL import Image

    rgb = np.asarray(Image.open(sample_path()).convert("RGB")).copy()
    h, w = rgb.shape[:2]
    rgb[h // 4:3 * h // 4, w // 4:w // 2] = (220, 30, 30)
    rgb[h // 4:3 * h // 4, w // 2:3 * w // 4] = (40, 60, 230)
    Image.fromarray(rgb).save(path)
    return path


def test_an_image_outside_intended_use_gets_no_descriptors_but_the_reason(app_engine,
                                                                          tmp_path):
    """A box on an image the intended-use guard flags: no descriptors on the prediction, so
    the screen, the CSV and the reports agree; the note says why."""
    pred = app_engine.predict(read_image(_doppler(tmp_path / "doppler.png")), roi=BOX)
    assert pred.outside_intended_use
    assert pred.descriptors == () and pred.descriptor_note == lexicon.OUTSIDE_USE
    assert lexicon.lexicon_words(pred) == lexicon.OUTSIDE_USE
    assert batch_row(BatchItem(Path("d.png"), prediction=pred))["descriptors"] == ""


def test_descriptors_carried_by_a_flagged_prediction_are_not_shown():
    """Whatever built it, a prediction with intended-use flags shows no descriptors."""
    pred = Prediction(0.3, 0.7, "cpu", "t", roi=BOX, checks=("not_breast_ultrasound",),
                      descriptors=(Descriptor("shape", "irregular", 0.8),))
    assert lexicon.shown_descriptors(pred) == ()
    assert lexicon.lexicon_words(pred) == lexicon.OUTSIDE_USE
    no_lexicon = replace(pred, descriptors=())
    assert lexicon.descriptor_note(no_lexicon) == ""  # a model without heads says nothing


def test_suggest_is_the_one_rule():
    lex = lexicon.Lexicon(np.zeros(1), np.ones(1), (), frozenset())
    assert lexicon.suggest(None, np.zeros(1), has_box=True) == ((), "")
    assert lexicon.suggest(lex, np.zeros(1), has_box=False) == ((), lexicon.NEEDS_BOX)
    assert lexicon.suggest(lex, np.zeros(1), has_box=False, checks=("blank",)) == \
        ((), lexicon.OUTSIDE_USE)
    assert lexicon.suggest(lex, np.zeros(1), has_box=True) == ((), "")
