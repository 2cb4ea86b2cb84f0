"""A password never written in plain text: not by the config writer, not in the viewer's
settings, not in logs, exceptions or the audit log -- scanned for after real logins, right and
wrong, against the secure Orthanc."""

from __future__ import annotations

import base64
import logging
import os
import pickle
from dataclasses import replace

import pytest

from rcdnet_desktop.core import pacs
from rcdnet_desktop.core.pacs import PacsCache, PacsError, PacsNode, Query, load_nodes, save_nodes
from rcdnet_desktop.core.pacs.secret import Secret
from tests.pacs.conftest import SECURE_PASSWORD, SECURE_USER, US1_PATIENT

WRONG = "Wrong-Pw-0c8e2d"


def _forms(secret: str) -> list[bytes]:
    """The password as it could leak: itself, and inside a basic Authorization header."""
    return [secret.encode(), base64.b64encode(f"{SECURE_USER}:{secret}".encode())]


def _clean(data: bytes | str, what: str) -> None:
    data = data.encode() if isinstance(data, str) else data
    for secret in (SECURE_PASSWORD, WRONG):
        for form in _forms(secret):
            assert form not in data, f"{what} holds the password"


def test_secret_never_shows_itself():
    node = PacsNode(name="Web", url="https://pacs.example.org/dicom-web",
                    user=SECURE_USER).with_secret(SECURE_PASSWORD)
    for text in (repr(node), str(node), str(node.secret), f"{node.secret}",
                 f"{node.secret!r}", str(node.to_dict()), str(PacsError(node, "x"))):
        _clean(text, "a text made from the node")
    with pytest.raises(TypeError):
        pickle.dumps(node.secret)
    assert node.secret == Secret(SECURE_PASSWORD) and node.secret.reveal() == SECURE_PASSWORD


def test_config_writer_never_writes_the_secret(tmp_path, https_node):
    path = save_nodes([https_node, replace(https_node, name="Other", auth="bearer", user="")
                       .with_secret(WRONG)], tmp_path / "pacs.toml")
    _clean(path.read_bytes(), "the config file")
    assert os.stat(path).st_mode & 0o777 == 0o600
    (first, _other) = load_nodes(path)
    assert (first.url, first.user, first.ca_file, first.secret) == (
        https_node.url, SECURE_USER, https_node.ca_file, None)


def test_viewer_settings_never_hold_the_secret(gui_settings, https_node):
    from rcdnet_desktop.gui.pacs.nodes import pacs_nodes, save_pacs_nodes

    save_pacs_nodes(gui_settings, [https_node])
    gui_settings.q.sync()
    with open(gui_settings.q.fileName(), "rb") as fh:
        stored = fh.read()
    assert b"alice" in stored
    _clean(stored, "the viewer's settings")
    assert pacs_nodes(gui_settings)[0].secret is None


def test_logs_and_errors_of_real_logins_hold_no_secret(https_node, caplog, tmp_path,
                                                        monkeypatch, audit_log_in_tmp):
    """Everything logged at DEBUG (requests, urllib3, pynetdicom, this app), every error
    message and the audit trail, over right and wrong logins, searches and retrieves."""
    import http.client

    monkeypatch.setattr(http.client.HTTPConnection, "debuglevel", 0)
    caplog.set_level(logging.DEBUG)
    messages = []
    assert pacs.echo(https_node) >= 0
    studies = pacs.find(https_node, Query(patient_id=US1_PATIENT))
    assert pacs.retrieve(https_node, studies, PacsCache(tmp_path)).complete
    for op in (lambda n: pacs.echo(n), lambda n: pacs.find(n, Query())):
        with pytest.raises(PacsError) as info:
            op(https_node.with_secret(WRONG))
        messages.append(f"{info.value}\n{info.value!r}\n{info.value.node!r}")
    result = pacs.retrieve(https_node.with_secret(WRONG), studies, PacsCache(tmp_path / "b"))
    messages.append(result.summary())
    assert any("refused" in m for m in messages)
    assert any(SECURE_USER in r.getMessage() or "dicom-web" in r.getMessage()
               for r in caplog.records), "nothing was logged: the scan would prove nothing"
    _clean(caplog.text, "the log")
    _clean("\n".join(messages), "an error message")
    trail = (audit_log_in_tmp / "audit.jsonl").read_bytes()
    assert trail.count(b"\n") >= 4  # the searches, retrieves and refusals were recorded
    _clean(trail, "the audit log")
