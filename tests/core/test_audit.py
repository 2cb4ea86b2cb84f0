"""The audit trail: one JSON line per event, with the content of an ATNA record, written in one
O_APPEND write and fsync'ed (whole lines from concurrent processes, kept by a process killed
right after), read back with ``rcdnet audit --since``; opens and exports through the CLI are
recorded with UIDs and never names (the viewer's: tests/gui/test_audit_viewer.py; the PACS's:
tests/pacs/test_audit_pacs.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from rcdnet_desktop.core import audit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _events(folder) -> list[dict]:
    path = folder / audit.LOG_NAME
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_line_holds_what_atna_asks(audit_log_in_tmp):
    objects = audit.study_objects("1.2.3", "1.2.3.4", "1.2.3.4.5", "1.2.840.10008.5.1.4.1.1.6.1")
    assert audit.record_event("send", outcome=audit.MINOR_FAILURE, objects=objects,
                              destination={"node": "PACS", "address": "P@h:104"},
                              detail="1 refused")
    (e,) = _events(audit_log_in_tmp)
    assert e["event"] == "send" and e["action"] == "R" and e["outcome"] == 4
    assert e["event_id"] == {"code": "110104", "scheme": "DCM",
                             "meaning": "DICOM Instances Transferred"}
    assert e["user"]["id"] and e["user"]["pid"] == os.getpid() and e["user"]["host"]
    assert [(o["type"], o["uid"]) for o in e["objects"]] == [
        ("study", "1.2.3"), ("series", "1.2.3.4"), ("instance", "1.2.3.4.5")]
    assert e["destination"]["node"] == "PACS"
    assert datetime.fromisoformat(e["time"]).tzinfo is not None
    log = audit_log_in_tmp / audit.LOG_NAME
    assert os.stat(log).st_mode & 0o777 == 0o600


def test_unknown_event_is_a_programming_error():
    with pytest.raises(ValueError):
        audit.record_event("peek")


def test_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(audit.AUDIT_DIR_ENV, str(tmp_path / "here"))
    assert audit.audit_log_path() == tmp_path / "here" / "audit.jsonl"
    monkeypatch.delenv(audit.AUDIT_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if sys.platform.startswith("linux"):
        assert audit.audit_log_path() == tmp_path / "data/rcdnet-desktop/audit/audit.jsonl"


def test_an_unwritable_log_does_not_stop_the_work(monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(audit.AUDIT_DIR_ENV, str(blocker / "audit"))
    assert audit.record_event("query") is False
    assert "cannot be written" in caplog.text


_WRITER = """
import sys
from rcdnet_desktop.core import audit
for i in range(int(sys.argv[1])):
    audit.record_event("open", objects=audit.study_objects(f"1.2.{sys.argv[2]}.{i}"),
                       detail="x" * 2000)
"""


def test_concurrent_processes_write_whole_lines(audit_log_in_tmp):
    env = {**os.environ, audit.AUDIT_DIR_ENV: str(audit_log_in_tmp), "PYTHONPATH": REPO}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, "60", str(n)], env=env)
             for n in range(4)]
    assert all(p.wait(120) == 0 for p in procs)
    events = _events(audit_log_in_tmp)  # every line parses: none torn or interleaved
    assert len(events) == 240
    assert {e["objects"][0]["uid"] for e in events} == {f"1.2.{n}.{i}" for n in range(4)
                                                        for i in range(60)}


_KILLED = """
import os, signal
from rcdnet_desktop.core import audit
audit.record_event("export", objects=audit.study_objects("1.2.9"), destination={"file": "x"})
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_event_reported_survives_the_process_being_killed(audit_log_in_tmp):
    env = {**os.environ, audit.AUDIT_DIR_ENV: str(audit_log_in_tmp), "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-c", _KILLED], env=env, timeout=120)
    assert done.returncode == -signal.SIGKILL
    (e,) = _events(audit_log_in_tmp)
    assert e["event"] == "export" and e["objects"] == [{"type": "study", "uid": "1.2.9"}]


def test_rcdnet_audit_since_and_json(audit_log_in_tmp, capsys):
    from rcdnet_desktop.cli import main

    audit.record_event("query", destination={"node": "PACS"}, detail="3 match(es)")
    log = audit_log_in_tmp / audit.LOG_NAME
    old = json.loads(log.read_text())
    old["time"] = (datetime.fromisoformat(old["time"]) - timedelta(days=10)).isoformat()
    old["event"] = "open"
    with open(log, "a") as fh:
        fh.write(json.dumps(old) + "\n")
        fh.write("{ torn\n")  # a line edited by hand: skipped, not fatal
    assert main(["audit"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and "2 event(s) in" in err
    since = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d")
    assert main(["audit", "--since", since]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "\tquery\tsuccess\t" in line and "to PACS" in line
    assert main(["audit", "--since", since, "--json"]) == 0
    (raw,) = capsys.readouterr().out.splitlines()
    assert json.loads(raw)["event"] == "query"
    assert main(["audit", "--json"]) == 0  # alone: every whole line, as JSON
    assert [json.loads(x)["event"] for x in capsys.readouterr().out.splitlines()] == \
        ["query", "open"]
    assert main(["audit", "--since", "last tuesday"]) == 2
    assert "is not a date" in capsys.readouterr().err


def _no_identity(folder, *texts: str) -> None:
    raw = (folder / audit.LOG_NAME).read_text()
    for text in texts:
        assert text not in raw, f"the audit log holds {text!r}"


def test_classify_records_opens_and_exports(audit_log_in_tmp, tmp_path, capsys, monkeypatch):
    import pydicom
    from pydicom.data import get_testdata_file
    from tqdm import tqdm

    from rcdnet_desktop.cli import main

    monkeypatch.setattr(tqdm, "monitor_interval", 0)
    src = shutil.copy(get_testdata_file("examples_palette.dcm"), tmp_path / "pal.dcm")
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    out = tmp_path / "out"
    assert main(["classify", str(src), "--export", "dicom", "--sr", str(out / "sr"),
                 "--export-dir", str(out), "--csv", str(tmp_path / "rows.csv")]) == 0, \
        capsys.readouterr().err
    events = _events(audit_log_in_tmp)
    assert [e["event"] for e in events] == ["open", "export", "export"]
    opened = {o["uid"] for o in events[0]["objects"]}
    assert opened == {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}
    files = sorted(e["destination"]["file"] for e in events[1:])
    assert files == sorted(str(p) for p in out.rglob("*.dcm"))
    assert {e["detail"] for e in events[1:]} == {"dicom, de-identified", "sr, de-identified"}
    _no_identity(audit_log_in_tmp, str(ds.PatientName), str(ds.PatientName).split("^")[0])
