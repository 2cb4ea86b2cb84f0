"""Logging in to a DICOMweb node from the viewer: the password or token asked when none is
found, kept in memory for the session, forgotten when the server refuses it.

The secret is never written into the viewer's settings; the nodes dialog can put it in the
system keyring when the user asks (:func:`rcdnet_desktop.core.pacs.credentials.save_to_keyring`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from rcdnet_desktop.core.pacs import PacsNode
from rcdnet_desktop.core.pacs.credentials import (
    auth_kind,
    find_secret,
    forget_if_refused,
    remember_for_session,
)
from rcdnet_desktop.core.pacs.secret import Secret


def secret_words(node: PacsNode) -> str:
    """What is asked: "token" or "password of USER"."""
    return "token" if auth_kind(node) == "bearer" else f"password of {node.user}"


def ask_secret(parent: QWidget | None, node: PacsNode) -> str | None:
    """Ask for the node's password or token (hidden as typed); None when cancelled."""
    dialog = QInputDialog(parent)
    dialog.setWindowTitle("Log in to the PACS")
    dialog.setLabelText(f"The {secret_words(node)} for {node.label}\n"
                        "(kept in memory until the viewer closes):")
    dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
    dialog.setObjectName("pacs-login")
    if not dialog.exec():
        return None
    return dialog.textValue() or None


def ready_node(parent: QWidget | None, node: PacsNode) -> PacsNode | None:
    """``node`` with its secret when it needs one: found (keyring, environment, this session)
    or asked now; None when the user cancelled the question."""
    if not auth_kind(node) or find_secret(node) is not None:
        return node
    text = ask_secret(parent, node)
    if text is None:
        return None
    secret = Secret(text)
    remember_for_session(node, secret)
    return node.with_secret(secret)


def logged_in(node: PacsNode, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` (a PACS operation on ``node``); a refused login forgets the session's secret,
    so the next try asks again rather than sending it once more."""
    with forget_if_refused(node):
        return fn()


__all__ = ["ask_secret", "logged_in", "ready_node", "secret_words"]
