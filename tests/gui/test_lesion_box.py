"""The lesion box in the viewer: found automatically (dashed, tagged, with an outline on demand),
drawn by the user (solid, replaces the automatic one), none found (said in plain words)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QGraphicsPolygonItem, QGraphicsRectItem

from rcdnet_desktop.core.model.engine import NO_LESION_WARNING, pad_roi
from rcdnet_desktop.core.result import no_lesion_found
from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui import wording
from rcdnet_desktop.gui.image.marks import BoxTag
from tests.gui.gui_helpers import NOTHING, ROI_MARGIN, FakeEngine, wait_maps, write_png

# write_png(..., 200, size=(200, 240)): grey ~200 around a darker (100) centre square at
# columns 80-160, rows 66-133. The "lesion" lies in the square, the user's box in the corner.
SIZE = (200, 240)
LESION = Box(90, 76, 60, 48)
USER_CORNER = (QPointF(10, 10), QPointF(60, 50))


def _shown(view, kind):
    return [i for i in view.scene().items() if isinstance(i, kind) and i.isVisible()]


def _rect_items(view, style):
    return [i for i in _shown(view, QGraphicsRectItem) if i.pen().style() == style]


def _tags(view):
    return [i for i in _shown(view, BoxTag)]


def _draw_box_with_mouse(qtbot, w, start: QPointF, end: QPointF) -> None:
    qtbot.keyClick(w, Qt.Key.Key_B)
    assert w.view.box_mode()
    p0, p1 = w.view.mapFromScene(start), w.view.mapFromScene(end)
    qtbot.mousePress(w.view.viewport(), Qt.MouseButton.LeftButton, pos=p0)
    qtbot.mouseMove(w.view.viewport(), pos=p1)
    qtbot.mouseRelease(w.view.viewport(), Qt.MouseButton.LeftButton, pos=p1)


@pytest.fixture
def auto_window(make_window, tmp_path, qtbot):
    """A window whose (fake) localiser finds LESION, on one image, result shown."""
    engine = FakeEngine(lesion=LESION)
    w = make_window(engine)
    w.open_paths([write_png(tmp_path / "lesion.png", 200, size=SIZE)])
    wait_maps(qtbot, w)
    return w, engine


def test_automatic_box_is_dashed_tagged_and_named_in_the_panel(auto_window):
    w, engine = auto_window
    pred = w.prediction.prediction()
    assert pred.box_source == "auto" and pred.box == LESION
    assert engine.calls[-1][3] == [None]  # no box asked for: the localiser chose it
    assert pred.roi == pad_roi(LESION, SIZE, ROI_MARGIN)  # what the model saw

    dashed = _rect_items(w.view, Qt.PenStyle.DashLine)
    assert [d.rect() for d in dashed] == [QRectF(LESION.x, LESION.y, LESION.w, LESION.h)]
    assert _rect_items(w.view, Qt.PenStyle.SolidLine) == []  # no user box
    tags = _tags(w.view)
    assert [t.text() for t in tags] == ["found automatically"]
    assert tags[0].pos() == QPointF(LESION.x, LESION.y)  # on the box's corner
    assert w.view.auto_box_shown() == LESION and w.view.box_shown() is None

    # The band is the headline; class, probability and where the box came from beside it.
    assert pred.band.name == "moderate"
    assert w.prediction.headline_text() == "Moderate (10-50%), below the cut-off"
    assert not pred.suspicious and "suspicious" not in w.prediction.headline_text()
    assert w.prediction.label.text() == "Below the cut-off"
    assert f"{pred.p_malignant:.2f}" in w.prediction.probability.text()
    assert "lesion box found automatically" in w.prediction.mode_text()
    assert "60 x 48 px at (90, 76)" in w.prediction.mode_text()
    assert "confidence 0.93" in w.prediction.mode_text()
    assert "BI-RADS 4B range, not a BI-RADS assessment" in w.prediction.band_note.text()
    assert not w.prediction.no_lesion_shown()
    assert "moderate (10-50%)" in w.thumbs.item_text(w.controller.current.doc_id)
    # The evidence maps mark the same box, dashed as well.
    assert w.heatmaps.box_shown() == LESION and w.heatmaps.box_dashed()


def test_outline_action_and_shortcut(auto_window, qtbot, make_window, gui_settings):
    w, _ = auto_window
    assert w.act.outline.isEnabled() and not w.act.outline.isChecked()
    assert _shown(w.view, QGraphicsPolygonItem) == []
    assert w.act.outline in w.menuBar().actions()[1].menu().actions()  # View menu

    w.act.outline.trigger()
    assert w.act.outline.isChecked()
    outlines = _shown(w.view, QGraphicsPolygonItem)
    assert len(outlines) == 1
    polygon = outlines[0].polygon()
    finding = w.prediction.prediction().finding
    assert polygon.count() == len(finding.outline)
    assert polygon[0] == QPointF(*map(float, finding.outline[0]))
    bounds = polygon.boundingRect()
    assert bounds.left() == pytest.approx(LESION.x, abs=0.5)
    assert bounds.right() == pytest.approx(LESION.x + LESION.w, abs=0.5)
    assert outlines[0].pen().isCosmetic() and outlines[0].pen().widthF() <= 1.5  # thin
    assert gui_settings.show_outline

    qtbot.keyClick(w, Qt.Key.Key_O)
    assert not w.act.outline.isChecked()
    assert _shown(w.view, QGraphicsPolygonItem) == []
    assert not gui_settings.show_outline
    qtbot.keyClick(w, Qt.Key.Key_O)
    assert len(_shown(w.view, QGraphicsPolygonItem)) == 1
    w.close()

    # Kept in the settings like the other view options.
    w2 = make_window(FakeEngine(lesion=LESION))
    assert w2.act.outline.isChecked() and w2.view.outline_visible()


def test_user_box_replaces_automatic_and_clearing_brings_it_back(auto_window, qtbot):
    w, engine = auto_window
    auto = w.prediction.prediction()
    doc = w.controller.current
    w.act.outline.trigger()
    assert w.view.outline_shown()

    _draw_box_with_mouse(qtbot, w, *USER_CORNER)
    box = doc.box()
    assert box is not None and abs(box.x - 10) <= 2 and abs(box.w - 50) <= 3
    # At once, before the result: the solid box replaces the dashed one and its outline.
    assert [i.rect() for i in _rect_items(w.view, Qt.PenStyle.SolidLine)] == \
        [QRectF(box.x, box.y, box.w, box.h)]
    assert _rect_items(w.view, Qt.PenStyle.DashLine) == []
    assert _tags(w.view) == [] and not w.view.outline_shown()

    key = wait_maps(qtbot, w)
    assert key.roi == box
    assert engine.calls[-1][3] == [box]  # the request went with the user's box
    boxed = w.prediction.prediction()
    assert boxed.box_source == "user" and boxed.box == box
    assert boxed.roi == pad_roi(box, SIZE, ROI_MARGIN)
    assert "drawn by you" in w.prediction.mode_text()
    assert "found automatically" not in w.prediction.mode_text()
    assert w.prediction.headline_text() == "High (50-95%), suspicious"
    assert "high (50-95%)" in w.thumbs.item_text(doc.doc_id)
    assert _rect_items(w.view, Qt.PenStyle.DashLine) == [] and _tags(w.view) == []
    assert not w.view.outline_shown()
    assert w.heatmaps.box_shown() == box and not w.heatmaps.box_dashed()

    # Clearing the box: the automatic result comes back (known, so at once), everywhere.
    explains = engine.count("explain")
    w.act.clear_box.trigger()
    assert doc.box() is None
    assert w.prediction.prediction() is auto
    assert "lesion box found automatically" in w.prediction.mode_text()
    assert w.prediction.headline_text() == "Moderate (10-50%), below the cut-off"
    item = w.thumbs.item_text(doc.doc_id)
    assert "moderate (10-50%)" in item and "high" not in item
    assert [d.rect() for d in _rect_items(w.view, Qt.PenStyle.DashLine)] == \
        [QRectF(LESION.x, LESION.y, LESION.w, LESION.h)]
    assert _rect_items(w.view, Qt.PenStyle.SolidLine) == []
    assert [t.text() for t in _tags(w.view)] == ["found automatically"]
    assert w.view.outline_shown()
    key = wait_maps(qtbot, w)
    assert key.roi is None and w.heatmaps.maps().prediction is auto
    assert engine.count("explain") == explains  # nothing recomputed


def test_flipping_back_shows_each_images_own_box(make_window, tmp_path, qtbot):
    lesions = {"one.png": LESION, "two.png": Box(30, 120, 40, 40)}
    engine = FakeEngine(lesion=lambda px: lesions["one.png"] if px.mean() > 150
                        else lesions["two.png"])
    w = make_window(engine)
    w.open_paths([write_png(tmp_path / "one.png", 200, size=SIZE),
                  write_png(tmp_path / "two.png", 120, size=SIZE)])
    wait_maps(qtbot, w)
    assert w.view.auto_box_shown() == lesions["one.png"]
    qtbot.keyClick(w, Qt.Key.Key_Right)
    # Never the other image's box (its own shows at once if already known, else on arrival).
    assert w.view.auto_box_shown() in (None, lesions["two.png"])
    wait_maps(qtbot, w)
    assert w.view.auto_box_shown() == lesions["two.png"]
    qtbot.keyClick(w, Qt.Key.Key_Left)
    assert w.view.auto_box_shown() == lesions["one.png"]  # known: shown at once


def test_tag_goes_below_a_box_at_the_top_edge(make_window, tmp_path, qtbot):
    top = Box(90, 0, 60, 40)
    w = make_window(FakeEngine(lesion=top))
    w.open_paths([write_png(tmp_path / "top.png", 200, size=SIZE)])
    wait_maps(qtbot, w)
    tag = _tags(w.view)[0]
    assert tag.pos() == QPointF(top.x, top.y + top.h)
    assert tag.boundingRect().top() > 0  # drawn under the box's bottom edge


def test_no_lesion_found_is_said_in_plain_words(make_window, tmp_path, qtbot):
    engine = FakeEngine(lesion=NOTHING)
    w = make_window(engine)
    w.open_paths([write_png(tmp_path / "none.png", 120, size=SIZE)])
    wait_maps(qtbot, w)
    pred = w.prediction.prediction()
    assert pred.box_source == "none" and pred.roi is None
    assert NO_LESION_WARNING in pred.warnings
    assert w.prediction.no_lesion_shown()
    # The headline says so and asks for a box; the whole image's result is marked less
    # reliable and never coloured as reassuring.
    assert w.prediction.headline_text() == (
        "No lesion found: draw a box around the lesion\n"
        "Whole image, less reliable: moderate (10-50%), below the cut-off")
    assert "less reliable" in w.prediction.caveat_text()
    assert w.prediction.tone(pred) == "neutral"
    # Said once, in the headline: not repeated among the warnings.
    assert w.prediction.warnings.isHidden()
    assert "whole image" in w.prediction.mode_text()
    assert _rect_items(w.view, Qt.PenStyle.DashLine) == [] and _tags(w.view) == []
    w.act.outline.trigger()
    assert not w.view.outline_shown()
    assert "No automatic lesion outline" in w.statusBar().currentMessage()

    # Drawing a box then classifies the box; the notice goes.
    _draw_box_with_mouse(qtbot, w, QPointF(70, 60), QPointF(170, 140))
    wait_maps(qtbot, w)
    assert w.prediction.prediction().box_source == "user"
    assert not w.prediction.no_lesion_shown() and w.prediction.caveat_text() == ""


def test_without_a_localiser_the_whole_image_is_classified_quietly(make_window, tmp_path,
                                                                   qtbot):
    w = make_window(FakeEngine())  # like the bundled model today: no localiser
    w.open_paths([write_png(tmp_path / "plain.png", 120, size=SIZE)])
    wait_maps(qtbot, w)
    pred = w.prediction.prediction()
    assert pred.box_source == "none"
    assert w.prediction.mode_text() == "Input: whole image"
    assert not w.act.outline.isEnabled()  # nothing to outline with this model
    assert not w.prediction.no_lesion_shown()
    assert "less reliable" in w.prediction.caveat_text()  # still the whole image
    assert _rect_items(w.view, Qt.PenStyle.DashLine) == [] and _tags(w.view) == []


def test_other_warnings_still_shown(make_window, tmp_path, qtbot):
    class Warned(FakeEngine):
        def prepare(self, *a, **kw):
            prep = super().prepare(*a, **kw)
            prep.warnings = (*prep.warnings, "colour overlay detected")
            return prep

    w = make_window(Warned(lesion=NOTHING))
    w.open_paths([write_png(tmp_path / "warn.png", 120, size=SIZE)])
    wait_maps(qtbot, w)
    assert w.prediction.no_lesion_shown()
    assert not w.prediction.warnings.isHidden()
    assert w.prediction.warnings.text() == "Warning: colour overlay detected"


# --- the words themselves --------------------------------------------------------------------


def _pred(p, **kw):
    from rcdnet_desktop.core.types import Prediction

    return Prediction(p_benign=1 - p, p_malignant=p, device="cpu", model_version="t", **kw)


def test_wording():
    assert wording.input_words(_pred(0.3)) == "whole image"
    user = _pred(0.3, roi=Box(0, 0, 30, 30), box=Box(5, 5, 20, 20))
    assert wording.input_words(user) == "lesion box drawn by you, 20 x 20 px at (5, 5)"
    assert wording.list_text(_pred(0.3, roi=Box(0, 0, 30, 30))) == \
        "moderate (10-50%), below the cut-off\nP(malignant) 0.30"
    assert wording.list_text(_pred(0.3, suspicious=True, threshold=0.16)) == \
        "moderate (10-50%), suspicious, whole image, less reliable\nP(malignant) 0.30"
    assert wording.pending_input_words(None, auto_box=False) == "whole image"
    assert "automatically" in wording.pending_input_words(None, auto_box=True)
    assert "drawn by you" in wording.pending_input_words(Box(1, 2, 3, 4), auto_box=True)
    none = _pred(0.3, warnings=(NO_LESION_WARNING, "other"))
    assert no_lesion_found(none)
    assert wording.other_warnings(none) == ["other"]
    assert not no_lesion_found(_pred(0.3, warnings=("other",)))
