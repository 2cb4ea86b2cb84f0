"""The viewer's PACS dialogs against the secure Orthanc (DICOM TLS; DICOMweb over HTTPS with a
login), through the user's path: the nodes dialog's TLS and login fields, the password asked
when none is found, a refused password said in words and asked again (not resent), and the
password never in the viewer's settings."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from dataclasses import replace  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QInputDialog  # noqa: E402

from rcdnet_desktop.gui.pacs.nodes import pacs_nodes, save_pacs_nodes  # noqa: E402
from tests.pacs.conftest import SECURE_PASSWORD, SECURE_USER, US1_PATIENT  # noqa: E402

LEFT = Qt.MouseButton.LeftButton


def _settings_bytes(gui_settings) -> bytes:
    gui_settings.q.sync()
    with open(gui_settings.q.fileName(), "rb") as fh:
        return fh.read()


def test_nodes_dialog_tls_node_tests_and_saves(qtbot, make_window, gui_settings, tls_node):
    w = make_window()
    w.act.pacs_nodes.trigger()
    dlg = w.pacs_dialogs[-1]
    qtbot.mouseClick(dlg.add_button, LEFT)
    dlg.name.setText("Secure")
    dlg.ae_title.setText(tls_node.ae_title)
    dlg.host.setText("127.0.0.1")
    dlg.port.setValue(tls_node.port)
    assert dlg.tls.isVisible() and not dlg.user.isVisible()
    qtbot.mouseClick(dlg.tls, LEFT)
    dlg.ca_file.setText(tls_node.ca_file)
    # without this computer's certificate the server refuses, and the dialog says what to give
    qtbot.mouseClick(dlg.test_button, LEFT)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("Failed"), timeout=10000)
    assert "asks for this computer's certificate" in dlg.status.text()
    dlg.cert_file.setText(tls_node.cert_file)
    dlg.key_file.setText(tls_node.key_file)
    qtbot.mouseClick(dlg.test_button, LEFT)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("Connected"), timeout=10000)
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    (saved,) = pacs_nodes(gui_settings)
    assert (saved.tls, saved.ca_file, saved.cert_file, saved.key_file) == (
        True, tls_node.ca_file, tls_node.cert_file, tls_node.key_file)


def test_nodes_dialog_login_is_never_saved_in_the_settings(qtbot, make_window, gui_settings,
                                                           https_node):
    w = make_window()
    w.act.pacs_nodes.trigger()
    dlg = w.pacs_dialogs[-1]
    qtbot.mouseClick(dlg.add_button, LEFT)
    dlg.name.setText("Web")
    dlg.transport.setCurrentIndex(dlg.transport.findData("dicomweb"))
    dlg.url.setText(https_node.url)
    dlg.ca_file.setText(https_node.ca_file)
    dlg.auth.setCurrentIndex(dlg.auth.findData("basic"))
    assert dlg.user.isVisible() and dlg.password.isVisible() and not dlg.tls.isVisible()
    qtbot.keyClicks(dlg.user, SECURE_USER)
    qtbot.keyClicks(dlg.password, "wrong-" + SECURE_PASSWORD[::-1])
    qtbot.mouseClick(dlg.test_button, LEFT)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("Failed"), timeout=10000)
    assert f"refused the user name {SECURE_USER} and its password" in dlg.status.text()
    dlg.password.clear()
    qtbot.keyClicks(dlg.password, SECURE_PASSWORD)
    qtbot.mouseClick(dlg.test_button, LEFT)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("Connected"), timeout=10000)
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    (saved,) = pacs_nodes(gui_settings)
    assert (saved.user, saved.auth, saved.secret) == (SECURE_USER, "basic", None)
    stored = _settings_bytes(gui_settings)
    assert SECURE_USER.encode() in stored  # the settings were written...
    assert SECURE_PASSWORD.encode() not in stored  # ...without the password
    assert SECURE_PASSWORD[::-1].encode() not in stored


def _answer_login(qtbot, text: str | None, asked: list[str]) -> None:
    """When the login question appears, note its label and type ``text`` (None: cancel)."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog):
            QTimer.singleShot(20, answer)
            return
        asked.append(dialog.labelText())
        if text is None:
            dialog.reject()
        else:
            dialog.setTextValue(text)
            dialog.accept()

    QTimer.singleShot(0, answer)


def test_query_asks_for_the_password_once_and_again_after_a_refusal(
        qtbot, make_window, gui_settings, https_node):
    save_pacs_nodes(gui_settings, [https_node.with_secret(None)])
    w = make_window()
    w.act.pacs_query.trigger()
    dlg = w.pacs_dialogs[-1]
    qtbot.keyClicks(dlg.patient_id, US1_PATIENT)
    asked: list[str] = []
    _answer_login(qtbot, None, asked)
    qtbot.mouseClick(dlg.search_button, LEFT)
    assert len(asked) == 1 and f"password of {SECURE_USER}" in asked[0]
    assert "Not logged in" in dlg.status.text() and not dlg.busy

    _answer_login(qtbot, "wrong-password", asked)
    qtbot.mouseClick(dlg.search_button, LEFT)
    qtbot.waitUntil(lambda: "refused the user name" in dlg.status.text(), timeout=10000)
    assert len(asked) == 2
    qtbot.waitUntil(lambda: not dlg.busy, timeout=10000)

    _answer_login(qtbot, SECURE_PASSWORD, asked)  # asked again: the refused one was forgotten
    qtbot.mouseClick(dlg.search_button, LEFT)
    qtbot.waitUntil(lambda: not dlg.busy and "1 study" in dlg.status.text(), timeout=10000)
    assert len(asked) == 3

    qtbot.mouseClick(dlg.search_button, LEFT)  # remembered for the session: not asked
    qtbot.waitUntil(lambda: not dlg.busy and "1 study" in dlg.status.text(), timeout=10000)
    assert len(asked) == 3
    assert SECURE_PASSWORD.encode() not in _settings_bytes(gui_settings)
    dlg.close()


@pytest.mark.parametrize("problem", ["untrusted", "plain"])
def test_query_dialog_says_tls_failures_in_words(qtbot, make_window, gui_settings, tls_node,
                                                 pki, problem):
    node = (replace(tls_node, ca_file=str(pki.other_ca)) if problem == "untrusted"
            else replace(tls_node, tls=False))
    save_pacs_nodes(gui_settings, [node])
    w = make_window()
    w.act.pacs_query.trigger()
    dlg = w.pacs_dialogs[-1]
    qtbot.mouseClick(dlg.search_button, LEFT)
    qtbot.waitUntil(lambda: not dlg.busy and dlg.status.text() != "", timeout=10000)
    expected = "is not trusted" if problem == "untrusted" else "expects DICOM TLS"
    qtbot.waitUntil(lambda: expected in dlg.status.text(), timeout=10000)
    assert dlg.search_button.isEnabled()


def test_nodes_dialog_can_keep_the_password_in_the_keyring(qtbot, make_window, gui_settings,
                                                           https_node, monkeypatch):
    from rcdnet_desktop.core.pacs import credentials

    class Ring:
        entries: dict = {}

        def get_password(self, service, user):
            return self.entries.get((service, user))

        def set_password(self, service, user, password):
            self.entries[(service, user)] = password

    ring = Ring()
    monkeypatch.setattr(credentials, "_keyring", lambda: ring)
    save_pacs_nodes(gui_settings, [https_node.with_secret(None)])
    w = make_window()
    w.act.pacs_nodes.trigger()
    dlg = w.pacs_dialogs[-1]
    assert dlg.remember.isEnabled() and dlg.password.text() == ""
    qtbot.keyClicks(dlg.password, SECURE_PASSWORD)
    qtbot.mouseClick(dlg.remember, LEFT)
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    assert ring.entries == {(credentials.KEYRING_SERVICE, f"{SECURE_USER}@127.0.0.1"):
                            SECURE_PASSWORD}
    assert SECURE_PASSWORD.encode() not in _settings_bytes(gui_settings)
    credentials._session.clear()  # only the keyring knows it now
    assert credentials.find_secret(pacs_nodes(gui_settings)[0]).reveal() == SECURE_PASSWORD
