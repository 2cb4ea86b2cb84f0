"""The controller's side of patient context and measurement, without Qt: what it tells the view
(sections, image context, measurements) and what it keeps per image and frame."""

from __future__ import annotations

from rcdnet_desktop.core.context import FILES_WITHOUT_PATIENT, NO_PATIENT_DATA
from rcdnet_desktop.core.measure import Measurement
from rcdnet_desktop.gui.session.grouping import LOADING
from tests.dicom_samples import TEST_FILES, patient_dicom
from tests.gui.controller_fakes import Harness
from tests.gui.gui_helpers import write_png


def test_sections_follow_the_files_as_they_are_read(tmp_path):
    png = write_png(tmp_path / "a.png", 90)
    jane = patient_dicom(tmp_path / "b.dcm")
    h = Harness()
    h.ready()
    h.c.open_paths([png, jane])
    assert [(s.title, len(s.doc_ids)) for s in h.view.sections] == [(LOADING, 2)]
    assert h.view.context is None  # nothing read yet: no banner
    h.read_all()
    assert [s.title for s in h.view.sections] == [
        FILES_WITHOUT_PATIENT, "DOE, JANE  \N{MIDDLE DOT}  ID PID-001",
        "2024-03-01  \N{MIDDLE DOT}  Breast ultrasound"]
    assert [d.path for d in h.c.documents()] == [png, jane]
    assert h.view.context.banner.text == NO_PATIENT_DATA
    h.c.step(1)
    assert h.view.context.is_dicom and h.view.context.path == jane
    assert h.view.context.calibration.known


def test_measurements_are_kept_per_frame_and_image(tmp_path):
    h = Harness()
    h.ready()
    h.c.open_paths([TEST_FILES / "examples_ybr_color.dcm", write_png(tmp_path / "p.png", 90)])
    h.read_all()
    cine = h.c.current
    h.c.add_measurement(Measurement(100, 100, 200, 100))
    assert [m.length.unit for m in h.view.measured] == ["mm"]
    assert h.c.action_state().has_measurements
    h.c.set_frame(3)
    assert h.view.measured == () and not h.c.action_state().has_measurements
    h.c.add_measurement(Measurement(100, 100, 100, 150))
    h.c.add_measurement(Measurement(120, 100, 120, 150))
    h.c.step(1)
    assert h.view.measured == ()
    h.c.add_measurement(Measurement(0, 0, 30, 40))
    assert h.view.measured[0].label == "1: 50 px"
    h.c.step(-1)
    assert h.c.current is cine and cine.frame == 3
    assert [m.number for m in h.view.measured] == [1, 2]
    h.c.delete_measurement(0)
    assert [m.measurement.x0 for m in h.view.measured] == [120]
    h.c.delete_measurement(5)  # nothing there: nothing happens
    assert len(h.view.measured) == 1
    h.c.set_frame(0)
    assert len(h.view.measured) == 1
    h.c.clear_measurements()
    assert h.view.measured == ()
    h.c.set_frame(3)
    assert len(h.view.measured) == 1  # only the frame on display was cleared
