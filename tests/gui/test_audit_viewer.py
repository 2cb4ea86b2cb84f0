"""The viewer records the open of a DICOM image in the audit trail, by its UIDs."""

from __future__ import annotations

import json

import pytest

from rcdnet_desktop.core import audit


def test_viewer_records_the_open_of_a_dicom_image(audit_log_in_tmp, make_window, qtbot):
    from pydicom.data import get_testdata_file

    from tests.gui.gui_helpers import FakeEngine, wait_maps, write_png

    w = make_window(FakeEngine())
    w.open_paths([get_testdata_file("US1_UNCR.dcm") or pytest.skip("no pydicom-data"),
                  write_png(audit_log_in_tmp.parent / "plain.png", 90)])
    wait_maps(qtbot, w)
    qtbot.waitUntil(lambda: len(w.controller.documents()) == 2, timeout=10000)
    events = [json.loads(x) for x in (audit_log_in_tmp / audit.LOG_NAME).read_text().splitlines()]
    assert [e["event"] for e in events] == ["open"]  # the PNG carries no study to audit
    assert "13US1" not in json.dumps(events)
