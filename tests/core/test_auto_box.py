"""The lesion localiser in the engine and the batch: automatic box, user box, fusion, bands."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from rcdnet_desktop.core.batch import review
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.model.card import CARD_FILE, LOCALISER_FILE, ModelCard
from rcdnet_desktop.core.model.engine import NO_LESION_WARNING, InferenceEngine, pad_roi
from rcdnet_desktop.core.model.explain import contrastive_scores, decision_evidence, to_image_size
from rcdnet_desktop.core.model.localiser import LesionLocaliser
from rcdnet_desktop.core.preprocess import preprocess
from rcdnet_desktop.core.types import Box
from tests.core.localiser_helpers import FakeLocaliser, blob_box


def _engine(engine, fake=None, **card_changes) -> InferenceEngine:
    # The bundled card's own operating point (its mode, threshold, bands) must not decide what
    # these tests see: each test states the one it needs; without one, the defaults.
    card_changes.setdefault("operating_point", {})
    return InferenceEngine(model=engine.model, card=replace(engine.card, **card_changes),
                           device="cpu", localiser=fake)


def _box_logits(engine, x: np.ndarray) -> torch.Tensor:
    m = engine.model
    with torch.inference_mode():
        return m.fc(m.forward_features(torch.from_numpy(x)[None]).mean((2, 3)))[0]


# --- automatic box -------------------------------------------------------------------------

def test_found_lesion_is_classified_as_the_box(engine, sample_benign):
    hw = sample_benign.shape[:2]
    fake = FakeLocaliser()
    eng = _engine(engine, fake)
    pred = eng.predict(sample_benign)
    box = blob_box(hw)
    assert box == Box(254, 142, 170, 144)  # 678 x 571 image, by hand
    assert fake.calls == 1
    assert pred.box_source == "auto" and pred.box == box
    assert pred.finding is not None and pred.finding.box == box
    assert pred.finding.outline.shape[1] == 2 and pred.finding.confidence > 0.99
    assert pred.roi == pad_roi(box, hw, engine.card.roi_margin)
    assert pred.mode == "lesion box (automatic)" and not pred.fused
    assert NO_LESION_WARNING not in pred.warnings
    # The same numbers as the user drawing that box.
    user = eng.predict(sample_benign, roi=box)
    assert pred.p_malignant == pytest.approx(user.p_malignant, abs=1e-6)
    assert pred.p_malignant != pytest.approx(
        eng.predict(sample_benign, auto_box=False).p_malignant, abs=1e-4)
    maps = eng.explain(sample_benign)
    r = maps.prediction.roi
    outside = np.ones(hw, bool)
    outside[r.y:r.y + r.h, r.x:r.x + r.w] = False
    for m in (maps.benign, maps.malignant):
        assert m[outside].max() == 0
    assert not maps.prediction.suspicious and maps.benign.max() > 0.9  # the result's map


def test_no_lesion_found_classifies_the_whole_image_and_says_so(engine, sample_benign):
    eng = _engine(engine, FakeLocaliser(inside=-8.0))
    pred = eng.predict(sample_benign)
    assert pred.box_source == "none" and pred.box is None and pred.roi is None
    assert pred.finding is None and pred.mode == "whole image"
    assert NO_LESION_WARNING in pred.warnings
    assert NO_LESION_WARNING == ("no lesion found with confidence by the automatic localiser: "
                                 "the whole image was classified")
    assert pred.p_malignant == pytest.approx(engine.predict(sample_benign).p_malignant,
                                             abs=1e-6)


def test_min_confidence_comes_from_the_card(engine, sample_benign):
    weak = FakeLocaliser(inside=0.5)  # probability 0.62 on the blob
    section = {"min_confidence": 0.7}
    assert _engine(engine, weak, localiser=section).predict(sample_benign).box_source == "none"
    section = {"min_confidence": 0.6}
    assert _engine(engine, weak, localiser=section).predict(sample_benign).box_source == "auto"


def test_user_box_wins_and_the_localiser_is_not_run(engine, sample_benign):
    fake = FakeLocaliser()
    eng = _engine(engine, fake)
    pred = eng.predict(sample_benign, roi=(50, 60, 70, 80))
    assert fake.calls == 0
    assert pred.box_source == "user" and pred.box == Box(50, 60, 70, 80)
    assert pred.finding is None and pred.mode == "lesion box"
    assert pred.roi == pad_roi(Box(50, 60, 70, 80), sample_benign.shape[:2], 0.2)


def test_auto_box_off_classifies_the_whole_image(engine, sample_benign):
    fake = FakeLocaliser()
    pred = _engine(engine, fake).predict(sample_benign, auto_box=False)
    assert fake.calls == 0
    assert pred.box_source == "none" and pred.roi is None and pred.box is None
    assert NO_LESION_WARNING not in pred.warnings


def test_engine_without_localiser_works_as_before(engine, sample_benign):
    pred = engine.predict(sample_benign)
    assert engine.localiser is None
    assert pred.box_source == "none" and pred.roi is None and pred.mode == "whole image"
    assert not any("localiser" in w for w in pred.warnings)


# --- fusion ----------------------------------------------------------------------------------

def test_fusion_averages_box_and_whole_image_logits(engine, sample_benign):
    hw = sample_benign.shape[:2]
    eng = _engine(engine, FakeLocaliser(), operating_point={"default_mode": "fusion"})
    assert eng.fusion
    maps = eng.explain(sample_benign)
    pred = maps.prediction
    assert pred.fused and pred.box_source == "auto" and pred.mode == "whole image + automatic box"
    roi = pad_roi(blob_box(hw), hw, engine.card.roi_margin)
    box_view = preprocess(sample_benign[roi.y:roi.y + roi.h, roi.x:roi.x + roi.w],
                          engine.card.preprocessing)
    whole_view = preprocess(sample_benign, engine.card.preprocessing)
    mean = (_box_logits(engine, box_view) + _box_logits(engine, whole_view)) / 2
    expected = torch.softmax(mean / engine.card.temperature, 0)[1].item()
    assert pred.p_malignant == pytest.approx(expected, abs=1e-5)
    box_only = _engine(engine, FakeLocaliser()).explain(sample_benign)
    assert abs(pred.p_malignant - box_only.prediction.p_malignant) > 1e-4
    # The maps are the box view's cells, weighted by its half of the fused logits, with the
    # whole image's half spread evenly: relative to the fused decision's cut-off.
    prep = eng.prepare(sample_benign)
    logits, feats, weight = eng.last_features([prep])
    _, box_feats, _ = eng.last_features([_engine(engine, FakeLocaliser()).prepare(sample_benign)])
    np.testing.assert_allclose(feats, box_feats, atol=1e-6)
    assert np.log(pred.p_malignant / pred.p_benign) == pytest.approx(
        (logits[0, 1] - logits[0, 0]) / engine.card.temperature, abs=1e-4)
    expected = decision_evidence(contrastive_scores(feats, weight)[0],
                                 eng.cutoff_margin(logits)[0], engine.card.preprocessing.size,
                                 share=0.5)
    for k in (0, 1):
        np.testing.assert_allclose(maps.for_class(k), to_image_size(expected[k], hw, roi),
                                   atol=1e-5)
    assert pred.suspicious == (eng.cutoff_margin(logits)[0] >= 0)
    assert eng.predict(sample_benign).p_malignant == pytest.approx(pred.p_malignant, abs=1e-6)


def test_fusion_applies_to_automatic_boxes_only_and_batches_like_single(engine, sample_benign,
                                                                       sample_malignant):
    eng = _engine(engine, FakeLocaliser(), operating_point={"default_mode": "fusion"})
    eng.batch_size = 3
    user = eng.predict(sample_benign, roi=Box(50, 60, 70, 80))
    assert not user.fused and user.mode == "lesion box"
    images = [sample_benign, sample_malignant, sample_benign, sample_malignant]
    rois = [Box(50, 60, 70, 80), None, None, Box(100, 90, 80, 60)]
    single = [eng.predict(im, roi=r) for im, r in zip(images, rois, strict=True)]
    many = eng.predict_many(images, rois=rois)
    assert [p.fused for p in many] == [False, True, True, False]
    for a, b in zip(single, many, strict=True):
        assert b.p_malignant == pytest.approx(a.p_malignant, abs=1e-5)
        assert (b.box, b.box_source, b.roi) == (a.box, a.box_source, a.roi)


# --- bands and threshold from the card -------------------------------------------------------

def test_band_and_suspicious_follow_the_card(engine, sample_benign):
    p = engine.predict(sample_benign).p_malignant
    default = engine.predict(sample_benign)
    assert default.band.name in {"very low", "low", "moderate", "high", "very high"}
    assert default.suspicious == (p >= 0.5)
    one = [{"name": "any", "upper": 1.0, "birads_range": ""}]
    eng = _engine(engine, operating_point={"suspicious_threshold": p, "bands": one})
    pred = eng.predict(sample_benign)
    assert pred.band.name == "any" and pred.band.label == "any (0-100%)" and pred.suspicious
    eng = _engine(engine, operating_point={"suspicious_threshold": min(p + 1e-3, 0.999)})
    assert not eng.predict(sample_benign).suspicious


# --- the bundle's own localiser ----------------------------------------------------------------

def test_engine_loads_the_bundles_localiser(localiser_bundle, sample_benign):
    eng = InferenceEngine(localiser_bundle, device="cpu")
    assert isinstance(eng.localiser, LesionLocaliser) and not eng.localiser.training
    pred = eng.predict(sample_benign)
    assert pred.box_source in ("auto", "none")
    assert (pred.box_source == "none") == (NO_LESION_WARNING in pred.warnings)
    # prepare may run on worker threads: the same inputs there as here
    ref = eng.prepare(sample_benign)
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: eng.prepare(sample_benign), range(4)))
    for g in got:
        assert np.array_equal(g.tensor, ref.tensor) and g.box == ref.box


def test_engine_refuses_a_tampered_localiser(localiser_bundle):
    path = localiser_bundle / LOCALISER_FILE
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="localiser_weights.pt: sha256"):
        InferenceEngine(localiser_bundle, device="cpu")
    assert ModelCard.read(localiser_bundle / CARD_FILE).localiser["file"] == LOCALISER_FILE


# --- batch review ----------------------------------------------------------------------------

def test_batch_passes_auto_box_and_a_roi_file_box_wins(engine, sample_benign, tmp_path):
    for name in ("a.png", "b.png"):
        Image.fromarray(sample_benign).save(tmp_path / name)
    eng = _engine(engine, FakeLocaliser())
    given = Box(30, 40, 100, 90)
    rois = {(tmp_path / "a.png").resolve(): given}
    a, b = (i.prediction for i in review([tmp_path], eng, rois=rois))
    assert (a.box_source, a.box) == ("user", given)
    assert (b.box_source, b.box) == ("auto", blob_box(sample_benign.shape[:2]))
    a, b = (i.prediction for i in review([tmp_path], eng, rois=rois, auto_box=False))
    assert (a.box_source, b.box_source) == ("user", "none") and b.roi is None


# --- devices -----------------------------------------------------------------------------------

class _FailingGpuLocaliser(torch.nn.Module):
    def forward(self, x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")


def test_localiser_gpu_failure_falls_back_to_cpu(engine, sample_benign, monkeypatch):
    eng = _engine(engine, FakeLocaliser())
    backend = eng._runtime.localiser  # the torch backend: it falls back to the CPU
    # "meta" stands in for a GPU: inputs move there without one, and the module then fails.
    monkeypatch.setattr(backend, "localiser_device", torch.device("meta"))
    monkeypatch.setattr(backend, "localiser", _FailingGpuLocaliser())
    pred = eng.predict(sample_benign)
    assert pred.box_source == "auto" and pred.box == blob_box(sample_benign.shape[:2])
    assert any("lesion localiser ran on the CPU" in w for w in pred.warnings)

    class _Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(backend, "localiser", _Broken())
    with pytest.raises(RuntimeError, match="shapes"):  # not a device failure: not swallowed
        eng.predict(sample_benign)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_cuda_localiser_agrees_with_cpu(localiser_bundle, sample_benign):
    cpu = InferenceEngine(localiser_bundle, device="cpu")
    gpu = InferenceEngine(localiser_bundle, device="cuda")
    assert next(gpu.localiser.parameters()).device.type == "cuda"
    a, b = cpu.prepare(sample_benign), gpu.prepare(sample_benign)
    assert a.box_source == b.box_source
    if a.box is not None:
        assert all(abs(u - v) <= 8 for u, v in zip(a.box.as_tuple(), b.box.as_tuple(),
                                                    strict=True))
