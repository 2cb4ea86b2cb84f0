"""``rcdnet archive`` on a local Ray with 2 workers: folders and a DICOMweb PACS as sources,
the same rows as ``rcdnet classify``, reruns that do nothing, a worker killed mid-run, an
unreadable file and SRs sent back once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.archive.conftest import image_folder
from tests.cli_helpers import csv_rows

pytest.importorskip("ray", reason="Ray is not installed (pip install 'rcdnet-desktop[cluster]')")

pytestmark = pytest.mark.usefixtures("ray_local")


def _archive(capsys, *argv) -> tuple[int, str]:
    from rcdnet_desktop.cli import main

    status = main(["archive", *map(str, argv)])
    return status, capsys.readouterr().err


def _shard_rows(out: Path) -> list[dict]:
    from rcdnet_desktop.archive.state import OutputFolder

    return list(OutputFolder(out).rows())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return image_folder(tmp_path_factory.mktemp("archive") / "images")


def test_folder_gives_classify_rows_and_a_rerun_does_nothing(folder, tmp_path, capsys):
    from rcdnet_desktop.cli import main

    out = tmp_path / "out"
    status, err = _archive(capsys, folder, "--out", out, "--workers", 2, "--shard-rows", 3)
    assert status == 0, err
    rows = {r["file"]: r for r in csv_rows(out / "results.csv")}
    assert len(rows) == 10  # 6 speckles, 2 samples, the DICOM image and the broken file
    assert len(list((out / "shards").glob("part-*.parquet"))) >= 3  # 3 rows a shard

    # The same review as classify: every column of every row alike (the device too).
    assert main(["classify", str(folder), "-r", "--csv", str(tmp_path / "c.csv")]) == 0
    capsys.readouterr()
    classify = {r["file"]: r for r in csv_rows(tmp_path / "c.csv")}
    assert rows == classify

    broken = rows[str(folder / "broken.png")]
    assert broken["status"] == "failed"
    assert str(folder / "broken.png") in broken["error"]
    assert "1 failed" in err and "failed: " in err  # the closing lines count it, by reason

    studies = csv_rows(out / "studies.csv")
    dicom = [s for s in studies if s["study_uid"]]
    assert len(dicom) == 1 and dicom[0]["patient_id"] and dicom[0]["images"] == "1"
    by_folder = {s["folder"]: s for s in studies if not s["study_uid"]}
    here = by_folder[str(folder)]
    assert (here["images"], here["failed"]) == ("9", "1")
    ok = [r for r in rows.values() if r["status"] == "ok" and Path(r["file"]).parent == folder]
    worst = max(ok, key=lambda r: float(r["p_malignant"]))
    assert here["worst_file"] == worst["file"] and here["worst_band"] == worst["band"]
    assert csv_rows(out / "patients.csv")[0]["patient_id"] == dicom[0]["patient_id"]

    shards = sorted((out / "shards").glob("part-*.parquet"))
    status, err = _archive(capsys, folder, "--out", out, "--workers", 2)
    assert status == 0, err
    assert sorted((out / "shards").glob("part-*.parquet")) == shards  # no work, no shard
    assert "10 image(s) done by an earlier run left out" in err

    # A file touched (same bytes) is read to know its key, then left out as done.
    os.utime(folder / "speckle_0.png")
    status, err = _archive(capsys, folder, "--out", out, "--workers", 2)
    assert status == 0 and "1 done by an earlier run" in err, err
    assert sorted((out / "shards").glob("part-*.parquet")) == shards
    assert csv_rows(out / "results.csv") == list(rows.values())


def _descendants_named(name: str) -> list[int]:
    """Processes started (through Ray) by this test process whose command line holds name."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            pid, parent = int(entry.name), int((entry / "stat").read_text().rsplit(")", 1)[1]
                                               .split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if name not in cmdline:
            continue
        while parent > 1 and parent != me:
            try:
                parent = int((Path("/proc") / str(parent) / "stat").read_text()
                             .rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                break
        if parent == me:
            found.append(pid)
    return found


def test_a_worker_killed_mid_run_loses_nothing_and_doubles_nothing(folder, tmp_path):
    from rcdnet_desktop.archive import pipeline, sources
    from rcdnet_desktop.archive.progress import Progress
    from rcdnet_desktop.archive.state import OutputFolder

    out = OutputFolder(tmp_path / "out")
    model = pipeline.current_model()
    done = out.done(model.id)
    items, _ = sources.folder_items([folder], done)
    killed: list[int] = []

    def kill_a_worker(rows: int) -> None:
        if not killed:
            pids = _descendants_named("ReviewWorker")
            assert pids, "no model worker found to kill"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    with open(os.devnull, "w") as devnull:
        progress = Progress(len(items), devnull)
        pipeline.run(items, "folder", out, model, done,
                     pipeline.Settings(workers=2, batch_size=2, shard_rows=1), progress,
                     after_shard=kill_a_worker)
    assert killed
    rows = list(out.rows())
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == len(items) == 10  # nothing lost, nothing twice
    assert {r["file"] for r in rows} == {i["path"] for i in items}


def test_dicomweb_source_sends_each_sr_once(orthanc, web_node, tmp_path, capsys):
    out = tmp_path / "out"
    url = web_node.url
    try:
        status, err = _archive(capsys, "--url", url, "--out", out, "--send-sr",
                               "--workers", 2)
        rows = csv_rows(out / "results.csv")
        assert rows and all(r["file"].startswith(f"{url}/studies/") for r in rows), err
        classified = [r for r in _shard_rows(out) if r["status"] == "ok"]
        assert classified, err
        assert {r["sr"] for r in classified} == {"sent"}, err
        assert status == 0, err
        srs = orthanc.find("Instance", {"Modality": "SR"})
        assert len(srs) == len(classified)

        # The rerun fetches nothing and sends nothing.
        shards = sorted((out / "shards").glob("part-*.parquet"))
        status, err = _archive(capsys, "--url", url, "--out", out, "--send-sr")
        assert status == 0 and "left out" in err, err
        assert sorted((out / "shards").glob("part-*.parquet")) == shards

        # Without the state, everything is done again: the SRs keep their UIDs, so the PACS
        # still holds one of each.
        status, err = _archive(capsys, "--url", url, "--out", tmp_path / "again",
                               "--send-sr", "--workers", 2)
        assert status == 0, err
        again = orthanc.find("Instance", {"Modality": "SR"})
        assert sorted(i["ID"] for i in again) == sorted(i["ID"] for i in srs)
    finally:
        for series in orthanc.find("Series", {"Modality": "SR"}):
            orthanc.request("DELETE", f"/series/{series['ID']}")


def test_ray_leaves_this_process_its_own_signal_handlers():
    """ray.init installs a SIGTERM handler that exits at once; the command keeps its own, so a
    SIGTERM still writes the last shard and says how far the run got."""
    import signal

    handler = signal.getsignal(signal.SIGTERM)
    assert "sigterm_handler" not in getattr(handler, "__qualname__", "")


def test_items_ray_left_out_come_back_failed_in_words_and_are_tried_again(folder, tmp_path,
                                                                          monkeypatch):
    """A reading task or model batch that failed on every try (its process died each time) is
    left out by Ray Data; its items get failed rows saying so, and the next run does them."""
    from rcdnet_desktop.archive import pipeline, sources
    from rcdnet_desktop.archive.keys import content_key
    from rcdnet_desktop.archive.progress import Progress
    from rcdnet_desktop.archive.state import OutputFolder

    lost = str(folder / "speckle_1.png")
    build = pipeline.build
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: build(*a, **k).filter(
        lambda row: row["file"] != lost))
    out = OutputFolder(tmp_path / "out")
    model = pipeline.current_model()

    def run() -> list[dict]:
        done = out.done(model.id)
        items, _ = sources.folder_items([folder], done)
        with open(os.devnull, "w") as devnull:
            pipeline.run(items, "folder", out, model, done, pipeline.Settings(workers=2),
                         Progress(len(items), devnull))
        return items

    assert len(run()) == 10
    rows = {r["file"]: r for r in out.rows()}
    assert len(rows) == 10
    row = rows[lost]
    assert (row["status"], row["transient"]) == ("failed", "yes")
    assert row["error"].startswith(f"{lost}: not reviewed") and "tried again" in row["error"]
    assert row["key"] == content_key(Path(lost))

    monkeypatch.setattr(pipeline, "build", build)
    assert [i["path"] for i in run()] == [lost]  # only the failed one, and now it passes
    rows = [r for r in out.rows() if r["file"] == lost]
    assert [r["status"] for r in rows] == ["failed", "ok"]
