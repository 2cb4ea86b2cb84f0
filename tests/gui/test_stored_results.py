"""A study retrieved after results were sent back: the program's own SC and SR, and another
tool's SR, opened through File > Open as a user does. Nothing of them is classified; an SR is
shown as its stored result over its source image (box and calipers drawn, the result in
words), or in words alone when the image is not at hand."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog

from rcdnet_desktop.core.bands import band_for
from rcdnet_desktop.core.export.dicom_sc import export_dicom_sc
from rcdnet_desktop.core.export.dicom_sr import export_dicom_sr
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.io.own import OTHER_SR_NOTE, OWN_NOTE
from rcdnet_desktop.core.measure import Calibration, Measurement, measure_all
from rcdnet_desktop.core.types import Box, Descriptor, Prediction
from tests.core.test_own_objects import _other_tool_sr
from tests.dicom_samples import patient_dicom
from tests.gui.gui_helpers import FakeEngine, wait_idle

BOX = Box(300, 120, 150, 100)


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "retrieved"
    source = patient_dicom(folder / "us.dcm")
    record = read_image(source)
    pred = Prediction(p_benign=0.65, p_malignant=0.35, device="cpu", model_version="3.0.0",
                      box=BOX, box_source="user", band=band_for(0.35), threshold=0.158,
                      descriptors=(Descriptor("shape", "irregular", 0.8),))
    calipers = measure_all(Calibration.of(record), [Measurement(300, 200, 400, 200),
                                                    Measurement(350, 120, 350, 220)])
    sr = export_dicom_sr(folder / "result_sr.dcm", record, pred, include_patient=True,
                         measurements=calipers)
    sc = export_dicom_sc(folder / "result_sc.dcm", record, np.zeros((40, 60, 3), np.uint8),
                         include_patient=True)
    return record, sr, sc


def _open(qtbot, w, monkeypatch, path):
    """File > Open, the file chosen in the dialog."""
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *_a, **_k: ([str(path)], "")))
    w.act.open.trigger()
    qtbot.waitUntil(lambda: w.controller.current is not None
                    and w.controller.current.record is not None, timeout=10000)
    wait_idle(qtbot, w)


def _classified(engine, path) -> bool:
    """Whether the engine was asked to predict or explain the file ``path``."""
    return any(str(path) in c[1] for c in engine.calls)


def test_own_sr_is_shown_over_its_source_image_not_classified(make_window, study, qtbot,
                                                              monkeypatch):
    record, sr, _sc = study
    engine = FakeEngine()
    w = make_window(engine)
    _open(qtbot, w, monkeypatch, sr)
    qtbot.waitUntil(lambda: w.ui.stored is not None and w.ui.stored.isVisible(), timeout=5000)
    text = w.ui.stored.shown_text()
    assert "Decision at the model's cut-off (0.16): suspicious" in text
    assert "Likelihood band: moderate (10-50%)" in text
    assert "Calibrated probability of malignancy: 0.35" in text
    assert "Lexicon: shape: irregular" in text
    assert "Caliper 1 (Length): 26.2 mm" in text
    assert "not classified again" in w.ui.stored.note.text()
    assert np.array_equal(w.view.pixels(), record.pixels)  # the source image, found
    assert w.view.box_shown() == BOX
    assert w.measures.entries.count() == 2
    assert w.prediction.label.text().lower() == OWN_NOTE.lower()
    assert w.prediction.prediction() is None and not _classified(engine, sr)
    assert not w.act.export_dcm.isEnabled()


def test_own_secondary_capture_is_an_image_with_a_plain_note(make_window, study, qtbot,
                                                             monkeypatch):
    _record, sr, sc = study
    engine = FakeEngine()
    w = make_window(engine)
    _open(qtbot, w, monkeypatch, sc)
    assert w.view.pixels() is not None and w.view.pixels().shape[:2] == (40, 60)
    assert w.prediction.label.text() == "A result exported by RcdNet Desktop, not classified " \
                                        "again"
    assert w.ui.stored is None or not w.ui.stored.isVisible()
    assert not _classified(engine, sc)


def test_an_sr_without_its_image_is_shown_in_words(make_window, study, qtbot, monkeypatch,
                                                   tmp_path):
    alone = tmp_path / "elsewhere" / "alone"
    alone.mkdir(parents=True)
    moved = shutil.copy(study[1], alone / "sr.dcm")
    engine = FakeEngine()
    w = make_window(engine)
    _open(qtbot, w, monkeypatch, moved)
    qtbot.waitUntil(lambda: w.ui.stored is not None and w.ui.stored.isVisible(), timeout=5000)
    assert "not open and not in the report's folder" in w.ui.stored.note.text()
    assert "Decision at the model's cut-off (0.16): suspicious" in w.view.message()
    assert not engine.calls


def test_another_tools_sr_is_shown_as_text(make_window, study, qtbot, monkeypatch):
    record = study[0]
    other = _other_tool_sr(record, record.path.parent / "other_sr.dcm")
    engine = FakeEngine()
    w = make_window(engine)
    _open(qtbot, w, monkeypatch, other)
    qtbot.waitUntil(lambda: w.ui.stored is not None and w.ui.stored.isVisible(), timeout=5000)
    text = w.ui.stored.shown_text()
    assert "Long axis: 17.5 mm" in text and "Nodule A - Mass" in text
    assert OTHER_SR_NOTE.lower() in w.ui.stored.note.text().lower()
    assert not _classified(engine, other)


def test_switching_back_to_an_image_hides_the_stored_result(make_window, study, qtbot,
                                                            monkeypatch):
    record, sr, _sc = study
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([record.path, sr])
    qtbot.waitUntil(lambda: all(d.record is not None for d in w.controller.documents()),
                    timeout=10000)
    by_name = {d.name: d for d in w.controller.documents()}
    w.controller.select(by_name[sr.name].doc_id)
    qtbot.waitUntil(lambda: w.ui.stored is not None and w.ui.stored.isVisible(), timeout=5000)
    w.controller.select(by_name["us.dcm"].doc_id)
    qtbot.waitUntil(lambda: w.prediction.prediction() is not None, timeout=10000)
    assert not w.ui.stored.isVisible()
    wait_idle(qtbot, w)
    assert _classified(engine, record.path) and not _classified(engine, sr)


def test_an_sr_is_shown_over_its_image_when_that_is_open_from_elsewhere(make_window, study,
                                                                        qtbot, monkeypatch,
                                                                        tmp_path):
    record = study[0]
    alone = tmp_path / "elsewhere" / "reports"
    alone.mkdir(parents=True)
    moved = shutil.copy(study[1], alone / "sr.dcm")
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([record.path])
    qtbot.waitUntil(lambda: w.prediction.prediction() is not None, timeout=10000)
    _open(qtbot, w, monkeypatch, moved)
    qtbot.waitUntil(lambda: w.ui.stored is not None and w.ui.stored.isVisible(), timeout=5000)
    assert "not open" not in w.ui.stored.note.text()
    assert np.array_equal(w.view.pixels(), record.pixels) and w.view.box_shown() == BOX
    wait_idle(qtbot, w)
    assert not _classified(engine, moved)


def test_batch_review_of_the_retrieved_study_skips_its_own_results(make_window, study, qtbot):
    from PySide6.QtCore import Qt

    engine = FakeEngine()
    w = make_window(engine)
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    folder = study[0].path.parent
    w.ask_folder = lambda: str(folder)
    w.act.batch.trigger()  # the toolbar button / Ctrl+B
    dlg = w.batch_dialogs[0]
    with qtbot.waitSignal(dlg.finished_run, timeout=10000):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    status = {dlg.model.data(dlg.model.index(r, 0)): dlg.model.data(dlg.model.index(r, 6))
              for r in range(dlg.model.rowCount())}
    assert status["us.dcm"] != "-" and not status["us.dcm"].startswith(("failed", "skipped"))
    for name in ("result_sr.dcm", "result_sc.dcm"):
        assert status[name] == f"skipped: {OWN_NOTE}"
    assert not _classified(engine, study[1]) and not _classified(engine, study[2])


@pytest.mark.filterwarnings("ignore:The string .* single component:UserWarning")  # the file's name
def test_an_sr_of_a_cine_frame_is_shown_on_that_frame(make_window, qtbot, monkeypatch,
                                                      tmp_path):
    from pydicom.data import get_testdata_file

    clip = shutil.copy(get_testdata_file("examples_ybr_color.dcm"), tmp_path / "clip.dcm")
    record = read_image(clip)
    pred = Prediction(p_benign=0.9, p_malignant=0.1, device="cpu", model_version="3.0.0",
                      box=Box(100, 60, 90, 70), box_source="user", frame=2, threshold=0.158)
    sr = export_dicom_sr(tmp_path / "clip_sr.dcm", record, pred, include_patient=True)
    assert read_image(sr).pixels_frame == 2
    w = make_window(FakeEngine())
    _open(qtbot, w, monkeypatch, sr)
    doc = w.controller.current
    assert doc.frame == 2 and np.array_equal(w.view.pixels(), record.frame(2))
    assert w.view.box_shown() == Box(100, 60, 90, 70)
