"""``rcdnet pacs ...`` and ``classify --send`` with TLS and a login, each option alone and in
combination, against the secure Orthanc; a config file holding a password only when private."""

from __future__ import annotations

import os
import shutil

import pytest

from rcdnet_desktop.cli import main
from rcdnet_desktop.core.pacs import credentials as cred
from tests.pacs.conftest import (
    SECURE_PASSWORD,
    SECURE_USER,
    US1_PATIENT,
    US1_STUDY,
    pydicom_data_file,
)
from tests.pacs.orthanc_server import APP_AET


@pytest.fixture(autouse=True)
def no_tqdm_monitor(monkeypatch):
    from tqdm import tqdm

    monkeypatch.setattr(tqdm, "monitor_interval", 0)


def _tls(orthanc, pki, *, cert: bool = True) -> list[str]:
    args = ["--address", f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}", "--aet", APP_AET,
            "--tls", "--ca", str(pki.ca)]
    if cert:
        args += ["--cert", str(pki.client.cert), "--key", str(pki.client.key)]
    return args


def test_pacs_echo_find_get_over_tls(secure_orthanc, pki, tmp_path, capsys):
    assert main(["pacs", "echo", *_tls(secure_orthanc, pki)]) == 0
    assert "answered in" in capsys.readouterr().out
    assert main(["pacs", "find", *_tls(secure_orthanc, pki), "--patient-id", US1_PATIENT]) == 0
    assert US1_STUDY in capsys.readouterr().out
    for extra in ([], ["--move", "--storage-port", str(secure_orthanc.scp_port)]):
        assert main(["pacs", "get", *_tls(secure_orthanc, pki), *extra, "--patient-id",
                     US1_PATIENT, "--cache", str(tmp_path / "cache")]) == 0, \
            capsys.readouterr().err
        assert "2 instances retrieved" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["no --tls", "no --ca", "no --cert", "other --ca"])
def test_pacs_echo_tls_failures_in_one_line(secure_orthanc, pki, capsys, case):
    args = _tls(secure_orthanc, pki, cert=case != "no --cert")
    if case == "no --tls":
        args = [a for a in args if a not in ("--tls", "--ca", str(pki.ca))]
    elif case == "no --ca":
        args = [a for a in args if a not in ("--ca", str(pki.ca))]
    elif case == "other --ca":
        args[args.index(str(pki.ca))] = str(pki.other_ca)
    assert main(["pacs", "echo", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rcdnet: error: ") and err.count("\n") == 1
    assert {"no --tls": "expects DICOM TLS", "no --ca": "system's trusted certificates",
            "no --cert": "asks for this computer's certificate",
            "other --ca": "is not trusted"}[case] in err


def test_pacs_find_over_https_with_user_and_password(https_proxy, pki, monkeypatch, capsys):
    url = ["--url", https_proxy.url(), "--ca", str(pki.ca)]
    assert main(["pacs", "find", *url, "--patient-id", US1_PATIENT]) == 1
    assert "wants a login (HTTP 401): give the node a user" in capsys.readouterr().err
    assert main(["pacs", "find", *url, "--user", SECURE_USER]) == 1
    assert "no password of alice was found" in capsys.readouterr().err
    monkeypatch.setenv(cred.PASSWORD_ENV, "wrong")
    assert main(["pacs", "find", *url, "--user", SECURE_USER]) == 1
    assert "refused the user name alice" in capsys.readouterr().err
    monkeypatch.setenv(cred.PASSWORD_ENV, SECURE_PASSWORD)
    assert main(["pacs", "find", *url, "--user", SECURE_USER, "--patient-id",
                 US1_PATIENT]) == 0
    out = capsys.readouterr()
    assert US1_STUDY in out.out and SECURE_PASSWORD not in out.out + out.err


def test_pacs_asks_for_the_password_on_a_terminal(https_proxy, pki, monkeypatch, capsys):
    """Without a password anywhere, a terminal is asked, once, naming the user and the node;
    what is typed is used and never printed. No terminal, no question."""
    import rcdnet_desktop.cli_pacs as cli_pacs

    monkeypatch.delenv(cred.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(cred, "from_keyring", lambda node: None)
    asked: list[str] = []
    monkeypatch.setattr(cli_pacs.getpass, "getpass",
                        lambda prompt: asked.append(prompt) or SECURE_PASSWORD)
    url = ["--url", https_proxy.url(), "--ca", str(pki.ca), "--user", SECURE_USER]
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["pacs", "find", *url, "--patient-id", US1_PATIENT]) == 0, \
        capsys.readouterr().err
    out = capsys.readouterr()
    assert US1_STUDY in out.out and SECURE_PASSWORD not in out.out + out.err
    assert len(asked) == 1 and f"password of {SECURE_USER}" in asked[0]
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["pacs", "find", *url, "--patient-id", US1_PATIENT]) == 1
    assert "no password of alice was found" in capsys.readouterr().err
    assert len(asked) == 1


def test_pacs_with_a_token(https_proxy, pki, monkeypatch, capsys):
    from tests.pacs.conftest import BEARER_TOKEN

    monkeypatch.setenv(cred.TOKEN_ENV, BEARER_TOKEN)
    assert main(["pacs", "echo", "--url", https_proxy.token_url(), "--ca", str(pki.ca),
                 "--auth", "bearer"]) == 0, capsys.readouterr().err


def _config(path, url: str, ca, *, password: bool, mode: int):
    text = f'[node.web]\nurl = "{url}"\nca_file = "{ca}"\nuser = "{SECURE_USER}"\n'
    if password:
        text += f'password = "{SECURE_PASSWORD}"\n'
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_config_file_with_a_password_must_be_private(https_proxy, pki, tmp_path, capsys):
    config = _config(tmp_path / "pacs.toml", https_proxy.url(), pki.ca, password=True,
                     mode=0o644)
    assert main(["pacs", "echo", "--config", str(config), "--node", "web"]) == 2
    err = capsys.readouterr().err
    assert "others can read it (mode 644)" in err and f"chmod 600 {config}" in err
    assert SECURE_PASSWORD not in err
    os.chmod(config, 0o600)
    assert main(["pacs", "echo", "--config", str(config), "--node", "web"]) == 0, \
        capsys.readouterr().err


def test_config_file_without_a_password_may_be_readable(https_proxy, pki, tmp_path, capsys,
                                                        monkeypatch):
    config = _config(tmp_path / "pacs.toml", https_proxy.url(), pki.ca, password=False,
                     mode=0o644)
    monkeypatch.setenv(cred.PASSWORD_ENV, SECURE_PASSWORD)
    assert main(["pacs", "echo", "--config", str(config), "--node", "web"]) == 0, \
        capsys.readouterr().err


def test_classify_send_over_tls(secure_orthanc, pki, tmp_path, capsys):
    src = shutil.copy(pydicom_data_file("US1_UNCR.dcm"), tmp_path / "us1.dcm")
    before = {i["SOPInstanceUID"] for i in secure_orthanc.instances_of_study(US1_STUDY)}
    address = f"{secure_orthanc.aet}@127.0.0.1:{secure_orthanc.dicom_port}"
    base = ["classify", str(src), "--send", address, "--aet", APP_AET]
    assert main([*base, "--tls", "--ca", str(pki.ca)]) == 2
    assert "--send:" in capsys.readouterr().err  # no certificate: refused before any work
    code = main([*base, "--tls", "--ca", str(pki.ca), "--cert", str(pki.client.cert), "--key",
                 str(pki.client.key), "--csv", str(tmp_path / "rows.csv")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "results of 1 image(s) sent to" in err
    new = [i for i in secure_orthanc.instances_of_study(US1_STUDY)
           if i["SOPInstanceUID"] not in before]
    assert [i["Modality"] for i in new] == ["SR"]
    for i in new:
        (found,) = secure_orthanc.find("Instance", {"SOPInstanceUID": i["SOPInstanceUID"]})
        secure_orthanc.request("DELETE", f"/instances/{found['ID']}")


def test_classify_security_options_need_send(tmp_path, capsys):
    src = shutil.copy(pydicom_data_file("US1_UNCR.dcm"), tmp_path / "us1.dcm")
    for option in (["--tls"], ["--ca", "x.pem"], ["--user", "bob"]):
        assert main(["classify", str(src), *option]) == 2
        assert "give --send too" in capsys.readouterr().err
