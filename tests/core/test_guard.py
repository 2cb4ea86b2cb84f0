"""The input guard: intended-use codes, what the file says, and the learned score."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rcdnet_desktop.core import checks, guard
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.model.card import CARD_FILE, ModelCard
from rcdnet_desktop.core.model.engine import InferenceEngine
from rcdnet_desktop.core.resources import resources_dir
from rcdnet_desktop.core.types import ImageRecord, StudyInfo

BUNDLE = resources_dir() / "model"
SAMPLES = resources_dir() / "samples"
PYDICOM_FILES = Path(__import__("pydicom").__file__).parent / "data" / "test_files"


def dicom_record(**study) -> ImageRecord:
    rng = np.random.default_rng(0)
    return ImageRecord(path=Path("x.dcm"), pixels=rng.integers(0, 255, (80, 80), np.uint8),
                       source_format="DICOM", study=StudyInfo(**study))


# --- what the file says ----------------------------------------------------------------------

@pytest.mark.parametrize(("study", "code", "words"), [
    ({"modality": "CT"}, checks.NOT_BREAST_ULTRASOUND, "CT scan"),
    ({"modality": "MR"}, checks.NOT_BREAST_ULTRASOUND, "MRI"),
    ({"modality": "MG"}, checks.NOT_BREAST_ULTRASOUND, "mammogram"),
    ({"modality": "US", "body_part": "HEART"}, checks.NOT_BREAST_ULTRASOUND, "heart"),
    ({"modality": "US", "exam_type": "EPICARDIAL"}, checks.NOT_BREAST_ULTRASOUND,
     "a heart scan (Image Type EPICARDIAL)"),
    ({"modality": "US", "exam_type": "FETAL HEART"}, checks.NOT_BREAST_ULTRASOUND, "fetal heart"),
    ({"modality": "US", "exam_type": "TTE"}, checks.NOT_BREAST_ULTRASOUND, "echocardiogram"),
    ({"modality": "US", "region_kinds": ((1, 1), (1, 2))}, checks.COLOUR_OVERLAY, "colour-flow"),
    ({"modality": "US", "region_kinds": ((3, 3),)}, checks.NOT_B_MODE, "spectral Doppler"),
])
def test_the_file_says_it_is_not_breast_b_mode(study, code, words):
    flags = checks.check_record(dicom_record(**study))
    assert code in checks.codes(flags)
    assert any(words in f.text for f in flags)


@pytest.mark.parametrize("study", [
    {"modality": "US"}, {"modality": "US", "body_part": "BREAST"}, {"modality": "SC"},
    {"modality": "US", "exam_type": "BREAST"}, {"modality": "US", "exam_type": "SMALL PARTS"},
    {"modality": "US", "exam_type": "VENDOR42"},
    {"modality": "OT"}, {}, {"modality": "US", "region_kinds": ((1, 1),)},
])
def test_the_file_says_nothing_against_breast_ultrasound(study):
    assert checks.check_record(dicom_record(**study)) == ()


def test_plain_images_say_nothing():
    rec = replace(dicom_record(modality="CT"), source_format="PNG")
    assert checks.check_record(rec) == ()


def test_codes_are_listed_once_in_a_fixed_order():
    flags = (checks.Flag(checks.TOO_SMALL, "a"), checks.Flag(checks.COLOUR_OVERLAY, "b"),
             checks.Flag(checks.TOO_SMALL, "c"))
    assert checks.codes(flags) == (checks.COLOUR_OVERLAY, checks.TOO_SMALL)


# --- what the pixels say ---------------------------------------------------------------------

def _sample_grey(name: str = "busi_benign_sample.png") -> np.ndarray:
    return read_image(SAMPLES / name).pixels


def test_probe_in_air_with_on_screen_text_is_blank():
    import cv2

    img = np.zeros((480, 640), np.uint8)
    for i, text in enumerate(("BREAST L", "L12-5 10MHz", "Gain 50 DR 60", "Depth 4.0 cm",
                              "Frz 00:12", "MI 0.9 TIS 0.1")):
        cv2.putText(img, text, (12, 28 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 230, 2)
    cv2.ellipse(img, (320, 0), (300, 440), 0, 60, 120, 12, -1)  # a faint empty sector
    assert checks.BLANK in checks.codes(checks.check_image(img))


@pytest.mark.parametrize("scramble", ["swap", "half", "rgb_as_grey"])
def test_scrambled_geometry_is_flagged(scramble):
    g = _sample_grey()
    flat = g.ravel()
    bad = {"swap": lambda: flat.reshape(g.shape[1], g.shape[0]),
           "half": lambda: flat[: g.size // (g.shape[1] // 2) * (g.shape[1] // 2)]
           .reshape(-1, g.shape[1] // 2),
           "rgb_as_grey": lambda: np.repeat(flat, 3)[: g.size].reshape(g.shape)}[scramble]()
    assert checks.IMPLAUSIBLE_GEOMETRY in checks.codes(checks.check_image(bad))


@pytest.mark.parametrize("name", ["busi_benign_sample.png", "busi_malignant_sample.png"])
def test_real_breast_ultrasound_passes_the_pixel_checks(name):
    assert checks.check_image(_sample_grey(name)) == ()


def test_noise_is_not_called_scrambled():
    noise = np.random.default_rng(1).integers(0, 256, (400, 400), dtype=np.uint8)
    assert checks.IMPLAUSIBLE_GEOMETRY not in checks.codes(checks.check_image(noise))


# --- the learned score -----------------------------------------------------------------------

def test_fit_puts_the_threshold_at_the_validation_quantile():
    rng = np.random.default_rng(0)
    train, val = rng.gamma(2.0, 1.0, (400, 8)), rng.gamma(2.0, 1.0, (200, 8))
    g, mean, precision = guard.fit(train, val, shrinkage=0.1, quantile=95)
    assert np.mean(g.distance(val) > g.threshold) == pytest.approx(0.05, abs=0.01)
    assert mean.dtype == precision.dtype == np.float32
    assert g.flag(g.threshold * 0.5) is None
    far = g.flag(float(g.distance(train * 50).min()))
    assert far is not None and far.code == checks.NOT_BREAST_ULTRASOUND
    assert g.flag(float("nan")) is not None


def test_the_shipped_guard_loads_and_passes_the_samples():
    card = ModelCard.read(BUNDLE / CARD_FILE)
    assert card.guard["weights_sha256"] == card.weights["sha256"]
    assert guard.load_guard(BUNDLE, card.guard) is not None
    eng = InferenceEngine(device="cpu")
    for name in ("busi_benign_sample.png", "busi_malignant_sample.png"):
        pred = eng.predict(read_image(SAMPLES / name))
        assert pred.checks == () and not pred.outside_intended_use, pred.warnings


@pytest.fixture(scope="module")
def app_engine():
    return InferenceEngine(device="cpu")


@pytest.mark.parametrize(("name", "code"), [
    ("CT_small.dcm", checks.NOT_BREAST_ULTRASOUND),
    ("MR_small.dcm", checks.NOT_BREAST_ULTRASOUND),
])
def test_other_modalities_are_flagged_with_words(app_engine, name, code):
    pred = app_engine.predict(read_image(PYDICOM_FILES / name))
    assert code in pred.checks and pred.outside_intended_use
    assert any("not ultrasound" in w for w in pred.warnings)


def test_a_photograph_is_flagged_by_the_learned_score(app_engine):
    # not breast ultrasound, says nothing about itself: only the learned score can tell
    mpl = Path(__import__("matplotlib").__file__).parent / "mpl-data" / "sample_data"
    pred = app_engine.predict(read_image(mpl / "grace_hopper.jpg"), auto_box=False)
    assert checks.NOT_BREAST_ULTRASOUND in pred.checks
    assert any("does not look like the breast ultrasound" in w for w in pred.warnings)


def test_the_guard_judges_the_whole_image_when_a_box_is_drawn(app_engine):
    from rcdnet_desktop.core.types import Box

    noise = np.random.default_rng(2).integers(0, 256, (400, 500), dtype=np.uint8)
    boxed = app_engine.predict(noise, roi=Box(100, 100, 150, 120))
    whole = app_engine.predict(noise, auto_box=False)
    assert checks.NOT_BREAST_ULTRASOUND in boxed.checks
    assert checks.NOT_BREAST_ULTRASOUND in whole.checks


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(BUNDLE, dst)
    return dst


def test_a_changed_guard_file_is_refused(bundle_copy):
    path = bundle_copy / "guard.npz"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"guard\.npz: sha256 differs"):
        InferenceEngine(bundle_copy, device="cpu")


def test_a_missing_guard_file_is_refused(bundle_copy):
    (bundle_copy / "guard.npz").unlink()
    with pytest.raises(WeightsError, match=r"guard\.npz: the input guard's file cannot be read"):
        InferenceEngine(bundle_copy, device="cpu")


def test_a_guard_of_other_weights_is_refused(bundle_copy):
    card_path = bundle_copy / CARD_FILE
    d = json.loads(card_path.read_text())
    d["guard"]["weights_sha256"] = "0" * 64
    card_path.write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="guard was fitted on other weights"):
        ModelCard.read(card_path)


def test_new_weights_drop_the_guard_and_the_goldens(engine, tmp_path):
    from training.bundle_write import save_bundle

    card = ModelCard.read(BUNDLE / CARD_FILE)
    out = save_bundle(engine.model, replace(card, localiser={}), tmp_path, dtype="float32")
    assert out.guard == {} and out.self_test == {}


@pytest.mark.parametrize(("name", "exam", "flagged"), [
    ("examples_ybr_color.dcm", "EPICARDIAL", True),
    ("examples_palette.dcm", "OBSTETRICAL", True),
    ("US1_UNCR.dcm", "SMALL PARTS", False),
    ("gdcm-US-ALOKA-16.dcm", "ABDOM/RAD", False),  # a vendor's own term says nothing
])
def test_the_examination_is_read_from_image_type(name, exam, flagged):
    """Image Type value 3 of an ultrasound file; an echocardiography clip is outside intended
    use whatever its pixels look like."""
    from pydicom.data import get_testdata_file

    from rcdnet_desktop.core.io import read_image

    record = read_image(get_testdata_file(name))
    assert record.study.exam_type == exam
    assert (checks.NOT_BREAST_ULTRASOUND in checks.codes(checks.check_record(record))) is flagged


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # a file's odd spelling, on purpose
@pytest.mark.parametrize(("modality", "image_type", "exam"), [
    ("US", ["ORIGINAL", "PRIMARY", " fetal_heart "], "FETAL HEART"),
    ("US", ["ORIGINAL", "PRIMARY"], ""),
    ("US", "ORIGINAL", ""),
    ("CT", ["ORIGINAL", "PRIMARY", "AXIAL"], ""),  # value 3 means something else there
])
def test_the_examination_term_is_read_once_in_one_spelling(modality, image_type, exam):
    from pydicom.dataset import Dataset

    from rcdnet_desktop.core.io.dicom_info import exam_type

    ds = Dataset()
    ds.Modality, ds.ImageType = modality, image_type
    assert exam_type(ds) == exam
