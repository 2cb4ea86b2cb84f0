"""The viewer controller without Qt: a recording view, a fake engine, requests run by hand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui.window.viewer_protocols import ViewerView
from tests.gui.controller_fakes import FakeView, Harness
from tests.gui.gui_helpers import FakeEngine, write_corrupt, write_png


@pytest.fixture
def two_images(tmp_path):
    return [write_png(tmp_path / "a.png", 60, size=(100, 120)),
            write_png(tmp_path / "b.png", 200, size=(100, 120))]


def _opened(paths, engine=None) -> Harness:
    h = Harness(engine)
    h.ready()
    h.c.open_paths(paths)
    h.read_all()
    return h


def test_the_controller_imports_no_qt():
    code = ("import sys, rcdnet_desktop.gui.window.viewer_controller, tests.gui.controller_fakes; "
            "sys.exit(1 if any(m.startswith(('PySide6', 'shiboken6')) for m in sys.modules) "
            "else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_fake_view_is_a_whole_viewer_view():
    from rcdnet_desktop.gui.session.engine import protocol_members

    methods, _ = protocol_members(ViewerView)
    assert methods and all(callable(getattr(FakeView, m, None)) for m in methods)


def test_open_shows_the_first_and_asks_for_its_analysis(two_images):
    h = _opened(two_images)
    a, b = h.c.documents()
    assert h.c.current is a and h.view.selected == a.doc_id
    assert h.view.panel == ("waiting", "Classifying...") and h.list_matches_panel()
    request = h.analysis.requests[-1]
    assert request.key == a.key("fast") and request.explain
    # b was read while the engine was there: labelled in the background.
    assert [k.doc_id for k, _ in h.analysis.background] == [b.doc_id]

    pred, maps = h.run_last()
    assert h.view.panel == ("prediction", pred) and h.list_matches_panel()
    assert h.view.maps == (a.key("fast"), maps)
    assert h.c.action_state().has_maps
    assert pred.p_malignant == pytest.approx(a.record.pixels.mean() / 255, abs=1e-6)


def test_opened_before_the_model_loads_waits_then_classifies(two_images):
    h = Harness()
    h.c.open_paths(two_images)
    h.read_all()
    assert h.view.panel == ("waiting", "Loading model...") and h.list_matches_panel()
    h.ready()
    assert h.view.methods == (list(h.engine.methods.values()),
                              "Grad-CAM, contrastive (closed form)")
    assert h.view.engine_info.model_version == "9.9.9-test"
    assert h.analysis.requests[-1].key == h.c.current.key("fast")
    assert [k.doc_id for k, _ in h.analysis.background] == [h.c.documents()[1].doc_id]


def test_a_stale_result_is_kept_and_shown_when_coming_back(two_images):
    h = _opened(two_images)
    a, b = h.c.documents()
    for_a = h.analysis.requests[-1]
    h.c.step(1)  # the user moves on before a's result is back
    assert h.c.current is b
    for_b = h.analysis.requests[-1]
    assert for_b.key.doc_id == b.doc_id

    pred_a, maps_a = h.run(for_a)  # a's result arrives late
    assert h.view.panel == ("waiting", "Classifying...")  # not shown over b
    assert h.view.maps is None
    assert h.view.entries[a.doc_id] == ("prediction", pred_a)  # a's own list entry
    assert h.c.maps_cache.get(a.key("fast")) is maps_a

    h.run(for_b)
    n = len(h.analysis.requests)
    h.c.step(-1)  # back to a: shown at once, not computed again
    assert h.view.panel == ("prediction", pred_a) and h.view.maps == (a.key("fast"), maps_a)
    assert len(h.analysis.requests) == n and h.list_matches_panel()


def test_list_and_panel_show_the_same_result_when_a_box_is_cleared(two_images):
    """The defect: after clearing a box, the list kept the boxed result (0.93) while the panel
    showed the whole image's (0.87)."""
    h = _opened(two_images[:1])
    unboxed_request = h.analysis.requests[-1]  # not run yet
    box = Box(10, 10, 40, 30)
    h.c.set_box(box)
    assert h.view.box == box and h.view.maps is None
    boxed, _ = h.run_last()
    assert boxed.box == box and boxed.box_source == "user"
    assert h.view.panel == ("prediction", boxed) and h.list_matches_panel()

    h.c.clear_box()
    assert h.view.box is None
    assert h.view.panel == ("waiting", "Classifying...")
    assert h.list_matches_panel()  # not the boxed result any more
    whole, _ = h.run(unboxed_request)  # the first request's result, still for this key
    assert whole.box is None and whole.p_malignant != pytest.approx(boxed.p_malignant)
    assert h.view.panel == ("prediction", whole) and h.list_matches_panel()

    h.c.set_box(box)  # known: shown at once, in both places
    assert h.view.panel == ("prediction", boxed) and h.list_matches_panel()


def test_leaving_an_image_unclassified_resets_its_entry(two_images):
    h = _opened(two_images)
    a, _ = h.c.documents()
    assert h.view.entries[a.doc_id] == ("waiting", "Classifying...")
    h.c.step(1)
    assert h.view.entries[a.doc_id] == ("none", "")  # not yet classified, not "Classifying"


def test_automatic_box_is_shown_and_a_drawn_box_hides_it(tmp_path):
    lesion = Box(40, 30, 30, 20)
    h = _opened([write_png(tmp_path / "l.png", 150, size=(100, 120))], FakeEngine(lesion=lesion))
    pred, maps = h.run_last()
    assert pred.box == lesion and pred.box_source == "auto"
    assert h.view.auto_box == lesion and maps.prediction.box == lesion
    h.c.set_box(Box(5, 5, 20, 20))
    h.run_last()
    assert h.view.auto_box is None and h.view.box == Box(5, 5, 20, 20)


def test_method_choice_asks_again_with_that_method(two_images):
    h = _opened(two_images[:1])
    h.run_last()
    h.c.set_method("Grad-CAM")
    assert h.c.method == h.c.preferred_method == "gradcam"
    assert h.view.maps is None
    assert h.analysis.requests[-1].key.method == "gradcam"
    _, maps = h.run_last()
    assert h.view.maps[0].method == "gradcam" and maps.method == "gradcam"


def test_saved_method_is_used_once_the_engine_lists_it(two_images):
    h = Harness(preferred_method="gradcam")
    h.c.open_paths(two_images[:1])
    h.read_all()
    h.ready()
    assert h.c.method == "gradcam" and h.view.methods[1] == "Grad-CAM"
    assert h.analysis.requests[-1].key.method == "gradcam"


def test_failure_is_said_only_for_what_is_on_display(two_images):
    from rcdnet_desktop.gui.session.messages import AnalysisFailed

    h = _opened(two_images)
    for_a = h.analysis.requests[-1]
    h.c.step(1)
    h.c.on_analysis_failed(AnalysisFailed(for_a, "out of memory"))
    assert h.view.notices == [] and h.view.panel == ("waiting", "Classifying...")
    h.c.on_analysis_failed(AnalysisFailed(h.analysis.requests[-1], "out of memory"))
    assert h.view.panel == ("waiting", "Could not classify") and h.list_matches_panel()
    assert h.view.notices == ["Could not classify b.png: out of memory"]


def test_engine_failure_says_no_model(two_images):
    h = Harness()
    h.c.open_paths(two_images[:1])
    h.read_all()
    h.analysis.engine_error = "weights file is corrupt"
    h.c.on_engine_failed("weights file is corrupt")
    assert h.view.panel == ("waiting", "No model") and h.list_matches_panel()
    assert "corrupt" in h.view.maps_status


def test_unreadable_file_is_listed_with_its_reason(tmp_path):
    h = _opened([write_corrupt(tmp_path / "bad.png"), write_png(tmp_path / "ok.png", 90)])
    bad, ok = h.c.documents()
    assert h.view.entries[bad.doc_id][0] == "failed"
    assert any("bad.png" in n for n in h.view.notices)
    assert h.view.panel == ("waiting", "Unreadable file")
    assert not h.c.action_state().has_image
    h.c.step(1)
    assert h.c.current is ok and h.analysis.requests[-1].key.doc_id == ok.doc_id


def test_results_of_a_closed_image_are_dropped(two_images):
    h = _opened(two_images)
    a, b = h.c.documents()
    for_a = h.analysis.requests[-1]
    h.c.close_current()
    assert h.c.current is b and a.doc_id not in h.view.entries
    h.run(for_a)
    assert h.c.maps_cache.get(for_a.key) is None
    h.c.close_current()
    assert h.c.current is None and h.view.called("show_empty")
    assert h.c.action_state() == h.c.action_state().__class__(has_localiser=False)


def test_playback_asks_for_nothing_until_paused(tmp_path):
    from pydicom.data import get_testdata_file

    h = _opened([get_testdata_file("examples_ybr_color.dcm")])
    h.run_last()
    n = len(h.analysis.requests)
    h.c.set_playing(True)
    for frame in (1, 2, 3):
        h.c.set_frame(frame)
    assert len(h.analysis.requests) == n
    assert h.view.panel == ("waiting", "Playing: pause to classify")
    h.c.set_playing(False)
    assert h.analysis.requests[-1].key.frame == 3
    assert "frame 4/30" in h.view.called("show_image_info")[-1][0]


def test_boxes_for_the_batch_review_and_action_state(two_images):
    h = _opened(two_images)
    assert h.c.action_state().document_count == 2 and not h.c.action_state().has_box
    h.c.set_box(Box(1, 2, 30, 40))
    assert h.c.action_state().has_box
    assert h.c.batch_boxes() == {two_images[0]: Box(1, 2, 30, 40)}
