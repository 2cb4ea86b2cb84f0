"""The main window driven the way a user drives it: every menu action, every shortcut and every
toolbar button, with a folder of images open. Any exception, or any dialog the action should
not open, fails the test. File dialogs and message boxes are answered (cancel, unless a test
says otherwise) and modal dialogs closed at once; what opened is recorded."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QMenu, QMessageBox

from rcdnet_desktop.core.types import Box
from tests.gui.gui_helpers import FakeEngine, wait_idle, wait_maps, write_corrupt, write_png

EXPECTED = {
    "open": {"getOpenFileNames"},
    "open_folder": {"getExistingDirectory"},
    "site_profile": {"getOpenFileName"},
    "export_png": {"ExportDialog"},
    "export_pdf": {"ExportDialog"},
    "export_dcm": {"ExportDialog"},
    "batch": {"getExistingDirectory", "BatchDialog"},
    "card": {"ModelCardDialog"},
    "shortcuts": {"ShortcutsDialog"},
    "about": {"AboutDialog"},
    "tags": {"DicomTagsDialog"},
    "pacs_query": {"PacsQueryDialog"},
    "pacs_send": {"PacsSendDialog"},
    "pacs_nodes": {"PacsNodesDialog"},
}
"""The dialogs each action may open (by the window's action names); any other is a failure."""


@dataclass
class Dialogs:
    """Stands in for the user at every dialog: records it, then cancels or closes it."""

    folder: str = ""  # the answer to "choose a folder" ("" cancels)
    opened: list[str] = field(default_factory=list)

    def install(self, monkeypatch) -> None:
        def record(name, answer):
            return lambda *_a, **_k: self.opened.append(name) or answer

        monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                            staticmethod(record("getOpenFileNames", ([], ""))))
        monkeypatch.setattr(QFileDialog, "getOpenFileName",
                            staticmethod(record("getOpenFileName", ("", ""))))
        monkeypatch.setattr(QFileDialog, "getSaveFileName",
                            staticmethod(record("getSaveFileName", ("", ""))))
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(
            lambda *_a, **_k: self.opened.append("getExistingDirectory") or self.folder))
        for name in ("question", "warning", "information", "critical"):
            monkeypatch.setattr(QMessageBox, name, staticmethod(
                record(f"QMessageBox.{name}", QMessageBox.StandardButton.No)))

        def exec_(dialog):
            self.opened.append(type(dialog).__name__)
            dialog.reject()
            return QDialog.DialogCode.Rejected

        monkeypatch.setattr(QDialog, "exec", exec_)

    def take(self) -> set[str]:
        out, self.opened = set(self.opened), []
        return out


def _visible_top_levels() -> set[int]:
    return {id(w) for w in QApplication.topLevelWidgets() if w.isVisible()}


@pytest.fixture
def study(tmp_path, qtbot):
    """A folder as a user has it: a DICOM cine (shown first), two PNGs, an unreadable file."""
    from pydicom.data import get_testdata_file

    root = tmp_path / "study"
    root.mkdir()
    shutil.copy(get_testdata_file("examples_ybr_color.dcm"), root / "a_cine.dcm")
    write_png(root / "b_light.png", 180)
    write_png(root / "sub" / "c_dark.png", 50)
    write_corrupt(root / "d_broken.png")
    return root


@pytest.fixture
def session(make_window, study, qtbot, monkeypatch):
    """The window with the study open, its maps shown, a box drawn (so every action can act)."""
    dialogs = Dialogs()
    dialogs.install(monkeypatch)
    w = make_window(FakeEngine())
    w.open_paths([study])
    wait_maps(qtbot, w)
    w.controller.set_box(Box(100, 60, 90, 70))
    wait_maps(qtbot, w)
    wait_idle(qtbot, w)
    assert w.act.export_dcm.isEnabled() and w.act.clear_box.isEnabled()
    dialogs.take()
    return w, dialogs


def _names(w) -> dict[int, str]:
    """Action -> its name in the window's actions (others: menu path and text)."""
    from dataclasses import fields

    out = {}
    for f in fields(w.act):
        value = getattr(w.act, f.name)
        if isinstance(value, QAction):
            out[id(value)] = f.name
    for dev, a in w.act.device.items():
        out[id(a)] = f"device:{dev}"
    return out


def _menu_actions(menu: QMenu) -> list[QAction]:
    out = []
    for a in menu.actions():
        if a.isSeparator():
            continue
        if a.menu() is not None:
            out.extend(_menu_actions(a.menu()))
        else:
            out.append(a)
    return out


def _step(qtbot, w, dialogs, name: str, do, action: QAction, expect_trigger: bool) -> None:
    """Do one user step; check it triggered ``action`` (or not) and opened only what it may."""
    before = _visible_top_levels()
    fired: list[bool] = []

    def spy(*_args) -> None:
        fired.append(True)

    action.triggered.connect(spy)
    try:
        do()
        qtbot.wait(20)
    finally:
        if shiboken6.isValid(action):  # a recent-file entry is replaced when it is used
            action.triggered.disconnect(spy)
    assert len(fired) == (1 if expect_trigger else 0), f"{name}: triggered {len(fired)} times"
    opened = dialogs.take()
    opened |= {type(x).__name__ for x in QApplication.topLevelWidgets()
               if x.isVisible() and id(x) not in before}
    unexpected = opened - EXPECTED.get(name, set())
    assert not unexpected, f"{name} opened {sorted(unexpected)}"
    if expect_trigger and name in EXPECTED:
        assert opened, f"{name} opened nothing"
    wait_idle(qtbot, w)


def _back_to_window(qtbot, w) -> None:
    """Close what the last step left open (a batch review, a PACS dialog) and give the window
    the keyboard."""
    for dlg in list(w.batch_dialogs) + list(w.pacs_dialogs):
        dlg.close()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=3000)


def _walk(qtbot, w, dialogs, steps) -> None:
    """Run (name, do, action) steps with exceptions captured; fail on any."""
    with qtbot.captureExceptions() as exceptions:
        for name, do, action in steps:
            _back_to_window(qtbot, w)
            _step(qtbot, w, dialogs, name, do, action, action.isEnabled())
    assert not exceptions, "\n".join(str(e[1]) for e in exceptions)


def _quit(qtbot, w, dialogs, do) -> None:
    _back_to_window(qtbot, w)
    with qtbot.captureExceptions() as exceptions:
        _step(qtbot, w, dialogs, "quit", do, w.act.quit, True)
    assert not exceptions
    assert not w.isVisible()


def test_every_menu_action(session, study, qtbot):
    w, dialogs = session
    dialogs.folder = str(study)
    names = _names(w)
    menu_actions = []
    for top in w.menuBar().actions():
        menu_actions.extend(a for a in _menu_actions(top.menu())
                            if a.parent() is not w.act.recent_menu)
    assert len(menu_actions) >= 28
    steps = []
    for a in menu_actions:
        if a is w.act.quit:
            continue
        name = names.get(id(a), a.text())
        steps += [(name, a.trigger, a)] * (2 if a.isCheckable() else 1)  # on, then off
    _walk(qtbot, w, dialogs, steps)
    assert dialogs.take() == set()

    # The recent files, read afresh: opening one rebuilds the menu.
    recent = w.act.recent_menu.actions()[0]
    assert recent.text() == str(study)
    _walk(qtbot, w, dialogs, [("recent", recent.trigger, recent)])
    clear = w.act.recent_menu.actions()[-1]
    assert clear.text() == "Clear list"
    _walk(qtbot, w, dialogs, [("clear recent", clear.trigger, clear)])
    assert not w.act.recent_menu.isEnabled()

    wait_maps(qtbot, w)  # still working
    _quit(qtbot, w, dialogs, w.act.quit.trigger)


def test_every_shortcut(session, study, qtbot):
    w, dialogs = session
    dialogs.folder = str(study)
    names = _names(w)
    steps = []
    for a in w.actions():
        if a is w.act.quit:
            continue
        for seq in a.shortcuts():
            if seq.isEmpty():  # a standard key the platform does not bind
                continue
            def press(combo=seq[0]):
                qtbot.keyClick(w, combo.key(), combo.keyboardModifiers())

            steps.append((f"{names.get(id(a), a.text())} ({seq.toString()})", press, a))
    assert len(steps) >= 25
    # A name with its keys after it: the expected dialogs are looked up by the bare name.
    with qtbot.captureExceptions() as exceptions:
        for name, do, action in steps:
            _back_to_window(qtbot, w)
            _step(qtbot, w, dialogs, name.split(" (")[0], do, action, action.isEnabled())
    assert not exceptions, "\n".join(str(e[1]) for e in exceptions)
    w.cine.set_playing(False)
    wait_maps(qtbot, w)
    # The platform's key (none on the offscreen test platform).
    keys = [k for k in w.act.quit.shortcuts() if not k.isEmpty()]
    if keys:
        combo = keys[0][0]
        _quit(qtbot, w, dialogs, lambda: qtbot.keyClick(w, combo.key(), combo.keyboardModifiers()))
    else:
        _quit(qtbot, w, dialogs, w.act.quit.trigger)


def test_every_toolbar_button(session, study, qtbot):
    w, dialogs = session
    w.resize(1280, 720)  # the smallest screen the toolbar is laid out for
    qtbot.wait(20)
    dialogs.folder = str(study)
    names = _names(w)
    tb = w.act.toolbar
    steps = []
    for a in tb.actions():
        if a.isSeparator():
            continue
        button = tb.widgetForAction(a)
        assert button is not None and button.isVisible(), a.text()

        def click(button=button):
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

        steps.append((names[id(a)], click, a))
    assert len(steps) == 13
    _walk(qtbot, w, dialogs, steps)
    wait_maps(qtbot, w)


def test_batch_review_opens_from_the_menu_the_toolbar_and_ctrl_b(session, study, qtbot):
    """The shipped defect: ``triggered(False)`` reached ``batch_dialog(folder)`` and the
    review could not be opened at all; every test had called the method directly."""
    w, dialogs = session
    file_menu = w.menuBar().actions()[0].menu()
    from_menu = next(a for a in file_menu.actions() if a.text().startswith("&Batch review"))
    button = w.act.toolbar.widgetForAction(w.act.batch)
    ways = {
        "menu": from_menu.trigger,
        "toolbar": lambda: qtbot.mouseClick(button, Qt.MouseButton.LeftButton),
        "Ctrl+B": lambda: qtbot.keyClick(w, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier),
    }
    for way, do in ways.items():
        # Cancelling the folder question opens nothing.
        dialogs.folder = ""
        _back_to_window(qtbot, w)
        _step(qtbot, w, dialogs, "batch", do, w.act.batch, True)
        assert w.batch_dialogs == [], way

        dialogs.folder = str(study)
        _back_to_window(qtbot, w)
        _step(qtbot, w, dialogs, "batch", do, w.act.batch, True)
        assert len(w.batch_dialogs) == 1, way
        dlg = w.batch_dialogs[0]
        assert dlg.isVisible() and dlg.folder == study, way
        with qtbot.waitSignal(dlg.finished_run, timeout=10000):
            qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
        assert dlg.model.rowCount() == 4, way


def test_the_window_view_implements_the_whole_view_protocol():
    import inspect

    from rcdnet_desktop.gui.session.engine import protocol_members
    from rcdnet_desktop.gui.window.view import WindowView
    from rcdnet_desktop.gui.window.viewer_protocols import ViewerView

    methods, _ = protocol_members(ViewerView)
    assert len(methods) >= 20
    for name in methods:
        mine = getattr(WindowView, name, None)
        assert callable(mine), f"WindowView lacks {name}"
        assert list(inspect.signature(mine).parameters) == \
            list(inspect.signature(getattr(ViewerView, name)).parameters), name
