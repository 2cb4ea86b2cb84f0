"""Measurement through the user's path: the caliper (M, its toolbar button, a mouse drag on the
image), lengths in mm from the DICOM ultrasound regions or in px, kept per image and frame,
deleted, drawn and listed in exports; the automatic lesion box's size in mm."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QDialog

from rcdnet_desktop.core.measure import COLOUR
from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui.dialogs.export_dialog import ExportDialog, render_export
from tests.core.test_export import pdf_text
from tests.dicom_samples import US_MM_PER_PIXEL, patient_dicom
from tests.gui.gui_helpers import FakeEngine, wait_maps, write_png


def _drag(qtbot, w, start: QPointF, end: QPointF) -> None:
    p0, p1 = w.view.mapFromScene(start), w.view.mapFromScene(end)
    qtbot.mousePress(w.view.viewport(), Qt.MouseButton.LeftButton, pos=p0)
    qtbot.mouseMove(w.view.viewport(), pos=p1)
    qtbot.mouseRelease(w.view.viewport(), Qt.MouseButton.LeftButton, pos=p1)


def _click_tool(qtbot, w, action) -> None:
    qtbot.mouseClick(w.act.toolbar.widgetForAction(action), Qt.MouseButton.LeftButton)


@pytest.fixture
def jane(tmp_path):
    """An ultrasound frame with patient data and a calibrated region (0.2623 mm per pixel)."""
    return patient_dicom(tmp_path / "jane.dcm")


def test_caliper_measures_in_mm_on_an_ultrasound_dicom(make_window, jane, qtbot):
    w = make_window(FakeEngine())
    w.open_paths([jane])
    wait_maps(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_M)
    assert w.act.measure.isChecked() and w.view.caliper_mode()
    _drag(qtbot, w, QPointF(200, 150), QPointF(400, 150))
    (m,) = w.controller.measured()
    assert m.length.unit == "mm"
    assert m.length.value == pytest.approx(200 * US_MM_PER_PIXEL, abs=1.0)
    assert m.label == f"1: {m.length.value:.1f} mm"
    assert w.measures.isVisible() and w.measures.labels() == [m.label]
    assert w.view.caliper.labels() == [m.label]
    # The caliper stays on for the next line (a width and a height).
    _drag(qtbot, w, QPointF(300, 100), QPointF(300, 200))
    assert [x.label[:2] for x in w.controller.measured()] == ["1:", "2:"]
    assert w.controller.measured()[1].length.value == pytest.approx(100 * US_MM_PER_PIXEL,
                                                                    abs=1.0)
    # Mutually exclusive with the lesion box: the box button ends measuring, M ends the box.
    _click_tool(qtbot, w, w.act.box)
    assert w.view.box_mode() and not w.view.caliper_mode() and not w.act.measure.isChecked()
    _click_tool(qtbot, w, w.act.measure)
    assert w.view.caliper_mode() and not w.view.box_mode() and not w.act.box.isChecked()
    _click_tool(qtbot, w, w.act.measure)
    assert not w.view.caliper_mode()
    assert w.measures.isVisible()  # the measurements stay listed after the caliper is off
    assert w.controller.current.box() is None  # no drag drew a box
    wait_maps(qtbot, w)


def test_caliper_in_pixels_on_a_png(make_window, tmp_path, qtbot):
    w = make_window(FakeEngine())
    w.open_paths([write_png(tmp_path / "plain.png", 90, size=(120, 160))])
    wait_maps(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_M)
    _drag(qtbot, w, QPointF(20, 60), QPointF(120, 60))
    (m,) = w.controller.measured()
    assert m.length.unit == "px" and m.length.value == pytest.approx(100, abs=2)
    assert w.measures.labels() == [f"1: {m.length.value:.0f} px"]
    assert "no scale" in w.measures.title.text()
    assert w.measures.minimumSizeHint().width() < 300  # the words wrap, the window stays
    wait_maps(qtbot, w)


def test_a_line_leaving_the_calibrated_region_is_in_pixels_and_says_why(make_window, jane,
                                                                        qtbot, tmp_path):
    """The region is x 120-800, y 60-350: a line from the image's left margin into it has no
    scale that holds, so it is given in px, "outside the calibrated region", on the image, in
    the list and in the report; a line inside stays in mm."""
    w = make_window(FakeEngine())
    w.open_paths([jane])
    wait_maps(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_M)
    _drag(qtbot, w, QPointF(40, 150), QPointF(240, 150))
    _drag(qtbot, w, QPointF(200, 150), QPointF(400, 150))
    outside, inside = w.controller.measured()
    assert outside.length.unit == "px" and outside.length.value == pytest.approx(200, abs=2)
    assert outside.label == f"1: {outside.length.value:.0f} px, outside the calibrated region"
    assert inside.length.unit == "mm"
    assert w.view.caliper.labels() == w.measures.labels() == [outside.label, inside.label]
    assert "no scale" not in w.measures.title.text()  # the file has one: the line says why
    text = render_export(w.export_job()).text
    assert "px: image pixels, outside the calibrated region" in text
    wait_maps(qtbot, w)


def test_measurements_are_kept_per_image_and_deleted(make_window, jane, tmp_path, qtbot):
    png = write_png(tmp_path / "plain.png", 90)
    w = make_window(FakeEngine())
    w.open_paths([jane, png])
    wait_maps(qtbot, w)
    w.controller.set_box(Box(150, 80, 200, 150))
    wait_maps(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_M)
    _drag(qtbot, w, QPointF(200, 150), QPointF(400, 150))
    _drag(qtbot, w, QPointF(300, 100), QPointF(300, 200))
    assert len(w.measures.labels()) == 2
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.controller.current.path == png
    assert w.measures.labels() == [] and w.view.caliper.labels() == []
    qtbot.keyClick(w, Qt.Key.Key_Left)
    assert len(w.measures.labels()) == 2 and len(w.view.caliper.labels()) == 2

    # Select the first in the list and press Delete: that measurement goes, the box stays.
    entries = w.measures.entries
    entries.setFocus()
    qtbot.mouseClick(entries.viewport(), Qt.MouseButton.LeftButton,
                     pos=entries.visualItemRect(entries.item(0)).center())
    assert entries.currentRow() == 0
    qtbot.keyClick(entries, Qt.Key.Key_Delete)
    assert [m.label[:2] for m in w.controller.measured()] == ["1:"]
    assert w.controller.measured()[0].measurement.x0 == pytest.approx(300, abs=3)
    assert w.controller.current.box() == Box(150, 80, 200, 150)

    # Measure > Clear measurements (Shift+M) removes the rest.
    assert w.act.clear_measurements.isEnabled()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=3000)
    qtbot.keyClick(w, Qt.Key.Key_M, Qt.KeyboardModifier.ShiftModifier)
    assert w.controller.measured() == () and w.measures.labels() == []
    assert not w.act.clear_measurements.isEnabled()
    wait_maps(qtbot, w)


def _export(w, monkeypatch, action, path) -> None:
    """The export action, the dialog answered with ``path`` (patient left unticked)."""
    def accept(dlg):
        assert not dlg.include_patient.isChecked()
        dlg.path_edit.setText(str(path))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ExportDialog, "exec", accept)
    action.trigger()
    assert path.is_file()


def test_measurements_are_in_the_exports_and_the_banner_is_not(make_window, jane, tmp_path,
                                                               qtbot, monkeypatch):
    w = make_window(FakeEngine())
    w.open_paths([jane])
    wait_maps(qtbot, w)
    assert "DOE, JANE" in w.banner.text()
    qtbot.keyClick(w, Qt.Key.Key_M)
    _drag(qtbot, w, QPointF(200, 150), QPointF(400, 150))
    (m,) = w.controller.measured()
    words = f"Measurements: {m.label} (scale: ultrasound region calibration)"

    report = render_export(w.export_job())
    assert words in report.text
    for identifier in ("DOE", "JANE", "PID-001", "1970", "Breast ultrasound"):
        assert identifier not in report.text

    png = tmp_path / "out.png"
    _export(w, monkeypatch, w.act.export_png, png)
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"))
        chunks = " ".join(f"{k} {v}" for k, v in im.text.items())
    panel = report.layout.crop(rgb, 0)
    line = (panel == COLOUR).all(axis=2)
    for t in np.linspace(0.1, 0.9, 9):  # along the line, away from its ends and label
        x = m.measurement.x0 + t * (m.measurement.x1 - m.measurement.x0)
        y = m.measurement.y0 + t * (m.measurement.y1 - m.measurement.y0)
        near = line[int(y) - 1:int(y) + 3, int(x)]
        assert near.any(), f"the caliper line is not in the PNG at ({x:.0f}, {y:.0f})"
    assert "DOE" not in chunks and "PID-001" not in chunks

    pdf = tmp_path / "out.pdf"
    _export(w, monkeypatch, w.act.export_pdf, pdf)
    text = pdf_text(pdf.read_bytes())
    assert "Measurements: 1:" in text and f"{m.length.value:.1f} mm" in text
    assert "DOE" not in text and "PID-001" not in text

    # Ticking "include patient" is the one way the identifiers get in.
    assert "DOE, JANE" in render_export(w.export_job(), include_patient=True).text
    wait_maps(qtbot, w)


def test_the_automatic_lesion_box_size_in_mm(make_window, jane, tmp_path, qtbot):
    w = make_window(FakeEngine(lesion=Box(300, 100, 82, 42)))
    w.open_paths([jane])
    wait_maps(qtbot, w)
    mm = f"{82 * US_MM_PER_PIXEL:.1f} x {42 * US_MM_PER_PIXEL:.1f} mm"
    assert w.prediction.mode_text().startswith(
        f"Input: lesion box found automatically, 82 x 42 px ({mm}) at (300, 100)")
    assert f"lesion box (x 300, y 100, 82 x 42 px; {mm})" in render_export(w.export_job()).text

    png = write_png(tmp_path / "plain.png", 90, size=(200, 400))
    w.open_paths([png])
    wait_maps(qtbot, w)
    assert "82 x 42 px at (300, 100)" in w.prediction.mode_text()
    assert " mm" not in w.prediction.mode_text()
    assert "82 x 42 px)" in render_export(w.export_job()).text
