"""The viewer's PACS menu through the user's path, against a real Orthanc: query, retrieve and
open a study, send the result, configure nodes; failures shown in words, the window free."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402
from dataclasses import replace  # noqa: E402

import pydicom  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from rcdnet_desktop.core.pacs import PacsNode  # noqa: E402
from rcdnet_desktop.gui.pacs.nodes import pacs_nodes, save_pacs_nodes  # noqa: E402
from tests.gui.gui_helpers import wait_maps  # noqa: E402
from tests.pacs.conftest import US1_STUDY, pydicom_data_file  # noqa: E402
from tests.pacs.orthanc_server import free_port  # noqa: E402

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RCDNET_PACS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _query_dialog(qtbot, w):
    w.act.pacs_query.trigger()
    return w.pacs_dialogs[-1]


def test_find_a_patient_and_open_the_study(qtbot, make_window, gui_settings, dimse_node,
                                           cache_dir):
    save_pacs_nodes(gui_settings, [dimse_node])
    w = make_window()
    dlg = _query_dialog(qtbot, w)
    qtbot.keyClicks(dlg.patient_name, "compressed")
    qtbot.mouseClick(dlg.search_button, LEFT)
    qtbot.waitUntil(lambda: dlg.results.topLevelItemCount() == 1, timeout=10000)
    patient = dlg.results.topLevelItem(0)
    assert patient.text(1) == "13US1" and patient.childCount() == 1
    assert "1 study of 1 patient found" in dlg.status.text()
    patient.child(0).setSelected(True)
    qtbot.mouseClick(dlg.retrieve_button, LEFT)
    qtbot.waitUntil(lambda: len(w.controller.documents()) == 2, timeout=15000)
    assert "2 instances retrieved" in dlg.status.text()
    assert {pydicom.dcmread(d.path).StudyInstanceUID for d in w.controller.documents()} == \
        {US1_STUDY}
    assert not list(cache_dir.glob(".incoming-*"))
    wait_maps(qtbot, w)
    dlg.close()


def test_unreachable_pacs_is_said_in_words_and_the_window_stays_free(qtbot, make_window,
                                                                      gui_settings):
    gone = PacsNode(name="Gone", ae_title="PACS", host="127.0.0.1", port=free_port(), timeout=5)
    save_pacs_nodes(gui_settings, [gone])
    w = make_window()
    dlg = _query_dialog(qtbot, w)
    qtbot.mouseClick(dlg.search_button, LEFT)
    qtbot.waitUntil(lambda: "nobody accepts connections" in dlg.status.text(), timeout=10000)
    assert dlg.search_button.isEnabled() and not dlg.cancel_button.isEnabled()
    assert dlg.results.topLevelItemCount() == 0


def test_cancel_a_retrieve_leaves_only_whole_files(qtbot, make_window, gui_settings,
                                                   dimse_node, cache_dir):
    save_pacs_nodes(gui_settings, [dimse_node])
    w = make_window()
    dlg = _query_dialog(qtbot, w)
    qtbot.mouseClick(dlg.search_button, LEFT)
    qtbot.waitUntil(lambda: dlg.results.topLevelItemCount() >= 1, timeout=10000)
    dlg.results.topLevelItem(0).setSelected(True)  # a patient: all of its studies
    assert dlg.retrieve_button.isEnabled()
    qtbot.mouseClick(dlg.retrieve_button, LEFT)
    qtbot.mouseClick(dlg.cancel_button, LEFT)
    qtbot.waitUntil(lambda: not dlg.busy, timeout=10000)
    assert not list(cache_dir.glob(".incoming-*"))
    for f in cache_dir.rglob("*"):
        if f.is_file():
            pydicom.dcmread(f)


def test_send_the_result_files_it_with_the_source_study(qtbot, make_window, gui_settings,
                                                        dimse_node, orthanc, tmp_path):
    save_pacs_nodes(gui_settings, [dimse_node])
    src = shutil.copy(pydicom_data_file("gdcm-US-ALOKA-16.dcm"), tmp_path / "aloka.dcm")
    source = pydicom.dcmread(src, stop_before_pixels=True)
    before = {i["SOPInstanceUID"] for i in orthanc.instances_of_study(source.StudyInstanceUID)}
    w = make_window()
    w.open_paths([src])
    wait_maps(qtbot, w)
    assert w.act.pacs_send.isEnabled()
    w.act.pacs_send.trigger()
    dlg = w.pacs_dialogs[-1]
    assert dlg.with_sc.isChecked()
    qtbot.mouseClick(dlg.send_button, LEFT)
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=15000)
    assert dlg.result.ok and "2 objects stored" in dlg.status.text()
    new = [i for i in orthanc.instances_of_study(source.StudyInstanceUID)
           if i["SOPInstanceUID"] not in before]
    assert sorted(i["Modality"] for i in new) == ["SR", "US"]
    assert {i["PatientID"] for i in new} == {source.PatientID}
    assert {i["PatientName"] for i in new} == {str(source.PatientName)}
    for i in new:
        (found,) = orthanc.find("Instance", {"SOPInstanceUID": i["SOPInstanceUID"]})
        orthanc.request("DELETE", f"/instances/{found['ID']}")


def test_send_refused_is_said_in_words(qtbot, make_window, gui_settings, dimse_node, tmp_path):
    from tests.pacs.orthanc_server import READ_ONLY_AET

    save_pacs_nodes(gui_settings, [replace(dimse_node, calling_ae_title=READ_ONLY_AET)])
    src = shutil.copy(pydicom_data_file("gdcm-US-ALOKA-16.dcm"), tmp_path / "aloka.dcm")
    w = make_window()
    w.open_paths([src])
    wait_maps(qtbot, w)
    w.act.pacs_send.trigger()
    dlg = w.pacs_dialogs[-1]
    qtbot.mouseClick(dlg.send_button, LEFT)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("Not sent:"), timeout=15000)
    assert "broke off the connection" in dlg.status.text()


def test_nodes_dialog_adds_tests_and_saves_a_node(qtbot, make_window, gui_settings, orthanc):
    w = make_window()
    w.act.pacs_nodes.trigger()
    dlg = w.pacs_dialogs[-1]
    qtbot.mouseClick(dlg.add_button, LEFT)
    dlg.name.clear()
    qtbot.keyClicks(dlg.name, "Local Orthanc")
    dlg.ae_title.setText(orthanc.aet)
    dlg.host.setText("127.0.0.1")
    dlg.port.setValue(orthanc.dicom_port)
    qtbot.mouseClick(dlg.test_button, LEFT)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("Connected"), timeout=10000)
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    (saved,) = pacs_nodes(gui_settings)
    assert (saved.name, saved.port, saved.calling_ae_title) == ("Local Orthanc",
                                                                orthanc.dicom_port, "RCDNET")


def test_export_dialog_makes_the_identity_choice_explicit(qtbot, make_window, tmp_path):
    from rcdnet_desktop.gui.dialogs.export_dialog import ExportDialog

    src = shutil.copy(pydicom_data_file("gdcm-US-ALOKA-16.dcm"), tmp_path / "aloka.dcm")
    w = make_window()
    w.open_paths([src])
    wait_maps(qtbot, w)
    dlg = ExportDialog(w.controller.current.record, 0, "dicom", str(tmp_path), w)
    assert "For the PACS" in dlg.include_patient.text()
    assert "de-identified" in dlg.identity_note.text()
    dlg.radios["png"].setChecked(True)
    assert dlg.include_patient.text() == "Include patient name and ID"
    dlg.close()
