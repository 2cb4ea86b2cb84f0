"""Passwords and tokens for DICOMweb: where they come from, and how they are kept out of sight.

No Qt here. A DICOMweb node with a ``user`` (HTTP basic authentication) or ``auth = "bearer"``
(a bearer token) needs a secret. :func:`find_secret` looks, in this order, at:

1. the node's own :attr:`~rcdnet_desktop.core.pacs.nodes.PacsNode.secret` -- given in a config
   file that only its owner can read, or typed into the viewer's dialog;
2. ``$RCDNET_PACS_PASSWORD`` (basic) or ``$RCDNET_PACS_TOKEN`` (bearer);
3. the operating system's keyring (the optional ``keyring`` package), service
   :data:`KEYRING_SERVICE`, user name ``USER@HOST`` (``token@HOST`` for a token without a
   user); an absent package, or one with no usable backend, is passed over;
4. what was typed earlier in this session (:func:`remember_for_session`).

A secret lives in a :class:`~rcdnet_desktop.core.pacs.secret.Secret`, which never shows its
value: not in ``repr``, ``str``, f-strings, logs or exception messages. Only the HTTP layer
calls :meth:`~rcdnet_desktop.core.pacs.secret.Secret.reveal`. No
secret is ever written by this program, except into the keyring when the user asks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from rcdnet_desktop.core.errors import RcdNetError
from rcdnet_desktop.core.pacs.nodes import PacsNode
from rcdnet_desktop.core.pacs.secret import Secret

PASSWORD_ENV = "RCDNET_PACS_PASSWORD"
TOKEN_ENV = "RCDNET_PACS_TOKEN"
KEYRING_SERVICE = "rcdnet-desktop-pacs"
_log = logging.getLogger(__name__)


def auth_kind(node: PacsNode) -> str:
    """``"basic"``, ``"bearer"`` or ``""``: the node's ``auth``, else basic when it has a user."""
    if node.auth:
        return node.auth
    return "basic" if node.user else ""


def keyring_user(node: PacsNode) -> str:
    """The keyring entry's user name: ``USER@HOST`` (``token@HOST`` without a user)."""
    host = urlsplit(node.url).hostname or node.host or node.name
    return f"{node.user or 'token'}@{host}"


_session: dict[tuple[str, str], Secret] = {}
_session_lock = threading.Lock()


def _session_key(node: PacsNode) -> tuple[str, str]:
    return (node.url or node.address, keyring_user(node))


def remember_for_session(node: PacsNode, secret: Secret) -> None:
    """Keep a typed secret in memory for this run of the program (never on disk)."""
    with _session_lock:
        _session[_session_key(node)] = secret


def forget(node: PacsNode) -> None:
    """Forget the session's secret of ``node`` (after the server refused it)."""
    with _session_lock:
        _session.pop(_session_key(node), None)


@contextlib.contextmanager
def forget_if_refused(node: PacsNode) -> Iterator[None]:
    """While inside, a login the server refuses (a PacsError of kind ``auth``) makes the
    session forget the secret it typed, so the next try asks again instead of repeating it."""
    try:
        yield
    except RcdNetError as exc:  # PacsError (nodes.py imports this module, so not by name)
        if getattr(exc, "kind", None) == "auth":
            forget(node)
        raise


def _keyring():
    """The keyring module when it is installed and has a usable backend, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except Exception:  # noqa: BLE001 - absent, or broken on this system: passed over
        return None
    try:
        if isinstance(keyring.get_keyring(), fail.Keyring):
            return None
    except Exception:  # noqa: BLE001
        return None
    return keyring


def keyring_available() -> bool:
    """A keyring can hold secrets on this computer."""
    return _keyring() is not None


def from_keyring(node: PacsNode) -> Secret | None:
    """The node's secret in the OS keyring, or None (no package, no backend, no entry)."""
    kr = _keyring()
    if kr is None:
        return None
    try:
        value = kr.get_password(KEYRING_SERVICE, keyring_user(node))
    except Exception as exc:  # noqa: BLE001 - a locked or broken keyring: passed over
        _log.info("the keyring could not be read (%s)", type(exc).__name__)
        return None
    return Secret(value) if value else None


def save_to_keyring(node: PacsNode, secret: Secret) -> bool:
    """Store the secret in the OS keyring; False when there is none or it refused."""
    kr = _keyring()
    if kr is None:
        return False
    try:
        kr.set_password(KEYRING_SERVICE, keyring_user(node), secret.reveal())
    except Exception as exc:  # noqa: BLE001
        _log.info("the keyring refused the secret (%s)", type(exc).__name__)
        return False
    return True


def find_secret(node: PacsNode) -> Secret | None:
    """The secret to present to ``node`` (see the module's docstring for the order), or None
    when the node needs none or none was found."""
    kind = auth_kind(node)
    if not kind:
        return None
    if node.secret:
        return node.secret
    env = os.environ.get(TOKEN_ENV if kind == "bearer" else PASSWORD_ENV)
    if env:
        return Secret(env)
    found = from_keyring(node)
    if found:
        return found
    with _session_lock:
        return _session.get(_session_key(node))


def where_to_put_it(node: PacsNode) -> str:
    """Where a missing secret can be given, in words."""
    kind = auth_kind(node)
    env = TOKEN_ENV if kind == "bearer" else PASSWORD_ENV
    what = "token" if kind == "bearer" else "password"
    return (f"give the {what} in ${env}, in the system keyring (service {KEYRING_SERVICE}, "
            f"user {keyring_user(node)}), or type it when the viewer asks")


__all__: Sequence[str] = (
    "KEYRING_SERVICE",
    "PASSWORD_ENV",
    "TOKEN_ENV",
    "auth_kind",
    "find_secret",
    "forget",
    "forget_if_refused",
    "from_keyring",
    "keyring_available",
    "keyring_user",
    "remember_for_session",
    "save_to_keyring",
    "where_to_put_it",
)
