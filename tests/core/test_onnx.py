"""ONNX graphs of the bundle: export, card section, verified loading, agreement with torch."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.model.bundle import load_localiser, load_model
from rcdnet_desktop.core.model.card import CARD_FILE, ModelCard, sha256_file
from rcdnet_desktop.core.model.explain import closed_form_cams, gradcam_like_normalise
from rcdnet_desktop.core.model.onnx_graphs import load_onnx_session
from rcdnet_desktop.core.preprocess import preprocess
from tests.conftest import BUNDLED_MODEL_DIR, SAMPLES, read_rgb
from training.bundle_write import save_bundle, save_localiser, save_onnx
from training.onnx_export import (
    OPSET,
    _export,
    classifier_onnx_bytes,
    export_localiser,
    localiser_onnx_bytes,
)


@pytest.fixture(scope="module")
def sample_batch(engine) -> torch.Tensor:
    """Both bundled sample images, preprocessed as the app does: (2, 3, s, s)."""
    paths = sorted(SAMPLES.glob("*.png"))
    assert len(paths) >= 2
    return torch.from_numpy(np.stack([preprocess(read_rgb(p), engine.card.preprocessing)
                                     for p in paths]))


@pytest.fixture(scope="session")
def _onnx_bundle_src(_localiser_bundle_src, tmp_path_factory) -> Path:
    """The float32 bundle with the tiny localiser, plus both ONNX graphs (save_onnx)."""
    out = tmp_path_factory.mktemp("onnx_bundle")
    shutil.copytree(_localiser_bundle_src, out, dirs_exist_ok=True)
    model, card = load_model(out)
    save_onnx(model, load_localiser(out, card), card, out)
    return out


@pytest.fixture
def onnx_bundle(_onnx_bundle_src, tmp_path) -> Path:
    """A private copy of the bundle with ONNX graphs, free to tamper with."""
    dst = tmp_path / "onnx_bundle"
    shutil.copytree(_onnx_bundle_src, dst)
    return dst


def _card(bundle: Path) -> ModelCard:
    return ModelCard.read(bundle / CARD_FILE)


def _run(session, x: torch.Tensor) -> list[np.ndarray]:
    return session.run(None, {"image": x.numpy()})


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


# --- the shipped bundle ---------------------------------------------------------------------


def test_shipped_card_onnx_section_verifies():
    card = _card(BUNDLED_MODEL_DIR)
    assert set(card.onnx) == {"classifier", "localiser"}
    cls, loc = card.onnx["classifier"], card.onnx["localiser"]
    assert cls["inputs"] == ["image"]
    assert cls["outputs"] == ["logits", "features", "guard_features"]
    assert loc["inputs"] == ["image"] and loc["outputs"] == ["lesion_logits"]
    assert cls["opset"] == loc["opset"] == OPSET
    assert cls["weights_sha256"] == card.weights["sha256"]
    assert loc["weights_sha256"] == card.localiser["sha256"]
    for which, entry in card.onnx.items():
        assert sha256_file(BUNDLED_MODEL_DIR / entry["file"]) == entry["sha256"]
        load_onnx_session(BUNDLED_MODEL_DIR, card, which)


def test_classifier_graph_matches_torch_on_the_samples(engine, sample_batch):
    """Logits, calibrated probabilities, the last feature map and the closed-form CAMs computed
    in numpy from the graph's features agree with the torch model."""
    session = load_onnx_session(BUNDLED_MODEL_DIR, engine.card, "classifier")
    logits, features, guard = _run(session, sample_batch)
    model = engine.model
    with torch.inference_mode():
        t_features = model.forward_features(sample_batch)
        t_logits = model(sample_batch)
        t_guard = model.forward_outputs(sample_batch)[2]
        t_cams = closed_form_cams(t_features, model.fc.weight).numpy()
    assert _rel(guard, t_guard.numpy()) <= 1e-4
    assert logits.shape == (2, 2) and features.shape == tuple(t_features.shape)
    np.testing.assert_allclose(logits, t_logits.numpy(), rtol=0, atol=1e-4)
    t = float(engine.card.temperature)
    probs = torch.softmax(torch.from_numpy(logits) / t, dim=1).numpy()
    t_probs = torch.softmax(t_logits / t, dim=1).numpy()
    np.testing.assert_allclose(probs, t_probs, rtol=0, atol=1e-5)
    assert _rel(features, t_features.numpy()) <= 1e-4

    # Closed-form Grad-CAM with numpy only: ReLU(sum_c W_kc / (h w) * A_c).
    w = model.fc.weight.detach().numpy()
    h, wd = features.shape[-2:]
    cams = np.maximum(np.einsum("kc,bchw->bkhw", w / (h * wd), features), 0)
    assert _rel(cams, t_cams) <= 1e-4
    size = engine.card.preprocessing.size
    for i in range(len(cams)):
        np.testing.assert_allclose(gradcam_like_normalise(cams[i], size),
                                   gradcam_like_normalise(t_cams[i], size), rtol=0, atol=1e-4)


def test_localiser_graph_matches_torch_on_the_samples(engine, sample_batch):
    card = _card(BUNDLED_MODEL_DIR)
    localiser = load_localiser(BUNDLED_MODEL_DIR, card)
    (logits,) = _run(load_onnx_session(BUNDLED_MODEL_DIR, card, "localiser"), sample_batch)
    with torch.inference_mode():
        expected = localiser(sample_batch).numpy()
    assert logits.shape == expected.shape == (2, 1, 224, 224)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


# --- save_onnx ------------------------------------------------------------------------------


def test_save_onnx_writes_the_card_section(onnx_bundle, tiny_localiser):
    card = _card(onnx_bundle)
    for which, name in (("classifier", "rcdnet.onnx"), ("localiser", "localiser.onnx")):
        entry = card.onnx[which]
        assert entry["file"] == name
        assert entry["sha256"] == sha256_file(onnx_bundle / name)
        assert entry["opset"] == OPSET
    assert card.onnx["classifier"]["weights_sha256"] == card.weights["sha256"]
    assert card.onnx["localiser"]["weights_sha256"] == card.localiser["sha256"]
    # The tiny localiser's graph agrees with torch too.
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    (logits,) = _run(load_onnx_session(onnx_bundle, card, "localiser"), x)
    with torch.inference_mode():
        expected = tiny_localiser()(x).numpy()
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


def test_export_is_byte_deterministic(onnx_bundle):
    model, card = load_model(onnx_bundle)
    localiser = load_localiser(onnx_bundle, card)
    assert classifier_onnx_bytes(model, 224) == (onnx_bundle / "rcdnet.onnx").read_bytes()
    assert localiser_onnx_bytes(localiser, 224) == (onnx_bundle / "localiser.onnx").read_bytes()


def test_export_leaves_the_model_in_its_mode(tiny_localiser, tmp_path):
    model = tiny_localiser().train()
    data = export_localiser(model, tmp_path / "x.onnx", 224)
    assert model.training
    assert (tmp_path / "x.onnx").read_bytes() == data


def test_save_onnx_refuses_a_model_that_is_not_the_bundled_one(onnx_bundle):
    model, card = load_model(onnx_bundle)
    with torch.no_grad():
        model.fc.bias.add_(1.0)
    with pytest.raises(WeightsError, match="not the one whose weights"):
        save_onnx(model, None, card, onnx_bundle)


# --- refusing bad graphs --------------------------------------------------------------------


@pytest.mark.parametrize("which,name", [("classifier", "rcdnet.onnx"),
                                        ("localiser", "localiser.onnx")])
def test_a_changed_byte_is_refused(onnx_bundle, which, name):
    path = onnx_bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256") as exc:
        load_onnx_session(onnx_bundle, _card(onnx_bundle), which)
    assert name in str(exc.value)


def test_a_missing_graph_is_refused(onnx_bundle):
    (onnx_bundle / "rcdnet.onnx").unlink()
    with pytest.raises(WeightsError, match="not found") as exc:
        load_onnx_session(onnx_bundle, _card(onnx_bundle), "classifier")
    assert "rcdnet.onnx" in str(exc.value)


def test_a_card_without_graphs_is_refused(model_bundle):
    with pytest.raises(WeightsError, match="names no ONNX graph"):
        load_onnx_session(model_bundle, _card(model_bundle), "classifier")


def _replace_graph(bundle: Path, which: str, data: bytes) -> ModelCard:
    """Write ``data`` as the graph and record its sha256, so only the content is wrong."""
    card = _card(bundle)
    entry = card.onnx[which]
    (bundle / entry["file"]).write_bytes(data)
    onnx = {**card.onnx, which: {**entry, "sha256": hashlib.sha256(data).hexdigest()}}
    return replace(card, onnx=onnx)


def test_wrong_output_names_are_refused(onnx_bundle, tiny_localiser):
    card = _replace_graph(onnx_bundle, "localiser", _export(tiny_localiser(), 224, ("mask",)))
    with pytest.raises(WeightsError, match="outputs") as exc:
        load_onnx_session(onnx_bundle, card, "localiser")
    assert "localiser.onnx" in str(exc.value) and "mask" in str(exc.value)


def test_wrong_input_size_is_refused(onnx_bundle, tiny_localiser):
    card = _replace_graph(onnx_bundle, "localiser", localiser_onnx_bytes(tiny_localiser(), 128))
    with pytest.raises(WeightsError, match="input shape"):
        load_onnx_session(onnx_bundle, card, "localiser")


def test_a_file_that_is_not_onnx_is_refused(onnx_bundle):
    card = _replace_graph(onnx_bundle, "classifier", b"not an onnx graph")
    with pytest.raises(WeightsError, match="onnxruntime cannot load") as exc:
        load_onnx_session(onnx_bundle, card, "classifier")
    assert "rcdnet.onnx" in str(exc.value)


def test_a_graph_of_other_weights_is_refused(onnx_bundle):
    card = _card(onnx_bundle)
    onnx = {**card.onnx, "classifier": {**card.onnx["classifier"], "weights_sha256": "a" * 64}}
    with pytest.raises(WeightsError, match="other classifier weights"):
        load_onnx_session(onnx_bundle, replace(card, onnx=onnx), "classifier")


# --- keeping the section consistent ---------------------------------------------------------


def test_save_bundle_keeps_graphs_of_the_same_weights(onnx_bundle):
    model, card = load_model(onnx_bundle)
    written = save_bundle(model, card, onnx_bundle, dtype="float32")
    assert written.onnx == card.onnx
    load_onnx_session(onnx_bundle, written, "classifier")


def test_save_bundle_drops_graphs_of_other_weights(onnx_bundle):
    model, card = load_model(onnx_bundle)
    written = save_bundle(model, card, onnx_bundle, dtype="float16")  # other bytes
    assert "classifier" not in written.onnx
    assert written.onnx["localiser"] == card.onnx["localiser"]  # the localiser did not change
    assert _card(onnx_bundle).onnx == written.onnx
    with pytest.raises(WeightsError, match="names no ONNX graph"):
        load_onnx_session(onnx_bundle, written, "classifier")
    # Exporting again brings the classifier's graph back, now of the float16 weights.
    model, written = load_model(onnx_bundle)
    again = save_onnx(model, None, written, onnx_bundle)
    assert again.onnx["classifier"]["weights_sha256"] == written.weights["sha256"]
    assert again.onnx["localiser"] == card.onnx["localiser"]


def test_save_localiser_drops_the_localiser_graph_of_other_weights(onnx_bundle, tiny_localiser):
    card = _card(onnx_bundle)
    written = save_localiser(tiny_localiser(), card, onnx_bundle, dtype="float32")  # other bytes
    assert "localiser" not in written.onnx
    assert written.onnx["classifier"] == card.onnx["classifier"]


def test_save_bundle_without_a_localiser_drops_its_graph(onnx_bundle):
    model, card = load_model(onnx_bundle)
    written = save_bundle(model, replace(card, localiser={}), onnx_bundle, dtype="float32")
    assert set(written.onnx) == {"classifier"}


# --- card validation ------------------------------------------------------------------------


@pytest.mark.parametrize("change,message", [
    (lambda s: {**s, "extra": {}}, "unknown onnx keys"),
    (lambda s: {**s, "classifier": {**s["classifier"], "size": 1}}, "unknown onnx.classifier"),
    (lambda s: {**s, "classifier": {**s["classifier"], "file": "../x.onnx"}}, "plain file"),
    (lambda s: {**s, "classifier": {**s["classifier"], "file": "rcdnet_weights.pt"}},
     "must differ"),
    (lambda s: {**s, "localiser": {**s["localiser"], "file": "rcdnet.onnx"}}, "must differ"),
    (lambda s: {**s, "classifier": {**s["classifier"], "sha256": "ABC"}}, "64 lower-case hex"),
    (lambda s: {**s, "localiser": {**s["localiser"], "weights_sha256": 1}}, "64 lower-case"),
    (lambda s: {**s, "classifier": {**s["classifier"], "opset": "17"}}, "opset"),
    (lambda s: {**s, "classifier": {**s["classifier"], "outputs": ["logits"]}}, "outputs"),
    (lambda s: {**s, "localiser": {**s["localiser"], "inputs": ["x"]}}, "inputs"),
    (lambda s: {"classifier": {k: v for k, v in s["classifier"].items() if k != "opset"}},
     "lacks opset"),
    (lambda s: {**s, "classifier": []}, "must be an object"),
])
def test_card_validation_of_the_onnx_section(change, message):
    data = _card(BUNDLED_MODEL_DIR).to_dict()
    data["onnx"] = change(data["onnx"])
    with pytest.raises(WeightsError, match=message):
        ModelCard.from_dict(data)


def test_a_localiser_graph_needs_a_localiser():
    data = _card(BUNDLED_MODEL_DIR).to_dict()
    data["localiser"] = {}
    with pytest.raises(WeightsError, match="onnx.localiser needs a localiser"):
        ModelCard.from_dict(data)


def test_a_card_without_onnx_section_is_valid():
    data = _card(BUNDLED_MODEL_DIR).to_dict()
    del data["onnx"]
    assert ModelCard.from_dict(data).onnx == {}
