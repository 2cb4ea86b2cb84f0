"""One lesion box: the image, the maps, the list, the words and the export all use the box of the
result on display (as drawn or found; the padded region the model saw is only its ``roi``)."""

from __future__ import annotations

import threading
from datetime import datetime

from PySide6.QtCore import QPointF, Qt

from rcdnet_desktop.core import overlay
from rcdnet_desktop.core.model.engine import pad_roi
from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui.wording import list_text
from tests.gui.gui_helpers import ROI_MARGIN, FakeEngine, wait_maps, write_png

SIZE = (200, 240)
LESION = Box(90, 76, 60, 48)


def list_agrees(w) -> bool:
    """The list entry of the image on display says what the prediction panel says."""
    doc = w.controller.current
    entry = w.thumbs.item_text(doc.doc_id).split("\n", 1)[1]
    pred = w.prediction.prediction()
    return entry == (list_text(pred) if pred is not None else w.prediction.label.text())


def _draw(qtbot, w, start: QPointF, end: QPointF) -> None:
    qtbot.keyClick(w, Qt.Key.Key_B)
    p0, p1 = w.view.mapFromScene(start), w.view.mapFromScene(end)
    qtbot.mousePress(w.view.viewport(), Qt.MouseButton.LeftButton, pos=p0)
    qtbot.mouseMove(w.view.viewport(), pos=p1)
    qtbot.mouseRelease(w.view.viewport(), Qt.MouseButton.LeftButton, pos=p1)


def _same_box_everywhere(w, box: Box) -> None:
    maps = w.heatmaps.maps()
    pred = w.prediction.prediction()
    job = w.export_job()
    assert pred.box == maps.prediction.box == box
    assert pred.roi == pad_roi(box, SIZE, ROI_MARGIN) != box  # what the model saw, padded
    assert w.heatmaps.box_shown() == box
    assert box in (w.view.box_shown(), w.view.auto_box_shown())
    assert job.heatmaps is maps and job.heatmaps.prediction.box == box
    sentences = overlay.evidence_sentences(maps)
    assert tuple(d.text() for d in w.heatmaps.descriptions) == sentences
    assert list_agrees(w)


def test_found_and_drawn_boxes_are_one_box_on_screen_list_and_export(make_window, tmp_path,
                                                                      qtbot):
    w = make_window(FakeEngine(lesion=LESION))
    w.open_paths([write_png(tmp_path / "lesion.png", 200, size=SIZE)])
    wait_maps(qtbot, w)
    _same_box_everywhere(w, LESION)

    _draw(qtbot, w, QPointF(10, 10), QPointF(60, 50))
    wait_maps(qtbot, w)
    drawn = w.controller.current.box()
    _same_box_everywhere(w, drawn)

    qtbot.keyClick(w, Qt.Key.Key_Delete)  # clear the box: the found one is back, known
    assert w.controller.current.box() is None
    _same_box_everywhere(w, LESION)


def test_clearing_a_box_never_leaves_the_boxed_result_in_the_list(make_window, tmp_path, qtbot):
    """The defect: the list kept the boxed result (0.93) while the panel showed 0.87."""
    release = threading.Event()
    engine = FakeEngine()

    def slow_factory(_device):
        release.wait(10)
        return engine

    w = make_window(factory=slow_factory)
    w.open_paths([write_png(tmp_path / "x.png", 200, size=SIZE)])
    qtbot.waitUntil(lambda: w.controller.current.record is not None, timeout=5000)
    # The box is drawn while the model loads: the whole image is never classified.
    _draw(qtbot, w, QPointF(90, 70), QPointF(150, 130))
    release.set()
    boxed_key = wait_maps(qtbot, w)
    boxed = w.prediction.prediction()
    assert boxed_key.roi is not None and list_agrees(w)
    assert engine.calls and all(c[3] != [None] for c in engine.calls)

    qtbot.keyClick(w, Qt.Key.Key_Delete)
    assert w.prediction.prediction() is None  # waiting for the whole image's result
    assert list_agrees(w), w.thumbs.item_text(w.controller.current.doc_id)
    assert list_text(boxed) not in w.thumbs.item_text(w.controller.current.doc_id)
    wait_maps(qtbot, w)
    assert w.prediction.prediction().box is None and list_agrees(w)


def test_the_export_describes_the_evidence_as_the_screen_does(make_window, tmp_path, qtbot):
    from rcdnet_desktop.core.export.report import ReportOptions, report_lines

    w = make_window(FakeEngine(lesion=LESION))
    w.open_paths([write_png(tmp_path / "lesion.png", 200, size=SIZE)])
    wait_maps(qtbot, w)
    lines = [line.text for line in report_lines(w.export_job().heatmaps,
                                                ReportOptions(when=datetime.now()))]
    for title, label in zip(("benign", "malignant"), w.heatmaps.descriptions, strict=True):
        assert f"Evidence for {title}: {label.text()}" in lines
