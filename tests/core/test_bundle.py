"""Model bundles: verified loading, tampering refused, save_bundle round trip, placeholder."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.model.bundle import load_localiser, load_model
from rcdnet_desktop.core.model.card import (
    CARD_FILE,
    LOCALISER_FILE,
    MODEL_DIR_ENV,
    ModelCard,
    default_model_dir,
    sha256_file,
)
from rcdnet_desktop.core.model.network import RcdNet
from rcdnet_desktop.core.preprocess import PreprocessConfig
from training.bundle_write import save_bundle, save_localiser
from training.placeholder import make_placeholder

BUNDLED_MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "model"


def _card_json(bundle: Path) -> dict:
    return json.loads((bundle / CARD_FILE).read_text())


def _write_card_json(bundle: Path, data: dict) -> None:
    (bundle / CARD_FILE).write_text(json.dumps(data))


def _replace_weights(bundle: Path, payload) -> None:
    """Write ``payload`` as the weights file and re-sign the card so the sha256 matches."""
    data = _card_json(bundle)
    wpath = bundle / data["weights"]["file"]
    torch.save(payload, wpath)
    data["weights"]["sha256"] = sha256_file(wpath)
    _write_card_json(bundle, data)


# --- the bundled placeholder ---------------------------------------------------------------

def test_bundled_model_loads_with_a_complete_card(engine):
    model, card = engine.model, engine.card  # loaded by load_model(BUNDLED_MODEL_DIR)
    assert card.untrained is False and "untrained" not in card.version
    # Internal and external figures, every input mode, each inside its own interval.
    for split in ("internal_validation", "external"):
        for mode in ("whole", "roi", "auto", "fusion"):
            m = card.metrics[split][mode]
            for name in ("accuracy", "auc", "recall", "specificity"):
                lo, hi = m[f"{name}_ci95"]
                assert lo <= m[name] <= hi, (split, mode, name)
    assert card.metrics["external"]["n_images"] > 0
    assert "never used for training" in card.metrics["external"]["split"]
    op = card.operating_point
    assert op["default_mode"] in ("auto", "fusion") and 0 < op["suspicious_threshold"] < 0.5
    assert card.localiser["min_confidence"] > 0.5
    assert (BUNDLED_MODEL_DIR / card.localiser["file"]).stat().st_size < 25 * 2**20
    assert card.classes == ["benign", "malignant"]
    assert card.input_shape == [1, 3, 224, 224] and card.output_shape == [1, 2]
    assert card.architecture["backbone"] == "EfficientNet-Lite0"
    assert card.preprocessing.normalisation == "tf_lite"
    assert card.weights["dtype"] == "float16"
    assert 0.1 < card.temperature < 10 and card.roi_margin == 0.2
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    text = json.dumps(card.to_dict()).lower()
    for word in ("doppler", "elastography", "screening", "organs", "clinician"):
        assert word in text, word
    assert card.intended_use and card.not_for and card.limitations
    assert any("Lite0" in d for d in card.differences_from_paper)
    size = (BUNDLED_MODEL_DIR / card.weights["file"]).stat().st_size
    assert size < 25 * 2**20


def test_placeholder_is_reproducible_and_labelled_untrained(tmp_path):
    """make_placeholder builds the same bundle byte for byte, clearly marked untrained."""
    a, b = make_placeholder(tmp_path / "a"), make_placeholder(tmp_path / "b")
    assert a.untrained and "untrained" in a.version and a.temperature == 1.0
    assert a.weights["sha256"] == b.weights["sha256"]
    assert (tmp_path / "a" / CARD_FILE).read_bytes() == (tmp_path / "b" / CARD_FILE).read_bytes()


def test_default_model_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    assert default_model_dir() == BUNDLED_MODEL_DIR
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    assert default_model_dir() == tmp_path
    with pytest.raises(WeightsError, match="model card not found"):
        load_model()


# --- refusing bad bundles --------------------------------------------------------------------

def test_float32_bundle_loads(model_bundle):
    model, card = load_model(model_bundle)
    assert card.weights["dtype"] == "float32"
    assert isinstance(model, RcdNet)


def test_missing_weights_file(model_bundle):
    (model_bundle / "rcdnet_weights.pt").unlink()
    with pytest.raises(WeightsError, match="weights file not found"):
        load_model(model_bundle)


def test_missing_card(model_bundle):
    (model_bundle / CARD_FILE).unlink()
    with pytest.raises(WeightsError, match="model card not found"):
        load_model(model_bundle)


def test_card_not_json(model_bundle):
    (model_bundle / CARD_FILE).write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_model(model_bundle)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.pop("weights"), "lacks weights"),
    (lambda d: d.update(temperature=0), "temperature"),
    (lambda d: d.update(temperature="hot"), "temperature"),
    (lambda d: d.update(roi_margin=-1), "roi_margin"),
    (lambda d: d.update(classes=["malignant", "benign"]), "classes"),
    (lambda d: d.update(input_shape=[1, 3, 256, 256]), "input_shape"),
    (lambda d: d.update(output_shape=[1, 3]), "output_shape"),
    (lambda d: d["architecture"].update(backbone="ResNet50"), "backbone"),
    (lambda d: d["architecture"].update(hidden=3), "unknown architecture"),
    (lambda d: d["weights"].update(file="../elsewhere.pt"), "plain file name"),
    (lambda d: d["weights"].update(dtype="int8"), "dtype"),
    (lambda d: d["preprocessing"].update(normalisation="zscore"), "preprocessing"),
])
def test_invalid_card_is_refused(model_bundle, edit, message):
    data = _card_json(model_bundle)
    edit(data)
    _write_card_json(model_bundle, data)
    with pytest.raises(WeightsError, match=message):
        load_model(model_bundle)


def test_changed_byte_gives_sha_mismatch(model_bundle):
    wpath = model_bundle / "rcdnet_weights.pt"
    data = bytearray(wpath.read_bytes())
    data[len(data) // 2] ^= 0x01
    wpath.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 .* does not match"):
        load_model(model_bundle)


def test_truncated_file_with_matching_sha_is_refused(model_bundle):
    data = _card_json(model_bundle)
    wpath = model_bundle / data["weights"]["file"]
    wpath.write_bytes(wpath.read_bytes()[:1000])
    data["weights"]["sha256"] = sha256_file(wpath)
    _write_card_json(model_bundle, data)
    with pytest.raises(WeightsError, match="cannot be loaded"):
        load_model(model_bundle)


def test_wrong_shapes_are_refused(model_bundle):
    state = torch.load(model_bundle / "rcdnet_weights.pt", weights_only=True)
    state["fc.weight"] = torch.zeros(2, 1280)
    _replace_weights(model_bundle, state)
    with pytest.raises(WeightsError, match="do not match the architecture"):
        load_model(model_bundle)


def test_missing_and_unexpected_keys_are_refused(model_bundle):
    state = torch.load(model_bundle / "rcdnet_weights.pt", weights_only=True)
    state["extra.weight"] = state.pop("fc.bias")
    _replace_weights(model_bundle, state)
    with pytest.raises(WeightsError, match="do not match the architecture"):
        load_model(model_bundle)


def test_architecture_mismatch_is_refused(model_bundle):
    """A card claiming no CBAM for weights that have one."""
    data = _card_json(model_bundle)
    data["architecture"]["use_cbam"] = False
    _write_card_json(model_bundle, data)
    with pytest.raises(WeightsError, match="Unexpected key"):
        load_model(model_bundle)


def test_not_a_state_dict_is_refused(model_bundle):
    _replace_weights(model_bundle, [torch.zeros(3)])
    with pytest.raises(WeightsError, match="expected a state_dict"):
        load_model(model_bundle)


def test_nan_weights_are_refused(model_bundle):
    state = torch.load(model_bundle / "rcdnet_weights.pt", weights_only=True)
    state["fc.bias"] = torch.full((2,), float("nan"))
    _replace_weights(model_bundle, state)
    with pytest.raises(WeightsError, match="non-finite"):
        load_model(model_bundle)


class _Exploit:
    """Unpickling this runs a shell command: weights_only=True must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_pickle_with_code_is_refused(model_bundle, tmp_path, writer):
    marker = tmp_path / "pwned"
    data = _card_json(model_bundle)
    wpath = model_bundle / data["weights"]["file"]
    payload = {"fc.weight": _Exploit(marker)}
    if writer == "torch":
        torch.save(payload, wpath)
    else:
        wpath.write_bytes(pickle.dumps(payload))
    data["weights"]["sha256"] = sha256_file(wpath)
    _write_card_json(model_bundle, data)
    with pytest.raises(WeightsError, match="refused|cannot be loaded"):
        load_model(model_bundle)
    assert not marker.exists()


# --- save_bundle -----------------------------------------------------------------------------

def test_save_bundle_float32_round_trip_is_exact(tmp_path):
    torch.manual_seed(1)
    model = RcdNet(pretrained=True, use_dsc=False, dropout=0.1).eval()
    card = ModelCard(version="1.2.3", untrained=False, architecture={},
                     preprocessing=PreprocessConfig(normalisation="imagenet"),
                     weights={"file": "w.pt", "sha256": "", "dtype": ""},
                     temperature=1.7, roi_margin=0.1, metrics={"auc": 0.8})
    written = save_bundle(model, card, tmp_path / "out", dtype="float32")
    assert written.architecture == {"backbone": "EfficientNet-Lite0", "use_dsc": False,
                                    "use_cbam": True, "dropout": 0.1, "num_classes": 2}
    assert written.weights["file"] == "w.pt" and written.weights["dtype"] == "float32"
    assert written.weights["sha256"] == sha256_file(tmp_path / "out" / "w.pt")
    loaded, card2 = load_model(tmp_path / "out")
    assert card2 == written
    assert card2.temperature == 1.7 and card2.metrics == {"auc": 0.8}
    assert card2.preprocessing.normalisation == "imagenet"
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model_card.json", "w.pt"]


def test_save_bundle_float16_is_close_and_small(tmp_path, model_bundle):
    model, card = load_model(model_bundle)
    written = save_bundle(model, card, tmp_path / "half")
    assert written.weights["dtype"] == "float16"
    half = (tmp_path / "half" / written.weights["file"]).stat().st_size
    full = (model_bundle / card.weights["file"]).stat().st_size
    assert half < 0.6 * full
    loaded, _ = load_model(tmp_path / "half")
    for k, v in model.state_dict().items():
        w = loaded.state_dict()[k]
        assert w.dtype == v.dtype
        torch.testing.assert_close(w, v, rtol=1e-3, atol=1e-4)


def test_save_bundle_refuses_fp16_overflow(tmp_path, model_bundle):
    model, card = load_model(model_bundle)
    with torch.no_grad():
        model.fc.bias.fill_(1e6)  # beyond float16's 65504
    with pytest.raises(WeightsError, match="overflow"):
        save_bundle(model, card, tmp_path / "x")
    save_bundle(model, card, tmp_path / "x", dtype="float32")  # float32 holds it


# --- the lesion localiser and the operating point ------------------------------------------

def test_save_localiser_round_trip(localiser_bundle, tiny_localiser):
    from rcdnet_desktop.core.model.localiser import LesionLocaliser

    card = ModelCard.read(localiser_bundle / CARD_FILE)
    loc = card.localiser
    assert loc["file"] == LOCALISER_FILE and loc["dtype"] == "float16"
    assert loc["architecture"] == {"decoder_channels": 8} and loc["input_size"] == 224
    assert loc["min_confidence"] == 0.6 and loc["metrics"] == {"dice": 0.5}  # kept as given
    assert loc["sha256"] == sha256_file(localiser_bundle / LOCALISER_FILE)
    model = load_localiser(localiser_bundle, card)
    assert isinstance(model, LesionLocaliser) and not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for k, v in tiny_localiser().state_dict().items():
        w = model.state_dict()[k]
        if v.is_floating_point():
            torch.testing.assert_close(w, v.half().float(), rtol=0, atol=0)
        else:
            assert torch.equal(w, v)
    load_model(localiser_bundle)  # the classifier is untouched


def test_card_without_localiser_loads_none(model_bundle):
    _, card = load_model(model_bundle)
    assert card.localiser == {} and load_localiser(model_bundle, card) is None


def test_save_localiser_needs_the_classifier_beside_it(tmp_path, model_bundle,
                                                      tiny_localiser):
    _, card = load_model(model_bundle)
    with pytest.raises(WeightsError, match="classifier's weights are not in"):
        save_localiser(tiny_localiser(), card, tmp_path / "empty")


def test_localiser_sha_mismatch_is_refused(localiser_bundle):
    path = localiser_bundle / LOCALISER_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    card = ModelCard.read(localiser_bundle / CARD_FILE)
    with pytest.raises(WeightsError, match=r"localiser_weights\.pt: sha256 .* does not match"):
        load_localiser(localiser_bundle, card)


def test_localiser_missing_file_is_refused(localiser_bundle):
    (localiser_bundle / LOCALISER_FILE).unlink()
    card = ModelCard.read(localiser_bundle / CARD_FILE)
    with pytest.raises(WeightsError, match="localiser weights file not found"):
        load_localiser(localiser_bundle, card)


def _resign_localiser(bundle: Path, payload) -> ModelCard:
    data = _card_json(bundle)
    path = bundle / data["localiser"]["file"]
    torch.save(payload, path)
    data["localiser"]["sha256"] = sha256_file(path)
    _write_card_json(bundle, data)
    return ModelCard.read(bundle / CARD_FILE)


def test_localiser_wrong_keys_and_pickles_are_refused(localiser_bundle, tmp_path):
    state = torch.load(localiser_bundle / LOCALISER_FILE, weights_only=True)
    state["extra.weight"] = state.pop("head.1.bias")
    card = _resign_localiser(localiser_bundle, state)
    with pytest.raises(WeightsError, match="localiser_weights.pt: weights do not match"):
        load_localiser(localiser_bundle, card)
    marker = tmp_path / "pwned"
    card = _resign_localiser(localiser_bundle, {"head.1.bias": _Exploit(marker)})
    with pytest.raises(WeightsError, match="refused|cannot be loaded"):
        load_localiser(localiser_bundle, card)
    assert not marker.exists()


def test_localiser_architecture_mismatch_and_nan_are_refused(localiser_bundle):
    data = _card_json(localiser_bundle)
    data["localiser"]["architecture"]["decoder_channels"] = 16  # the file has 8
    _write_card_json(localiser_bundle, data)
    with pytest.raises(WeightsError, match="size mismatch"):
        load_localiser(localiser_bundle, ModelCard.read(localiser_bundle / CARD_FILE))
    data["localiser"]["architecture"]["decoder_channels"] = 8
    _write_card_json(localiser_bundle, data)
    state = torch.load(localiser_bundle / LOCALISER_FILE, weights_only=True)
    state["head.1.bias"] = torch.full_like(state["head.1.bias"], float("nan"))
    card = _resign_localiser(localiser_bundle, state)
    with pytest.raises(WeightsError, match="non-finite"):
        load_localiser(localiser_bundle, card)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["localiser"].update(file="../x.pt"), "localiser.file must be a plain"),
    (lambda d: d["localiser"].update(file="rcdnet_weights.pt"), "must differ"),
    (lambda d: d["localiser"].update(sha256="ABC"), "localiser.sha256"),
    (lambda d: d["localiser"].update(dtype="int8"), "localiser.dtype"),
    (lambda d: d["localiser"].update(input_size=256), "localiser.input_size"),
    (lambda d: d["localiser"].update(min_confidence=1.5), "min_confidence"),
    (lambda d: d["localiser"].update(min_confidence=True), "min_confidence"),
    (lambda d: d["localiser"].pop("min_confidence"), "localiser lacks min_confidence"),
    (lambda d: d["localiser"].update(typo=1), "unknown localiser keys"),
    (lambda d: d["localiser"]["architecture"].update(depth=3), "unknown localiser.architecture"),
    (lambda d: d["localiser"]["architecture"].update(decoder_channels=0), "decoder_channels"),
    (lambda d: d["localiser"].update(metrics=[1]), "localiser.metrics"),
    (lambda d: d.update(localiser=[]), "localiser must be an object"),
    (lambda d: d.update(operating_point={"default_mode": "roi"}), "default_mode"),
    (lambda d: d.update(operating_point={"suspicious_threshold": 1.0}), "suspicious_threshold"),
    (lambda d: d.update(operating_point={"suspicious_threshold": 0}), "suspicious_threshold"),
    (lambda d: d.update(operating_point={"bands": []}), "bands"),
    (lambda d: d.update(operating_point={"bands": [{"name": "a", "upper": 0.5}]}),
     "last band's upper must be 1.0"),
    (lambda d: d.update(operating_point={"bands": [{"name": "a", "upper": 0.5},
                                                   {"name": "b", "upper": 0.4},
                                                   {"name": "c", "upper": 1.0}]}),
     "above the previous"),
    (lambda d: d.update(operating_point={"bands": [{"name": "a", "upper": 0.5},
                                                   {"name": "a", "upper": 1.0}]}), "unique"),
    (lambda d: d.update(operating_point={"bands": [{"name": "a", "upper": 1.0, "x": 1}]}),
     "unknown keys"),
    (lambda d: d.update(operating_point="fusion"), "operating_point must be an object"),
])
def test_invalid_localiser_or_operating_point_is_refused(localiser_bundle, edit, message):
    data = _card_json(localiser_bundle)
    edit(data)
    _write_card_json(localiser_bundle, data)
    with pytest.raises(WeightsError, match=message):
        load_model(localiser_bundle)


def test_valid_operating_point_round_trips(model_bundle):
    data = _card_json(model_bundle)
    data["operating_point"] = {"default_mode": "fusion", "suspicious_threshold": 0.3,
                               "bands": [{"name": "lower", "upper": 0.3, "birads_range": ""},
                                         {"name": "higher", "upper": 1.0, "birads_range": ""}],
                               "sensitivity_at_threshold": 0.91}
    _write_card_json(model_bundle, data)
    _, card = load_model(model_bundle)
    assert card.operating_point == data["operating_point"]
    assert json.loads(card.to_json())["operating_point"] == data["operating_point"]


def test_a_lite2_bundle_names_its_backbone_and_loads_back_as_lite2(tmp_path):
    torch.manual_seed(2)
    model = RcdNet(pretrained=False, backbone="EfficientNet-Lite2").eval()
    card = ModelCard(version="9.0.0", untrained=False, architecture={},
                     preprocessing=PreprocessConfig(),
                     weights={"file": "w.pt", "sha256": "", "dtype": ""})
    written = save_bundle(model, card, tmp_path / "lite2", dtype="float32")
    assert written.architecture["backbone"] == "EfficientNet-Lite2"
    loaded, _ = load_model(tmp_path / "lite2")
    assert len(loaded.backbone._blocks) == 21
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
