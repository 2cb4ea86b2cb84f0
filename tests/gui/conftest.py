"""GUI test fixtures: offscreen Qt, a controllable fake engine, windows that clean up, and a
guard that fails any test leaving a thread running."""

from __future__ import annotations

import os

# Before anything imports Qt: no display needed, no window flashes on a desktop.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.gui.gui_helpers import FakeEngine, write_corrupt, write_png  # noqa: E402

THREAD_GRACE_S = 3.0


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def gui_settings(tmp_path):
    """Settings in a temporary INI file: tests never touch the user's settings."""
    from PySide6.QtCore import QSettings

    from rcdnet_desktop.gui.settings import Settings

    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def make_window(qtbot, gui_settings):
    """``make_window(engine=None, factory=None, **kw)``: a shown MainWindow, shut down after."""
    from rcdnet_desktop.gui.window.main_window import MainWindow

    windows = []

    def make(engine=None, factory=None, settings=None, **kw):
        if factory is None:
            eng = engine if engine is not None else FakeEngine()
            factory = lambda _device: eng  # noqa: E731
        w = MainWindow(engine_factory=factory, settings=settings or gui_settings, **kw)
        windows.append(w)
        w.show()
        w.raise_()
        w.activateWindow()  # keyboard shortcuts need an active window
        qtbot.waitUntil(w.isActiveWindow, timeout=3000)
        return w

    yield make
    for w in windows:
        w.shutdown()
        w.close()
        w.deleteLater()


def _qt_pools():
    from PySide6.QtCore import QThreadPool

    from rcdnet_desktop.gui.session.workers import live_pools

    return [QThreadPool.globalInstance(), *live_pools()]


@pytest.fixture(autouse=True)
def no_threads_left(request):
    """Fail the test if it leaves a Python thread or a Qt pool thread running.

    Pool threads are Qt threads (seen by Python only as "dummy" threads), so they are checked
    through the pools' activeThreadCount; ordinary Python threads by enumeration.
    """
    before = set(threading.enumerate())
    yield
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + THREAD_GRACE_S
    while True:
        app = QApplication.instance()
        if app is not None:
            app.processEvents()
        new = [t for t in threading.enumerate()
               if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)]
        busy = [(p.objectName() or "global", p.activeThreadCount()) for p in _qt_pools()
                if p.activeThreadCount() > 0]
        if not new and not busy:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    pytest.fail(f"test left threads running: python={[t.name for t in new]} "
                f"qt pools={busy}", pytrace=False)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A folder with four good images (one in a sub-folder) and one corrupt file."""
    root = tmp_path / "study"
    write_png(root / "a_dark.png", 40)
    write_png(root / "b_bright.png", 200)
    write_png(root / "c_mid.png", 120, rgb=True)
    write_png(root / "sub" / "d_sub.png", 90)
    write_corrupt(root / "e_corrupt.png")
    return root


