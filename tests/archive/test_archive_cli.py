"""``rcdnet archive`` without starting Ray: the default install and the viewer never import
it, the command says how to install it, usage errors and an unreachable PACS in words, and
the pieces (keys, the output folder, the summaries) on their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import speckle_png

ROOT = Path(__file__).resolve().parents[2]

BLOCK_RAY = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'ray':
            raise ImportError('blocked import: ' + name)
sys.meta_path.insert(0, Block())
"""


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_the_viewer_and_the_cli_do_not_import_ray(tmp_path):
    res = _python("import sys, rcdnet_desktop.cli, rcdnet_desktop.gui.app;"
                  "rcdnet_desktop.cli.build_parser().parse_args(['archive', '.', '--out', 'x']);"
                  "print('ray' in sys.modules)")
    assert res.stdout.strip() == "False", res.stderr


def test_archive_without_the_extra_says_how_to_install_it(tmp_path):
    speckle_png(tmp_path / "a.png")
    res = _python(BLOCK_RAY + "from rcdnet_desktop.cli import main;"
                  f"sys.exit(main(['archive', {str(tmp_path)!r}, '--out', "
                  f"{str(tmp_path / 'out')!r}]))")
    assert res.returncode == 2
    assert "pip install 'rcdnet-desktop[cluster]'" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def _main(capsys, *argv) -> tuple[int, str]:
    from rcdnet_desktop.cli import main

    status = main(["archive", *map(str, argv)])
    return status, capsys.readouterr().err


needs_ray = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("ray") is None,
    reason="Ray is not installed (pip install 'rcdnet-desktop[cluster]')")


@needs_ray
@pytest.mark.parametrize("argv, words", [
    ((), "nothing to review"),
    (("{d}", "--from", "20240101"), "--from and --to select studies of a PACS"),
    (("{d}", "--frame", "0"), "--frame must be 1 or more"),
    (("{d}", "--frame", "2", "--frames", "all"), "give only one of them"),
    (("{d}", "--send-sr"), "--send-sr needs the PACS"),
    (("{d}", "--workers", "0"), "--workers must be 1 or more"),
    (("--pacs", "PACS@127.0.0.1:104"), "over DICOMweb"),
    (("--url", "http://127.0.0.1:1/dicom-web", "--from", "yesterday"), "is not a date"),
    (("--url", "ftp://x"), "must start with http"),
])
def test_usage_errors_are_said_before_any_work(argv, words, tmp_path, capsys):
    speckle_png(tmp_path / "a.png")
    argv = [a.format(d=tmp_path) for a in argv]
    status, err = _main(capsys, *argv, "--out", tmp_path / "out")
    assert status == 2, err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@needs_ray
def test_an_unreachable_pacs_is_said_in_words(tmp_path, capsys):
    from tests.pacs.orthanc_server import free_port

    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    status, err = _main(capsys, "--url", url, "--timeout", "3", "--out", tmp_path / "out")
    assert status == 1
    assert "nobody accepts connections" in err and "Traceback" not in err


@needs_ray
def test_an_output_folder_that_cannot_be_written_is_said(tmp_path, capsys):
    speckle_png(tmp_path / "a.png")
    (tmp_path / "file").write_bytes(b"")
    status, err = _main(capsys, tmp_path, "--out", tmp_path / "file" / "out")
    assert status == 1 and "--out" in err and "Traceback" not in err


def test_sr_uids_are_derived_from_the_source_and_the_model():
    from pydicom.uid import UID

    from rcdnet_desktop.archive.keys import sr_uids

    a = sr_uids("1.2.3.4", "2.1.0@abc")
    assert a == sr_uids("1.2.3.4", "2.1.0@abc")
    assert a != sr_uids("1.2.3.5", "2.1.0@abc") and a != sr_uids("1.2.3.4", "2.2.0@abc")
    assert a[0] != a[1] and all(UID(u).is_valid for u in a)


def test_content_keys_follow_the_bytes_not_the_name(tmp_path):
    from rcdnet_desktop.archive.keys import content_key

    a, b = speckle_png(tmp_path / "a.png", seed=1), speckle_png(tmp_path / "b.png", seed=2)
    (tmp_path / "c.png").write_bytes(a.read_bytes())
    assert content_key(a) == content_key(tmp_path / "c.png") != content_key(b)




def _row(key: str, **values: str) -> dict[str, str]:
    from rcdnet_desktop.archive.state import blank_row

    return blank_row(**{"key": key, "model_version": "m", "file": f"/x/{key}.png",
                        "status": "ok", **values})


def test_only_whole_shards_are_read_and_results_keep_one_row_per_image(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow is not installed (the [cluster] extra)")
    from rcdnet_desktop.archive.state import OutputFolder

    out = OutputFolder(tmp_path)
    out.write_shard([_row("a", run="1"), _row("b", run="1", status="failed", transient="yes")])
    out.write_shard([_row("b", run="2"), _row("c", run="2", model_version="other")])
    # what a run killed while writing a shard leaves: a temporary file, never read
    (out.shards / ".part-x.parquet.123.part").write_bytes(b"half a shard")
    assert len(list(out.rows())) == 4
    done = out.done("m")
    assert done.keys == {"a", "b"}
    results = out.results("m")
    assert sorted((r["key"], r["status"]) for r in results) == [("a", "ok"), ("b", "ok")]


def test_a_damaged_shard_is_said_in_words(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow is not installed (the [cluster] extra)")
    from rcdnet_desktop.archive.state import ArchiveError, OutputFolder

    out = OutputFolder(tmp_path)
    (out.shards / "part-1-000001.parquet").write_bytes(b"not parquet")
    with pytest.raises(ArchiveError, match="cannot be read.*move it away"):
        out.done("m")


def test_summaries_name_the_worst_finding_bands_and_clips():
    from rcdnet_desktop.archive.summary import summarise

    rows = [
        _row("a", patient_id="P1", study_uid="S1", p_malignant="0.05", band="low",
             decision="below_cutoff", suspicious="no", frame="1"),
        _row("b", patient_id="P1", study_uid="S1", p_malignant="0.62", band="high",
             decision="suspicious", suspicious="yes", frame="4", clip_frames="10",
             clip_suspicious_share="0.3000"),
        _row("c", patient_id="P1", study_uid="S2", status="failed", error="x: unreadable"),
        _row("d", file="/png/x.png"),
    ]
    studies, patients = summarise(rows)
    s1 = next(s for s in studies if s["study_uid"] == "S1")
    assert (s1["worst_file"], s1["worst_band"], s1["worst_decision"], s1["worst_frame"]) == \
        ("/x/b.png", "high", "suspicious", "4")
    assert (s1["bands"], s1["clips"], s1["clips_suspicious"], s1["suspicious"]) == \
        ("high=1;low=1", "1", "1", "1")
    assert next(s for s in studies if s["study_uid"] == "S2")["failed"] == "1"
    assert next(s for s in studies if not s["study_uid"])["folder"] == "/png"
    (p1,) = patients
    assert (p1["patient_id"], p1["studies"], p1["images"], p1["worst_file"]) == \
        ("P1", "2", "3", "/x/b.png")


def test_a_model_worker_given_a_gpu_runs_onnxruntime_cuda_or_says_why_not(monkeypatch):
    """``--device cuda``: each model worker runs the graphs on ONNX Runtime's CUDA provider;
    an ONNX Runtime without it runs them on the CPU, every result saying so."""
    import onnxruntime

    from rcdnet_desktop.archive.stages import worker_engine
    from rcdnet_desktop.core.model.onnx_graphs import (
        NO_CUDA_PROVIDER,
        ONNX_CUDA_ENV,
        ONNX_THREADS_ENV,
    )
    from tests.conftest import BUNDLED_MODEL_DIR

    monkeypatch.setenv(ONNX_CUDA_ENV, "0")  # restored after the test: the worker sets it
    monkeypatch.setenv(ONNX_THREADS_ENV, "0")
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    engine = worker_engine(BUNDLED_MODEL_DIR, {"device": "cuda", "threads": None})
    assert (engine.backend, engine.device) == ("onnx", "cpu-onnx")
    assert NO_CUDA_PROVIDER in engine.device_note

    monkeypatch.setenv(ONNX_CUDA_ENV, "0")
    import cv2

    cv2_threads = cv2.getNumThreads()
    try:
        engine = worker_engine(BUNDLED_MODEL_DIR, {"device": "cpu", "threads": 1})
        assert cv2.getNumThreads() == 1  # one core per worker: OpenCV's pool too
    finally:
        cv2.setNumThreads(cv2_threads)
    assert (engine.backend, engine.device, engine.device_note) == ("onnx", "cpu-onnx", "")
    assert os.environ[ONNX_THREADS_ENV] == "1"
