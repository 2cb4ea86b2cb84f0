"""How a result is presented, driven the user's way: the likelihood band as the headline (neutral
around the cut-off), the measured sensitivity, both heat maps on one scale with a colour bar,
intended-use warnings as a banner, a list mark and words in the batch table; the theme and the
heat map over the main image as menu choices kept in the settings; the layout at 1280 x 720."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from rcdnet_desktop.core.checks import COLOUR_OVERLAY
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.result import probability_text
from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui import theme
from rcdnet_desktop.gui.batch.batch_dialog import COL_STATUS
from rcdnet_desktop.gui.settings import Settings
from tests.gui.gui_helpers import FakeEngine, maps_on_screen, wait_idle, wait_maps, write_png

CARD = Path(__file__).resolve().parents[2] / "resources" / "model" / "model_card.json"
OPERATING_POINT = json.loads(CARD.read_text())["operating_point"]
DOPPLER_WORDS = "colour overlay detected (Doppler or elastography?)"


def measured_line() -> str:
    """What the cut-off line says of the shipped card's sensitivities, inside and outside."""
    op = OPERATING_POINT
    inside = op["at_threshold_internal"]["recall"]["value"]
    outside = op["at_threshold_external"]["recall"]["value"]
    return (f"{round(100 * inside)}% of cancers in internal validation and "
            f"{round(100 * outside)}% at another hospital")


class CardEngine(FakeEngine):
    """The fake engine with the shipped card's operating point: flagged from its cut-off."""

    def __init__(self, *a, flagged: bool = False, **kw) -> None:
        super().__init__(*a, **kw)
        self.card.operating_point = OPERATING_POINT
        self.flagged = flagged

    def _prediction(self, prep):
        p = super()._prediction(prep)
        cut = OPERATING_POINT["suspicious_threshold"]
        p = replace(p, suspicious=p.p_malignant >= cut, threshold=cut)
        if self.flagged:
            p = replace(p, checks=(COLOUR_OVERLAY,), warnings=(*p.warnings, DOPPLER_WORDS))
        return p


def open_one(qtbot, w, path):
    """File > Open, the dialog answered with ``path``; wait for its maps."""
    w.ask_open_files = lambda: [str(path)]
    w.act.open.trigger()
    wait_maps(qtbot, w)
    wait_idle(qtbot, w)
    return w.prediction.prediction()


def headline_colour(w) -> str:
    style = w.prediction.headline.styleSheet()
    return style.split("color:")[1].split(";")[0].strip()


WHOLE = " (whole image, less reliable)"


@pytest.mark.parametrize(("grey", "lesion", "headline", "tone"), [
    # P about 0.44, above the card's cut-off: suspicious, so red like every suspicious result.
    (120, None, "Moderate (10-50%), suspicious" + WHOLE, "alert"),
    (12, None, "Low (2-10%), below the cut-off" + WHOLE, "neutral"),  # 4A: a biopsy range
    (230, None, "High (50-95%), suspicious" + WHOLE, "alert"),
    (3, Box(10, 10, 40, 30), "Very low (0-2%), below the cut-off", "reassuring"),
    (3, None, "Very low (0-2%), below the cut-off" + WHOLE, "neutral"),  # no box: never green
])
def test_the_headline_is_band_and_decision_coloured_by_the_decision(
        make_window, tmp_path, qtbot, grey, lesion, headline, tone):
    w = make_window(CardEngine(lesion=lesion))
    pred = open_one(qtbot, w, write_png(tmp_path / "a.png", grey))
    assert w.prediction.headline_text() == headline
    assert headline_colour(w) == theme.colour(tone)
    assert w.prediction.probability.text() == \
        f"P(malignant) = {probability_text(pred)} (calibrated)"
    # The decision is repeated small and neutral beside the number; never a class label.
    assert w.prediction.label.text() in ("Suspicious", "Below the cut-off")
    assert theme.colour("muted") in w.prediction.label.styleSheet()
    # One line on what the cut-off means at the sensitivity measured inside and outside.
    cutoff = w.prediction.cutoff.text()
    assert not w.prediction.cutoff.isHidden()
    assert measured_line() in cutoff
    assert cutoff.startswith("At or above" if pred.suspicious else "Below")
    assert ("less reliable" in w.prediction.caveat_text()) == (lesion is None)


def test_both_maps_share_one_scale_with_a_colour_bar(make_window, tmp_path, qtbot):
    w = make_window(CardEngine())
    pred = open_one(qtbot, w, write_png(tmp_path / "bright.png", 200))
    assert pred.p_benign < 0.3
    fb, fm = w.heatmaps.shared_scale_factors()
    maps = w.heatmaps.maps()
    # One scale, topped by the evidence for the result (suspicious: the malignant map).
    assert pred.suspicious
    assert fb == fm and fm * maps.malignant.max() == pytest.approx(1.0)
    bar = w.heatmaps.colour_bar
    assert bar.isVisible() and "one scale" in bar.text()
    # Choosing another colour map recolours the bar as well.
    w.heatmaps.colormap.setCurrentText("viridis")
    assert bar.strip.colormap() == "viridis"


def test_an_intended_use_warning_is_a_banner_a_list_mark_and_words_in_the_batch(
        make_window, tmp_path, qtbot):
    w = make_window(CardEngine(flagged=True))
    folder = tmp_path / "doppler"
    open_one(qtbot, w, write_png(folder / "d.png", 90))
    banner = w.prediction.warning_text()
    assert banner.startswith("Outside intended use") and DOPPLER_WORDS in banner
    # The banner is above the result.
    assert w.prediction.warnings.geometry().bottom() <= w.prediction.headline.geometry().top()
    assert headline_colour(w) == theme.colour("outside")
    assert "\N{WARNING SIGN} outside intended use" in w.thumbs.item_text(
        w.controller.current.doc_id)

    w.ask_folder = lambda: str(folder)
    w.act.batch.trigger()
    dlg = w.batch_dialogs[0]
    with qtbot.waitSignal(dlg.finished_run, timeout=10000):
        dlg.start_button.click()
    status = dlg.model.data(dlg.model.index(0, COL_STATUS))
    assert status == f"outside intended use: {DOPPLER_WORDS}"
    assert "warning(s)" not in status


def test_dark_theme_by_default_and_the_light_one_is_kept(make_window, tmp_path, qtbot):
    settings = Settings(QSettings(str(tmp_path / "theme.ini"), QSettings.Format.IniFormat))
    w = make_window(CardEngine(), settings=settings)
    window_colour = QApplication.palette().color(QPalette.ColorRole.Window)
    assert window_colour.lightness() < 128 and w.act.theme["dark"].isChecked()
    open_one(qtbot, w, write_png(tmp_path / "a.png", 12))
    dark_neutral = headline_colour(w)

    w.act.theme["light"].trigger()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 128
    assert settings.theme == "light" and w.act.theme["light"].isChecked()
    assert headline_colour(w) == theme.colour("neutral") != dark_neutral  # repainted at once
    # Texts with their own style sheet (the cut-off line, the colour bar's caption) take the
    # light theme's dark text too, not the dark theme's light grey.
    for label in (w.prediction.cutoff, w.prediction.band_note, w.heatmaps.colour_bar.caption):
        assert label.palette().color(QPalette.ColorRole.WindowText).lightness() < 100
    w.close()

    again = make_window(CardEngine(), settings=settings)
    assert again.act.theme["light"].isChecked()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 128
    again.act.theme["dark"].trigger()
    assert settings.theme == "dark"


def test_either_heat_map_goes_over_the_main_image(make_window, tmp_path, qtbot, gui_settings):
    w = make_window(CardEngine())
    open_one(qtbot, w, write_png(tmp_path / "a.png", 200))
    assert not w.view.overlay_shown()
    w.act.image_overlay["malignant"].trigger()
    assert w.view.overlay_shown() and gui_settings.image_overlay == "malignant"
    strong = w.view.overlay_picture().toImage()
    assert w.view.overlay_caption().startswith("Evidence for malignant (P = ")
    # H ("show plain image") hides the heat maps everywhere, this one too, and brings it back.
    qtbot.keyClick(w, Qt.Key.Key_H)
    assert not w.view.overlay_shown()
    qtbot.keyClick(w, Qt.Key.Key_H)
    assert w.view.overlay_shown()
    w.act.image_overlay["benign"].trigger()
    weak = w.view.overlay_picture().toImage()
    assert strong != weak
    # Display changes follow: a new opacity redraws the overlay.
    w.heatmaps.opacity.setValue(w.heatmaps.opacity.maximum())
    assert w.view.overlay_picture().toImage() != weak
    w.act.overlay.trigger()  # View > Heat map over the image: off
    assert not w.view.overlay_shown() and gui_settings.image_overlay == "none"
    assert not w.act.overlay.isChecked() and w.act.image_overlay["benign"].isChecked()


def _toolbar_button(w, text: str):
    from PySide6.QtWidgets import QToolButton

    buttons = [b for b in w.act.toolbar.findChildren(QToolButton)
               if b.defaultAction() is not None and b.defaultAction().iconText() == text]
    assert len(buttons) == 1, text
    return buttons[0]


def test_the_toolbar_overlay_button_lays_the_heat_map_over_the_image(make_window, tmp_path,
                                                                     qtbot, gui_settings):
    """"Overlay" on the toolbar is View > Heat map over the image (one action): it lays the
    heat map over the main image and leaves the evidence panels' maps as they are; V too."""
    w = make_window(CardEngine())
    open_one(qtbot, w, write_png(tmp_path / "a.png", 200))
    button = _toolbar_button(w, "Overlay")
    assert button.defaultAction() is w.act.overlay
    view_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    assert w.act.overlay in view_menu.actions()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert w.view.overlay_shown() and w.act.overlay.isChecked()
    assert w.view.overlay_caption().startswith("Evidence for malignant")
    assert not w.heatmaps.plain.isChecked() and maps_on_screen(w.heatmaps)
    assert gui_settings.image_overlay == "malignant"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert not w.view.overlay_shown() and maps_on_screen(w.heatmaps)
    w.act.image_overlay["benign"].trigger()  # choosing a map turns the overlay on with it
    assert w.view.overlay_shown() and w.act.overlay.isChecked()
    qtbot.keyClick(w, Qt.Key.Key_V)
    assert not w.view.overlay_shown()
    qtbot.keyClick(w, Qt.Key.Key_V)
    assert w.view.overlay_caption().startswith("Evidence for benign")


def test_the_overlay_choice_waits_for_the_maps_of_the_next_image(make_window, tmp_path, qtbot):
    w = make_window(CardEngine())
    w.act.image_overlay["benign"].trigger()  # nothing open yet
    assert not w.view.overlay_shown()
    open_one(qtbot, w, write_png(tmp_path / "a.png", 90))
    assert w.view.overlay_shown()


def test_the_main_image_takes_the_most_room_at_1280_by_720(make_window, qtbot, tmp_path,
                                                          monkeypatch):
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QScreen

    monkeypatch.setattr(QScreen, "availableGeometry", lambda _self: QRect(0, 0, 1280, 720))
    w = make_window(CardEngine())
    open_one(qtbot, w, write_png(tmp_path / "a.png", 90, size=(480, 640)))
    assert w.width() <= 1280 and w.height() <= 720
    image = w.view.width()
    assert image > w.analysis_dock.width() and image > w.thumbs_dock.width()
    assert image >= 0.45 * w.width()
    # The prediction and evidence column fits its width: nothing is cut off at the side.
    column = w.analysis_dock.widget()
    assert column.widget().minimumSizeHint().width() <= column.viewport().width()


def test_a_large_image_is_shown_from_a_downscaled_copy(make_window, tmp_path, qtbot):
    from rcdnet_desktop.gui.image.image_view import DISPLAY_MAX_SIDE

    w = make_window(CardEngine())
    side = DISPLAY_MAX_SIDE + 904
    open_one(qtbot, w, write_png(tmp_path / "big.png", 90, size=(side // 2, side)))
    assert w.view.pixels().shape[:2] == (side // 2, side)
    shown = w.view.display_size()
    assert max(shown) == DISPLAY_MAX_SIDE
    # The scene stays in the image's own pixels: boxes and the pointer read true.
    assert w.view.sceneRect().width() == pytest.approx(side, abs=1)


def test_closing_does_not_wait_for_a_running_model_call(make_window, tmp_path, qtbot):
    """A slow model call still running does not hold the window open (nor the quit)."""
    from rcdnet_desktop.gui.window.main_window import CLOSE_WAIT_MS

    engine = CardEngine(delay=2.0)
    w = make_window(engine)
    w.ask_open_files = lambda: [str(write_png(tmp_path / "a.png", 90))]
    w.act.open.trigger()
    qtbot.waitUntil(lambda: engine.count("explain") >= 1, timeout=10000)
    assert CLOSE_WAIT_MS == 0
    w.act.quit.trigger()
    assert not w.isVisible()
    # The model call ends on its own; the test's thread guard waits for it.
    qtbot.waitUntil(lambda: engine.active == 0, timeout=10000)


def test_operating_point_reaches_the_panel_from_the_engine_card(make_window, tmp_path, qtbot):
    w = make_window(CardEngine())
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    op = w.prediction.operating_point
    assert op == OperatingPoint.from_card(SimpleNamespace(operating_point=OPERATING_POINT))


def test_exports_carry_the_cut_off_line_the_scale_and_the_method_in_words(make_window, tmp_path,
                                                                         qtbot):
    from PIL import Image

    from rcdnet_desktop.gui.dialogs.export_dialog import render_export

    w = make_window(CardEngine())
    open_one(qtbot, w, write_png(tmp_path / "a.png", 12))
    png = w.export_to("png", tmp_path / "report.png")
    with Image.open(png) as im:
        meta = dict(im.text)
    assert meta["Heat map method"] == "Grad-CAM, contrastive (closed form)"
    assert "one scale" in meta["Heat map scale"]
    report = render_export(w.export_job())
    assert report.layout.scale_band is not None
    assert "Heat maps: Grad-CAM, contrastive (closed form);" in report.text
    assert "Heat maps: fast" not in report.text
    assert measured_line() in report.text


def test_warning_words_for_the_banner_the_list_and_the_batch_table():
    from rcdnet_desktop.core.types import Prediction
    from rcdnet_desktop.gui import wording

    ok = Prediction(0.7, 0.3, "cpu", "t")
    assert (wording.warning_banner(ok), wording.list_mark(ok), wording.status_words(ok)) == \
        ("", "", "ok")
    one = replace(ok, warnings=("lesion box: image too small",))
    assert wording.warning_banner(one) == "Warning: lesion box: image too small"
    assert wording.list_mark(one) == "warning"
    assert wording.status_words(one) == "warning: lesion box: image too small"
    two = replace(ok, checks=(COLOUR_OVERLAY,), warnings=(DOPPLER_WORDS, "not a breast"))
    assert wording.warning_banner(two).splitlines() == [
        "Outside intended use:", f"\N{BULLET} C{DOPPLER_WORDS[1:]}", "\N{BULLET} Not a breast"]
    assert wording.list_mark(two) == "outside intended use"
    assert wording.status_words(two) == f"outside intended use: {DOPPLER_WORDS}; not a breast"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_image_over_the_size_limit_is_refused_in_plain_words(make_window, tmp_path, qtbot):
    """A 15000 x 15000 PNG (Pillow would call it a "decompression bomb DOS attack")."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", 15000, 15000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    w = make_window(CardEngine())
    w.ask_open_files = lambda: [str(huge)]
    w.act.open.trigger()
    qtbot.waitUntil(lambda: "too large" in w.view.message(), timeout=5000)
    words = w.view.message() + " ".join(w.notice.lines())
    assert "huge.png" in words and "too large" in words and "megapixels" in words
    assert "bomb" not in words.lower() and "DOS" not in words


def test_file_names_in_the_open_images_list_are_whole_at_1280_by_720(make_window, qtbot,
                                                                     tmp_path, monkeypatch):
    """The name runs over the list's whole width above the thumbnail and wraps at its "_" or
    before its suffix, instead of "busi_...png" beside the thumbnail."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QFontMetrics, QScreen

    monkeypatch.setattr(QScreen, "availableGeometry", lambda _self: QRect(0, 0, 1280, 720))
    w = make_window(CardEngine())
    name = "busi_malignant_sample_left_breast.png"
    open_one(qtbot, w, write_png(tmp_path / name, 90))
    qtbot.waitUntil(lambda: "P(malignant)" in w.thumbs.item_text(w.controller.current.doc_id),
                    timeout=5000)
    thumbs = w.thumbs
    delegate = thumbs.itemDelegate()
    item = next(thumbs.item(i) for i in range(thumbs.count())
                if thumbs.item(i).text().startswith(name))
    rect = thumbs.visualItemRect(item)
    font = delegate._name_font(thumbs.font())
    text, _flags, height, cut = delegate._name_layout(QFontMetrics(font), name,
                                                      rect.width() - 8)
    assert not cut and text.replace("\u200b", "") == name
    assert rect.height() >= height + 96  # the name, then the thumbnail below it


def test_a_box_dependent_result_and_the_region_classified_are_said_on_screen(
        make_window, tmp_path, qtbot):
    class Views(CardEngine):
        def _prediction(self, prep):
            p = super()._prediction(prep)
            return replace(p, box_p_range=(0.01, 0.3), lesion_region=Box(12, 12, 30, 20))

    w = make_window(Views(lesion=Box(10, 10, 40, 30)))
    pred = open_one(qtbot, w, write_png(tmp_path / "a.png", 3))
    assert pred.band.name == "very low" and pred.box_dependent
    assert "Depends on the box" in w.prediction.caveat_text()
    assert headline_colour(w) == theme.colour("neutral")  # not green: the box decides
    assert "classified as the lesion the localiser outlines in it, 30 x 20 px" in \
        w.prediction.mode_text()
