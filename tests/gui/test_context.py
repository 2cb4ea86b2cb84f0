"""Patient and study context through the user's path: the banner above the image, the open list
grouped by patient and study, the DICOM tag panel, and a DICOMDIR opened from File > Open."""

from __future__ import annotations

from pathlib import Path

import pydicom
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from rcdnet_desktop.core.context import FILES_WITHOUT_PATIENT, NO_PATIENT_DATA
from rcdnet_desktop.gui.panels.tag_panel import DicomTagsDialog
from rcdnet_desktop.gui.panels.thumbnails import DOC_ROLE
from tests.dicom_samples import make_disc, patient_dicom
from tests.gui.gui_helpers import FakeEngine, wait_idle, wait_maps, write_png

DOT = "  \N{MIDDLE DOT}  "
STUDY_2 = "1.2.826.0.1.3680043.8.498.2"
STUDY_3 = "1.2.826.0.1.3680043.8.498.3"


def _all_read(qtbot, w) -> None:
    qtbot.waitUntil(lambda: all(not d.loading for d in w.controller.documents()), timeout=10000)


def _choose_files(w, paths: list[Path]) -> None:
    """File > Open, answering the file dialog with ``paths``."""
    w.ask_open_files = lambda: [str(p) for p in paths]
    w.act.open.trigger()


def test_banner_for_a_dicom_with_patient_data_and_for_a_png(make_window, tmp_path, qtbot):
    dcm = patient_dicom(tmp_path / "jane.dcm")
    png = write_png(tmp_path / "plain.png", 90)
    w = make_window(FakeEngine())
    _choose_files(w, [dcm, png])
    _all_read(qtbot, w)
    wait_maps(qtbot, w)
    assert w.controller.current.path == dcm
    assert w.banner.isVisible()
    assert w.banner.text() == (
        f"DOE, JANE{DOT}ID PID-001{DOT}born 1970-01-25\n"
        f"Study 2024-03-01{DOT}Breast ultrasound{DOT}US{DOT}Philips Medical Systems CX50")
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.controller.current.path == png
    assert w.banner.text() == NO_PATIENT_DATA
    wait_maps(qtbot, w)


def test_a_long_banner_wraps_instead_of_widening_the_window(make_window, tmp_path, qtbot):
    long = "Bilateral breast ultrasound with axillary lymph nodes, 2nd look"  # 64: LO's most
    dcm = patient_dicom(tmp_path / "long.dcm", description=long)
    w = make_window(FakeEngine())
    _choose_files(w, [dcm])
    _all_read(qtbot, w)
    wait_maps(qtbot, w)
    assert long in w.banner.text()  # all of it, nothing cut
    assert w.banner.minimumSizeHint().width() < 300


def test_the_list_is_grouped_by_patient_then_study_and_next_walks_it(make_window, tmp_path,
                                                                     qtbot):
    plain = write_png(tmp_path / "a_plain.png", 70)
    jane1 = patient_dicom(tmp_path / "b_jane.dcm")
    ann = patient_dicom(tmp_path / "c_ann.dcm", name="ROE^ANN", patient_id="PID-002",
                        study=STUDY_3, study_date="20240215", description="Left breast")
    jane2 = patient_dicom(tmp_path / "d_jane_later.dcm", study=STUDY_2, study_date="20240610",
                          description="Follow-up")
    jane3 = patient_dicom(tmp_path / "e_jane.dcm")
    w = make_window(FakeEngine())
    _choose_files(w, [jane1, plain, ann, jane2, jane3])
    _all_read(qtbot, w)
    assert w.thumbs.headings.titles() == [
        f"DOE, JANE{DOT}ID PID-001",
        f"    2024-03-01{DOT}Breast ultrasound",
        f"    2024-06-10{DOT}Follow-up",
        FILES_WITHOUT_PATIENT,
        f"ROE, ANN{DOT}ID PID-002",
        f"    2024-02-15{DOT}Left breast",
    ]
    order = [jane1, jane3, jane2, plain, ann]
    by_id = {d.doc_id: d.path for d in w.controller.documents()}
    assert [by_id[i] for i in w.thumbs.document_ids()] == order
    # Next and previous walk the list as it is shown.
    assert w.controller.current.path == jane1
    seen = [w.controller.current.path]
    for _ in range(len(order) - 1):
        qtbot.keyClick(w, Qt.Key.Key_Right)
        seen.append(w.controller.current.path)
        assert w.thumbs.currentItem().data(DOC_ROLE) == w.controller.current.doc_id
    assert seen == order
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert w.controller.current.path == order[-2]
    # Headings are not images: clicking one selects nothing.
    heading = w.thumbs.item(0)
    assert not heading.flags() & Qt.ItemFlag.ItemIsSelectable
    # The name and the ID on lines of their own, the whole heading as tooltip; drawn in the
    # list's own text colour (not greyed out as a disabled row), following a new palette.
    assert heading.text() == "DOE, JANE\nID PID-001"
    assert heading.toolTip() == f"DOE, JANE{DOT}ID PID-001"
    assert heading.foreground().color() == w.thumbs.palette().color(QPalette.ColorRole.Text)
    dark = QPalette(w.thumbs.palette())
    dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    w.thumbs.setPalette(dark)
    assert heading.foreground().color() == QColor(230, 230, 230)
    wait_idle(qtbot, w)


def test_the_tag_panel_opens_from_its_action_and_follows_the_image(make_window, tmp_path, qtbot):
    dcm = patient_dicom(tmp_path / "jane.dcm")
    png = write_png(tmp_path / "plain.png", 90)
    w = make_window(FakeEngine())
    w.open_paths([dcm, png])
    _all_read(qtbot, w)
    view_menu = w.menuBar().actions()[1].menu()
    assert w.act.tags in view_menu.actions()
    w.act.tags.trigger()
    panel = w.tags_dialog
    assert isinstance(panel, DicomTagsDialog) and panel.isVisible()
    rows = panel.visible_rows()
    assert ("(0010,0010)", "PatientName", "PN", "DOE^JANE") in rows
    assert ("(0018,6011)", "SequenceOfUltrasoundRegions", "SQ", "2 items") in rows
    assert "Pixel data is not shown" in panel.note_text()

    qtbot.keyClicks(panel.search, "PhysicalDelta")
    shown = panel.visible_rows()
    assert {r[1] for r in shown} >= {"SequenceOfUltrasoundRegions", "Item 1",
                                      "PhysicalDeltaX", "PhysicalDeltaY"}
    assert not any(r[1] == "PatientName" for r in shown)
    panel.search.clear()

    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=3000)
    qtbot.keyClick(w, Qt.Key.Key_Right)  # the PNG: no header
    assert panel.visible_rows() == [] and "plain image file" in panel.note_text()
    qtbot.keyClick(w, Qt.Key.Key_Left)
    assert ("(0010,0020)", "PatientID", "LO", "PID-001") in panel.visible_rows()
    wait_maps(qtbot, w)


def test_the_tag_panel_opens_with_its_key(make_window, tmp_path, qtbot):
    w = make_window(FakeEngine())
    w.open_paths([patient_dicom(tmp_path / "jane.dcm")])
    _all_read(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_T)
    assert w.tags_dialog is not None and w.tags_dialog.isVisible()
    assert any(r[1] == "StudyDescription" for r in w.tags_dialog.visible_rows())
    wait_maps(qtbot, w)


def test_opening_a_dicomdir_opens_its_images_grouped(make_window, tmp_path, qtbot):
    src = tmp_path / "src"
    jane = patient_dicom(src / "jane.dcm")
    ann = patient_dicom(src / "ann.dcm", name="ROE^ANN", patient_id="PID-002", study=STUDY_3)
    jane_later = patient_dicom(src / "jane2.dcm", study=STUDY_2, study_date="20240610")
    disc = tmp_path / "disc"
    files = make_disc(disc, [jane, ann, jane_later])
    lost = next(f for f in files if pydicom.dcmread(f).PatientName == "ROE^ANN")
    lost.unlink()  # a reference the disc lost
    kept = [f for f in files if f != lost]
    w = make_window(FakeEngine())
    _choose_files(w, [disc / "DICOMDIR"])
    _all_read(qtbot, w)
    assert sorted(d.path for d in w.controller.documents()) == sorted(kept)
    assert w.thumbs.headings.titles() == [
        f"DOE, JANE{DOT}ID PID-001",
        f"    2024-03-01{DOT}Breast ultrasound",
        f"    2024-06-10{DOT}Breast ultrasound",
    ]
    assert any("1 of the 3 images listed in the DICOMDIR" in line for line in w.notice.lines())
    assert w.banner.text().startswith("DOE, JANE")
    wait_maps(qtbot, w)

    # File > Open folder on the disc opens the same images, once.
    w.ask_folder = lambda: str(disc)
    w.act.open_folder.trigger()
    assert len(w.controller.documents()) == 2
    wait_maps(qtbot, w)
