"""Exports from the viewer: PNG, PDF and DICOM SC written, read back, never overwritten unasked."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui.dialogs.export_dialog import (
    DICOM_IDENTITY_CHOICE,
    ExportDialog,
    render_export,
    write_export,
)
from tests.gui.gui_helpers import FakeEngine, wait_maps, write_png


def test_export_png_pdf_at_image_resolution(make_window, tmp_path, qtbot):
    src = write_png(tmp_path / "lesion.png", 110, size=(150, 210))
    w = make_window(FakeEngine())
    w.open_paths([src])
    wait_maps(qtbot, w)
    assert w.act.export_png.isEnabled() and w.act.export_pdf.isEnabled()
    assert not w.act.export_dcm.isEnabled()  # not a DICOM source

    (tmp_path / "out").mkdir()
    png = w.export_to("png", tmp_path / "out" / "report.png")
    assert png is not None and png.is_file()
    job = w.export_job()
    layout = render_export(job).layout
    with Image.open(png) as im:
        assert im.size == (layout.width, layout.height)
        rgb = np.asarray(im.convert("RGB"))
        text = dict(im.text)
    for panel in layout.panels:
        assert (panel.w, panel.h) == (210, 150)  # each panel is the image's own size
    plain = layout.crop(rgb, 0)
    assert np.array_equal(plain[..., 0], w.controller.current.record.pixels)
    assert not np.array_equal(layout.crop(rgb, 1), plain)  # the benign map is laid over it
    assert not any("patient" in k.lower() for k in text)

    pdf = w.export_to("pdf", tmp_path / "out" / "report.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and b"/Count 1" in data


def test_export_dicom_from_cine_without_patient_by_default(make_window, tmp_path, qtbot):
    path = get_testdata_file("examples_ybr_color.dcm")
    source = pydicom.dcmread(path, stop_before_pixels=True)
    w = make_window(FakeEngine())
    w.open_paths([path])
    wait_maps(qtbot, w)
    w.cine.set_frame(3)
    w.controller.set_box(Box(100, 60, 90, 70))
    wait_maps(qtbot, w)
    assert w.act.export_dcm.isEnabled()

    dlg = ExportDialog(w.controller.current.record, 3, "dicom", str(tmp_path), w)
    assert dlg.format() == "dicom"
    assert not dlg.include_patient.isChecked()  # unticked by default
    assert dlg.path().endswith("_frame4_rcdnet.dcm")
    dlg.close()

    out = w.export_to("dicom", tmp_path / "sc.dcm")
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert ds.StudyInstanceUID != source.StudyInstanceUID  # shared: de-identified
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    # The cine's ultrasound region is all the report shows: nothing burned in is left
    assert ds.BurnedInAnnotation == "NO" and ds.PatientIdentityRemoved == "YES"
    assert str(ds.get("PatientName", "")) == ""
    assert str(ds.get("PatientID", "")) == ""
    assert ds.pixel_array.shape[2] == 3
    job = w.export_job()
    assert job.frame == 3 and job.heatmaps.prediction.frame == 3

    named = w.export_to("dicom", tmp_path / "sc_named.dcm", include_patient=True)
    ds2 = pydicom.dcmread(named)
    assert str(ds2.PatientName) == str(source.PatientName)
    assert ds2.StudyInstanceUID == source.StudyInstanceUID  # for the PACS: the source's study


def test_export_asks_before_overwriting(make_window, tmp_path, qtbot, monkeypatch):
    src = write_png(tmp_path / "x.png", 80)
    w = make_window(FakeEngine())
    w.open_paths([src])
    wait_maps(qtbot, w)
    target = tmp_path / "x_report.png"
    target.write_bytes(b"keep me")
    asked = []
    monkeypatch.setattr(w, "confirm_overwrite", lambda p: asked.append(p) or False)
    assert w.export_to("png", target) is None
    assert target.read_bytes() == b"keep me" and asked == [target]
    monkeypatch.setattr(w, "confirm_overwrite", lambda p: True)
    assert w.export_to("png", target) == target
    assert target.read_bytes().startswith(b"\x89PNG")


def test_dicom_export_refused_for_non_dicom_source(make_window, tmp_path, qtbot):
    w = make_window(FakeEngine())
    w.open_paths([write_png(tmp_path / "n.png", 80)])
    wait_maps(qtbot, w)
    dlg = ExportDialog(w.controller.current.record, 0, "dicom", str(tmp_path), w)
    assert not dlg.radios["dicom"].isEnabled() and dlg.format() == "png"
    assert not dlg.include_patient.isEnabled()  # no identifiers in a PNG
    dlg.close()
    try:
        write_export(w.export_job(), "dicom", tmp_path / "n.dcm")
    except ValueError as exc:
        assert "DICOM source" in str(exc)
    else:
        raise AssertionError("DICOM export of a PNG source was not refused")
    assert w.export_to("dicom", tmp_path / "n.dcm") is None
    assert any("Export failed" in line for line in w.notice.lines())


def test_dialog_formats_come_from_the_export_table(qtbot, tmp_path):
    """The dialog offers exactly the core's export table, in its order, with its labels."""
    from pathlib import Path

    from rcdnet_desktop.core.export.formats import EXPORT_FORMATS
    from rcdnet_desktop.core.types import ImageRecord, PatientInfo

    record = ImageRecord(path=Path(tmp_path / "scan.dcm"), pixels=np.zeros((8, 8), np.uint8),
                         source_format="DICOM", patient=PatientInfo(name="DOE^JANE"))
    dlg = ExportDialog(record, 0, "pdf", str(tmp_path))
    qtbot.addWidget(dlg)
    assert list(dlg.radios) == [f.key for f in EXPORT_FORMATS]
    assert [dlg.radios[f.key].text() for f in EXPORT_FORMATS] == [f.label for f in EXPORT_FORMATS]
    assert dlg.format() == "pdf" and dlg.path().endswith("scan_rcdnet.pdf")
    assert dlg.include_patient.isEnabled()
    for f in EXPORT_FORMATS:
        dlg.radios[f.key].setChecked(True)
        assert dlg.path().endswith(f"scan_{f.name_tag}{f.suffix}")


def test_structured_report_from_the_export_dialog(make_window, tmp_path, qtbot, monkeypatch):
    """File > Export DICOM..., the Structured Report chosen in the dialog: the SR of what is on
    display, de-identified unless the PACS choice is ticked, named apart from the SC."""
    from PySide6.QtWidgets import QDialog

    path = get_testdata_file("examples_palette.dcm")
    w = make_window(FakeEngine())
    w.open_paths([path])
    wait_maps(qtbot, w)
    shown = w.export_job().heatmaps.prediction
    target = tmp_path / "out" / "finding.dcm"
    (tmp_path / "out").mkdir()
    seen = {}

    def answer(dlg):
        assert dlg.format() == "dicom"
        sc_name = dlg.path()
        dlg.radios["sr"].click()
        seen.update(sc=sc_name, sr=dlg.path(), choice=dlg.include_patient.text(),
                    note=dlg.identity_note.isVisibleTo(dlg))
        dlg.path_edit.setText(str(target))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ExportDialog, "exec", answer)
    w.act.export_dcm.trigger()
    assert seen["sc"].endswith("examples_palette_rcdnet.dcm")
    assert seen["sr"].endswith("examples_palette_rcdnet_sr.dcm")
    assert seen["choice"] == DICOM_IDENTITY_CHOICE and seen["note"]

    ds = pydicom.dcmread(target)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert ds.PatientIdentityRemoved == "YES"
    source = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.StudyInstanceUID != source.StudyInstanceUID
    values = []

    def walk(items):
        for item in items:
            if item.ConceptNameCodeSequence[0].CodeMeaning == "Probability of cancer":
                values.append(float(item.MeasuredValueSequence[0].NumericValue))
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    assert values == [pytest.approx(shown.p_malignant, abs=1e-4)]


def test_export_dialog_and_status_say_when_burned_in_text_may_remain(make_window, tmp_path,
                                                                     qtbot):
    """pydicom's examples_rgb_color has no ultrasound region data: its de-identified export
    keeps the pixels whole, and the dialog and the status bar say so; examples_palette has
    regions, so nothing is said."""
    from rcdnet_desktop.core.export.deidentify import BURNED_IN_NOTE

    w = make_window(FakeEngine())
    w.open_paths([get_testdata_file("examples_rgb_color.dcm")])
    wait_maps(qtbot, w)
    dlg = ExportDialog(w.controller.current.record, 0, "png", str(tmp_path), w)
    assert dlg.identity_note.isVisibleTo(dlg) and BURNED_IN_NOTE in dlg.identity_note.text()
    dlg.include_patient.setChecked(True)  # the patient is shown anyway: nothing to warn of
    assert not dlg.identity_note.isVisibleTo(dlg)
    dlg.include_patient.setChecked(False)
    dlg.radios["sr"].setChecked(True)  # no pixels in a structured report
    assert BURNED_IN_NOTE not in dlg.identity_note.text()
    dlg.radios["dicom"].setChecked(True)
    assert BURNED_IN_NOTE in dlg.identity_note.text()
    dlg.close()
    assert w.export_to("png", tmp_path / "a.png") is not None
    assert BURNED_IN_NOTE in w.statusBar().currentMessage()

    w.open_paths([get_testdata_file("examples_palette.dcm")])
    wait_maps(qtbot, w)
    dlg = ExportDialog(w.controller.current.record, 0, "png", str(tmp_path), w)
    assert not dlg.identity_note.isVisibleTo(dlg)
    dlg.close()
    assert w.export_to("png", tmp_path / "b.png") is not None
    assert BURNED_IN_NOTE not in w.statusBar().currentMessage()
