"""Model > Site profile... through the menu: the profile decides, every view says so, the
setting is kept, a refused file is not used, and "Use the bundled defaults" goes back."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from rcdnet_desktop.core import site_profile as sp
from rcdnet_desktop.core.model.card import load_card
from rcdnet_desktop.core.resources import sample_path

BENIGN = Path(sample_path()).parent / "busi_benign_sample.png"  # P about 0.08 < 0.16


def _menu_action(window, menu: str, text: str):
    for top in window.menuBar().actions():
        if top.text() == menu:
            for a in top.menu().actions():
                if a.text() == text:
                    return a
    raise AssertionError(f"no {text!r} in {menu!r}")


@pytest.fixture
def profile(tmp_path) -> Path:
    prof = sp.make_profile("Hospital X", load_card(), 212, 40, created="2026-12-07",
                           cutoff=0.05, target_sensitivity=0.9, sensitivity=0.9,
                           sensitivity_ci=(0.82, 0.95))
    return sp.write_profile(tmp_path / "hospital_x.json", prof)


@pytest.fixture
def real_window(make_window, qtbot):
    """A window on a fresh real engine (each load its own: a profile changes it)."""
    from rcdnet_desktop.core.model.engine import InferenceEngine

    w = make_window(factory=lambda _device: InferenceEngine(device="cpu"))
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=60000)
    w.open_paths([str(BENIGN)])
    qtbot.waitUntil(lambda: w.prediction.prediction() is not None, timeout=60000)
    return w


def test_choosing_a_profile_in_the_model_menu(real_window, qtbot, profile, monkeypatch,
                                              gui_settings):
    w = real_window
    assert not w.prediction.prediction().suspicious and w.prediction.site_text() == ""
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(profile), "")))
    _menu_action(w, "&Model", "&Site profile...").trigger()
    qtbot.waitUntil(lambda: w.prediction.prediction() is not None
                    and w.prediction.prediction().suspicious, timeout=60000)
    assert gui_settings.site_profile == str(profile)
    assert w.prediction.prediction().threshold == 0.05
    site = w.prediction.site_text()
    assert site.startswith("Site profile 'Hospital X' (2026-12-07, 212 cases of 40 patients): "
                           "cut-off 0.05, sensitivity 0.90 [0.82, 0.95] there")
    assert "of cancers on the 212 cases of Hospital X" in w.prediction.cutoff.text()

    # The model card dialog says it too.
    from rcdnet_desktop.gui.dialogs import help_dialogs as dialogs

    shown = []
    monkeypatch.setattr(dialogs.ModelCardDialog, "exec", lambda self: shown.append(self) or 0)
    _menu_action(w, "&Model", "&Model card...").trigger()
    assert site in shown[0].summary.toPlainText()

    # Back to the card's operating point.
    _menu_action(w, "&Model", "Use the &bundled defaults").trigger()
    qtbot.waitUntil(lambda: w.prediction.prediction() is not None
                    and not w.prediction.prediction().suspicious, timeout=60000)
    assert gui_settings.site_profile == "" and w.prediction.site_text() == ""


def test_a_changed_profile_is_refused_and_the_defaults_stay(real_window, profile, monkeypatch,
                                                            gui_settings):
    w = real_window
    profile.write_text(profile.read_text().replace("Hospital X", "Hospital Z"))
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(profile), "")))
    said = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda parent, title, text: said.append(text)))
    _menu_action(w, "&Model", "&Site profile...").trigger()
    assert said and str(profile) in said[0] and "was changed after it was written" in said[0]
    assert gui_settings.site_profile == ""
    assert not w.prediction.prediction().suspicious


def test_a_saved_profile_that_no_longer_verifies_is_said(make_window, qtbot, profile,
                                                         gui_settings):
    from rcdnet_desktop.core.model.engine import InferenceEngine

    profile.write_text(profile.read_text().replace("0.05", "0.06"))
    gui_settings.site_profile = str(profile)
    w = make_window(factory=lambda _device: InferenceEngine(device="cpu"))
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=60000)
    assert w.controller.engine.profile is None
    assert "The bundled defaults are used" in w.site.problem
    qtbot.waitUntil(lambda: any("was changed after it was written" in line
                                for line in w.notice.lines()), timeout=5000)


def test_batch_csv_names_the_profile_its_rows_were_decided_under(make_window, image_folder,
                                                                 qtbot, tmp_path):
    import csv

    from PySide6.QtCore import Qt

    from rcdnet_desktop.core.operating_point import OperatingPoint
    from tests.gui.gui_helpers import FakeEngine

    prof = sp.SiteProfile("Hospital X", "2026-12-07", "1.0", "ab" * 32, 212, 40, cutoff=0.3)

    class SiteEngine(FakeEngine):
        profile = prof

        @property
        def operating_point(self) -> OperatingPoint:
            return OperatingPoint.from_card(None).with_profile(prof)

    w = make_window(SiteEngine())
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(image_folder)
    with qtbot.waitSignal(dlg.finished_run, timeout=10000):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    out = tmp_path / "rows.csv"
    dlg.export_csv(out)
    with out.open(newline="") as fh:
        assert {r["site"] for r in csv.DictReader(fh)} == {"Hospital X"}
