"""The main window with a fake engine: open, flip, lesion box, banners, cine, settings."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from rcdnet_desktop.core.model.engine import pad_roi
from rcdnet_desktop.core.types import Box
from tests.gui.gui_helpers import (
    ROI_MARGIN,
    FakeEngine,
    maps_on_screen,
    wait_maps,
    write_corrupt,
    write_png,
)


def test_open_image_shows_prediction_and_both_maps(make_window, tmp_path, qtbot):
    path = write_png(tmp_path / "one.png", 180)
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([path])
    key = wait_maps(qtbot, w)

    doc = w.controller.current
    assert doc.path == path and key.roi is None
    pred = w.prediction.prediction()
    assert pred.p_malignant == pytest.approx(doc.record.pixels.mean() / 255, abs=1e-6)
    assert w.prediction.label.text() == "Suspicious"  # the decision at the cut-off
    assert "0.6" in w.prediction.probability.text() or "0.7" in w.prediction.probability.text()
    assert w.prediction.bar.value() == round(1000 * pred.p_malignant)
    assert "whole image" in w.prediction.mode_text()
    assert "9.9.9-test" in w.prediction.version.text()
    assert "not a diagnosis" in w.prediction.note.text().lower()
    maps = w.heatmaps.maps()
    assert maps.benign.shape == maps.malignant.shape == doc.record.pixels.shape[:2]
    assert maps_on_screen(w.heatmaps)
    for view in w.heatmaps.views:
        assert view.picture() is not None and not view.picture().isNull()
    for label in w.heatmaps.descriptions:
        assert label.text().startswith("Strongest around the")
    # Each map's title gives its class's probability (the maps share one scale).
    assert [t.text() for t in w.heatmaps.titles] == [
        f"<b>Evidence for benign</b> (P\N{NO-BREAK SPACE}=\N{NO-BREAK SPACE}{pred.p_benign:.2f})",
        f"<b>Evidence for malignant</b> (P\N{NO-BREAK SPACE}=\N{NO-BREAK SPACE}"
        f"{pred.p_malignant:.2f})"]
    assert "malignant" in w.thumbs.item_text(doc.doc_id)
    assert "CPU" in w.device_label.text()
    assert "160 x 120 px" in w.image_label.text()
    assert engine.max_active == 1


def test_flipping_faster_than_inference_shows_only_the_last(make_window, tmp_path, qtbot):
    n = 24
    paths = [write_png(tmp_path / f"img{i:02d}.png", 20 + 9 * i) for i in range(n)]
    # Heat maps take far longer than a key press, even on a loaded machine: flipping through
    # all 24 images fits inside two or three computations if requests are coalesced.
    engine = FakeEngine(delay=1.0, predict_delay=0.01)
    w = make_window(engine)
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    w.open_paths(paths)
    qtbot.waitUntil(lambda: all(d.record is not None for d in w.controller.documents()),
                    timeout=10000)
    shown = []
    w.heatmaps_shown.connect(shown.append)
    w.thumbs.setFocus()
    for _ in range(n - 1):
        qtbot.keyClick(w, Qt.Key.Key_PageDown)
        qtbot.wait(5)
    last = w.controller.documents()[-1]
    assert w.controller.current is last
    key = wait_maps(qtbot, w)
    assert key.doc_id == last.doc_id
    qtbot.wait(400)  # anything still in flight must not replace what is shown
    assert w.controller.current is last
    assert w.heatmaps.maps().prediction.p_malignant == pytest.approx(
        last.record.pixels.mean() / 255, abs=1e-6)
    assert w.prediction.prediction().p_malignant == pytest.approx(
        last.record.pixels.mean() / 255, abs=1e-6)
    explains = engine.count("explain")
    assert explains <= 4, f"{explains} heat-map computations for {n} images"
    assert all(k.doc_id == last.doc_id for k in shown[1:]), "a stale result was shown"
    assert engine.max_active == 1


def test_keyboard_next_previous(make_window, tmp_path, qtbot):
    paths = [write_png(tmp_path / f"k{i}.png", 50 + 50 * i) for i in range(3)]
    w = make_window()
    w.open_paths(paths)
    docs = w.controller.documents()
    assert w.controller.current is docs[0]
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.controller.current is docs[1]
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.controller.current is docs[2]
    qtbot.keyClick(w, Qt.Key.Key_PageDown)  # stays on the last
    assert w.controller.current is docs[2]
    qtbot.keyClick(w, Qt.Key.Key_Left)
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert w.controller.current is docs[0]
    wait_maps(qtbot, w)


def test_lesion_box_changes_mode_and_is_kept_per_image(make_window, tmp_path, qtbot):
    a = write_png(tmp_path / "a.png", 100, size=(200, 240))
    b = write_png(tmp_path / "b.png", 150)
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([a, b])
    wait_maps(qtbot, w)
    assert "whole image" in w.prediction.mode_text()

    # Draw the box with the mouse, as a user does, in box mode.
    qtbot.keyClick(w, Qt.Key.Key_B)
    assert w.view.box_mode()
    view = w.view
    p0 = view.mapFromScene(QPointF(60, 50))
    p1 = view.mapFromScene(QPointF(160, 150))
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=p0)
    qtbot.mouseMove(view.viewport(), pos=p1)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=p1)
    box = w.controller.current.box()
    assert box is not None and abs(box.x - 60) <= 2 and abs(box.w - 100) <= 3
    assert not view.box_mode()  # one box per drag, then back to panning
    key = wait_maps(qtbot, w)
    assert key.roi == box
    assert "lesion box" in w.prediction.mode_text()
    assert engine.calls[-1][3] == [box]  # the engine was given the box
    assert view.box_shown() == box
    pred = w.prediction.prediction()
    assert pred.box == box and pred.box_source == "user"
    assert "drawn by you" in w.prediction.mode_text()
    # The model saw the box padded by the card's margin: nothing outside that region.
    seen = pred.roi
    assert seen == pad_roi(box, w.controller.current.record.pixels.shape[:2], ROI_MARGIN)
    assert seen.x < box.x and seen.w > box.w
    assert np.count_nonzero(w.heatmaps.maps().benign[:, :seen.x]) == 0
    assert np.count_nonzero(w.heatmaps.maps().benign[:, seen.x:box.x]) > 0

    # Kept per image: away and back.
    qtbot.keyClick(w, Qt.Key.Key_Right)
    wait_maps(qtbot, w)
    assert w.controller.current.box() is None and view.box_shown() is None
    assert "whole image" in w.prediction.mode_text()
    qtbot.keyClick(w, Qt.Key.Key_Left)
    assert w.controller.current.box() == box and view.box_shown() == box
    assert "lesion box" in w.prediction.mode_text()  # known result, shown at once

    w.controller.clear_box()
    wait_maps(qtbot, w)
    assert "whole image" in w.prediction.mode_text()
    assert view.box_shown() is None


def test_untrained_banner(make_window, tmp_path, qtbot):
    path = write_png(tmp_path / "u.png", 90)
    w = make_window(FakeEngine(untrained=True))
    w.open_paths([path])
    wait_maps(qtbot, w)
    assert w.prediction.untrained_shown()
    assert "UNTRAINED" in w.prediction.untrained_banner.text()
    assert w.prediction.label.text().startswith("UNTRAINED")
    assert "UNTRAINED" in w.model_label.text()
    assert "UNTRAINED" in w.thumbs.item_text(w.controller.current.doc_id)


def test_trained_model_has_no_banner(make_window, tmp_path, qtbot):
    w = make_window(FakeEngine(untrained=False))
    w.open_paths([write_png(tmp_path / "t.png", 90)])
    wait_maps(qtbot, w)
    assert not w.prediction.untrained_shown()


def test_unreadable_file_listed_with_reason_and_app_keeps_working(make_window, tmp_path, qtbot):
    bad = write_corrupt(tmp_path / "broken.png")
    good = write_png(tmp_path / "fine.png", 120)
    w = make_window()
    docs = w.open_paths([bad, good])
    qtbot.waitUntil(lambda: docs[0].error != "", timeout=5000)
    assert "unreadable" in w.thumbs.item_text(docs[0].doc_id)
    assert w.notice.isVisible()
    assert any("broken.png" in line for line in w.notice.lines())
    assert "Cannot read broken.png" in w.view.message()
    assert w.prediction.label.text() == "Unreadable file"
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.controller.current is docs[1]
    wait_maps(qtbot, w)
    w.notice.dismiss()
    assert not w.notice.isVisible()


def test_window_shows_before_model_loads(make_window, tmp_path, qtbot):
    release = threading.Event()
    engine = FakeEngine()

    def slow_factory(_device):
        release.wait(10)
        return engine

    w = make_window(factory=slow_factory)
    w.open_paths([write_png(tmp_path / "s.png", 100)])
    qtbot.waitUntil(lambda: w.controller.current.record is not None, timeout=5000)
    assert w.isVisible()
    assert w.prediction.label.text() == "Loading model..."
    assert "Loading model" in w.device_label.text()
    release.set()
    wait_maps(qtbot, w)


def test_gui_modules_do_not_import_torch():
    code = ("import sys; import rcdnet_desktop.gui.app, rcdnet_desktop.gui.window.main_window, "
            "rcdnet_desktop.gui.batch.batch_dialog, rcdnet_desktop.gui.dialogs.export_dialog; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_engine_load_failure_is_shown(make_window, tmp_path, qtbot):
    def broken(_device):
        raise RuntimeError("weights file is corrupt")

    w = make_window(factory=broken)
    w.open_paths([write_png(tmp_path / "x.png", 100)])
    qtbot.waitUntil(lambda: w.controller.engine_error != "", timeout=5000)
    qtbot.waitUntil(lambda: "corrupt" in " ".join(w.notice.lines()), timeout=5000)
    assert w.prediction.prediction() is None


def test_device_choice_recreates_engine(make_window, tmp_path, qtbot, gui_settings):
    asked = []
    engines = []

    def factory(device):
        asked.append(device)
        engines.append(FakeEngine())
        return engines[-1]

    w = make_window(factory=factory)
    w.open_paths([write_png(tmp_path / "d.png", 100)])
    wait_maps(qtbot, w)
    assert asked == ["auto"]
    w.set_device("cpu")
    qtbot.waitUntil(lambda: len(asked) == 2 and w.controller.engine is not None, timeout=5000)
    assert asked[-1] == "cpu"
    assert gui_settings.device == "cpu"
    assert w.act.device["cpu"].isChecked()
    qtbot.waitUntil(lambda: engines[-1].count("explain") >= 1 or
                    w.controller.current_maps() is not None, timeout=5000)


def test_cam_method_choice(make_window, tmp_path, qtbot, gui_settings):
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([write_png(tmp_path / "m.png", 100)])
    wait_maps(qtbot, w)
    combo = w.heatmaps.method
    assert [combo.itemText(i) for i in range(combo.count())] == list(engine.methods.values())
    combo.setCurrentText("Grad-CAM")
    key = wait_maps(qtbot, w)
    assert key.method == "gradcam"
    assert engine.calls[-1][0] == "explain" and engine.calls[-1][4] == "gradcam"
    assert gui_settings.cam_method == "gradcam"


def test_cine_frames(make_window, qtbot):
    from pydicom.data import get_testdata_file

    path = get_testdata_file("examples_ybr_color.dcm")
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([path])
    wait_maps(qtbot, w)
    assert w.cine.isVisible() and w.cine.slider.maximum() == 29
    assert "frame 1/30" in w.image_label.text()
    assert "0.510 mm/pixel" in w.image_label.text()  # SequenceOfUltrasoundRegions
    w.cine.set_frame(5)
    key = wait_maps(qtbot, w)
    assert key.frame == 5
    # The viewer's own call (the clip's frames are also swept in chunks for the timeline).
    assert [c for c in engine.calls if c[0] == "explain"][-1][2] == [5]
    assert "frame 6/30" in w.image_label.text()
    # A box on frame 5 stays on frame 5.
    w.controller.set_box(Box(100, 60, 80, 60))
    wait_maps(qtbot, w)
    w.cine.set_frame(6)
    assert w.controller.current.box() is None
    w.cine.set_frame(5)
    assert w.controller.current.box() == Box(100, 60, 80, 60)
    # Playback advances frames without queueing heat maps; pausing computes them.
    before = engine.count("explain")
    w.cine.set_playing(True)
    qtbot.waitUntil(lambda: w.cine.frame() not in (5,), timeout=3000)
    w.cine.set_playing(False)
    wait_maps(qtbot, w)
    assert engine.count("explain") <= before + 2


def test_zoom_and_window_level(make_window, tmp_path, qtbot):
    w = make_window()
    w.open_paths([write_png(tmp_path / "z.png", 100, size=(300, 400))])
    wait_maps(qtbot, w)
    z0 = w.view.zoom()
    qtbot.keyClick(w, Qt.Key.Key_Plus)
    assert w.view.zoom() == pytest.approx(z0 * 1.25, rel=1e-3)
    qtbot.keyClick(w, Qt.Key.Key_Minus)
    qtbot.keyClick(w, Qt.Key.Key_Minus)
    assert w.view.zoom() < z0
    qtbot.keyClick(w, Qt.Key.Key_F)
    assert w.view.zoom() == pytest.approx(z0, rel=1e-3)
    original = w.view.pixels().copy()
    w.view.set_window_level(100, 100)
    assert w.view.window_level() == (100, 100)
    assert np.array_equal(w.view.pixels(), original)  # display only
    qtbot.keyClick(w, Qt.Key.Key_R)
    assert w.view.window_level() == (255.0, 127.5)
    qtbot.keyClick(w, Qt.Key.Key_H)
    assert w.heatmaps.plain.isChecked() and not maps_on_screen(w.heatmaps)
    qtbot.keyClick(w, Qt.Key.Key_H)
    assert maps_on_screen(w.heatmaps)


def test_display_choices_are_saved_as_they_are_made(make_window, tmp_path, qtbot, gui_settings):
    """Opacity, colour map and heat-map method reach the settings when the user picks them,
    with the window still open."""
    w = make_window()
    w.open_paths([write_png(tmp_path / "d.png", 100)])
    wait_maps(qtbot, w)
    w.heatmaps.opacity.setValue(35)  # the slider, as dragged
    assert gui_settings.opacity == pytest.approx(0.35)
    w.heatmaps.colormap.setCurrentText("viridis")
    assert gui_settings.colormap == "viridis"
    w.heatmaps.method.setCurrentText("Grad-CAM")
    assert gui_settings.cam_method == "gradcam"


def test_settings_are_kept(make_window, tmp_path, qtbot, gui_settings):
    w = make_window()
    w.open_paths([write_png(tmp_path / "s.png", 100)])
    wait_maps(qtbot, w)
    w.heatmaps.set_display(alpha=0.7, colormap="viridis")
    w.close()
    assert gui_settings.opacity == pytest.approx(0.7)
    assert gui_settings.colormap == "viridis"
    assert gui_settings.last_folder == str(tmp_path)
    assert gui_settings.recent_files()[0].endswith("s.png")
    w2 = make_window()
    assert w2.heatmaps.alpha() == pytest.approx(0.7)
    assert w2.heatmaps.colormap_name() == "viridis"
    assert w2.act.recent_menu.actions()[0].text().endswith("s.png")


def test_folder_open_and_thumbnail_predictions(make_window, image_folder, qtbot):
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([image_folder])
    assert len(w.controller.docs) == 5  # recursive, the corrupt file included
    wait_maps(qtbot, w)
    good = [d for d in w.controller.documents() if d.path.name != "e_corrupt.png"]
    qtbot.waitUntil(lambda: all("P(malignant)" in w.thumbs.item_text(d.doc_id) for d in good),
                    timeout=5000)
    assert engine.count("explain") == 1  # the others were only classified


def test_dialogs(make_window, tmp_path, qtbot):
    from rcdnet_desktop.gui.dialogs.help_dialogs import (
        ModelCardDialog,
        ShortcutsDialog,
        shortcuts_html,
    )

    w = make_window()
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    card = ModelCardDialog(w.controller.engine.card, w)
    # The page for clinicians first; the technical sections folded under a button.
    assert "What it is for" in card.summary.toPlainText()
    assert card.browser.isHidden()
    qtbot.mouseClick(card.details, Qt.MouseButton.LeftButton)
    assert not card.browser.isHidden() and card.summary.isHidden()
    text = card.browser.toPlainText()
    assert "Testing the viewer only." in text
    assert "95% CI 0.750-0.860" in text
    assert "Decision support, not a diagnosis" in text
    helptext = ShortcutsDialog(w.shortcut_list(), w).browser.toPlainText()
    for words in ("Next image", "Previous image", "Zoom in", "Zoom out", "Fit to window",
                  "Heat map over the image", "Show plain image in the evidence panels",
                  "Export annotated PNG", "Draw lesion box"):
        assert words in helptext
    assert "PgDown" in shortcuts_html(w.shortcut_list())


def test_drag_and_drop_opens_files(make_window, tmp_path, qtbot):
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    paths = [write_png(tmp_path / f"drop{i}.png", 60 + 60 * i) for i in range(2)]
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    w.dropEvent(event)
    assert [d.path for d in w.controller.documents()] == paths
    wait_maps(qtbot, w)


def test_model_card_shows_operating_point_and_localiser():
    from rcdnet_desktop.gui.dialogs.help_dialogs import model_card_html

    html = model_card_html({"version": "2.0.0", "untrained": False,
                            "operating_point": {"default_mode": "auto",
                                                "suspicious_threshold": 0.123},
                            "localiser": {"file": "localiser_weights.pt",
                                          "min_confidence": 0.85}})
    assert "Operating point" in html and "0.123" in html
    # The decision rule in words, at the card's cut-off, as every view applies it.
    assert "suspicious when P(malignant) is at or above the cut-off 0.123" in html
    assert "green only in the BI-RADS 3 range" in html and "counted from 1" in html
    assert "Lesion localiser" in html and "localiser_weights.pt" in html
    assert "Lesion localiser" not in model_card_html({"version": "1.0.0", "untrained": False})
