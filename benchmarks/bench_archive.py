"""``rcdnet archive`` on Ray against ``rcdnet classify``, as ratios measured in one run here.

Prints, on one folder of PNGs (the bundled samples, rotated, so every file is a distinct image
of a real size) reviewed with the automatic lesion box:

1. the model stage's throughput with 1 and with 2 model workers on a local Ray of 2 CPUs, and
   their ratio (goal >= 1.8x on 2 cores). The rate is the steady one, from the first row
   written to the last, so the workers' start (opening the bundle) is left out;
2. the time of the whole archive run on one machine (local Ray started and stopped by the
   command) against ``rcdnet classify`` on the same folder (goal <= 1.15x), and the same
   without Ray's start-up and shutdown (a Ray already running);
3. the cost of resuming after a kill: a run is killed (SIGKILL) once half the images are in
   shards, then rerun; the rerun's time against the time a full run takes for the images it
   had left, and the time of a rerun with nothing left to do.

With ``--pacs`` it also measures the DICOMweb source against a throw-away Orthanc on this
machine (``tests/pacs/orthanc_server.py``) holding ``--images`` ultrasound instances (US1_UNCR
of pydicom-data, 0.9 MB each, under new UIDs, 10 to a series): the WADO-RS read rate of one
stream (instances/s and MB/s, series fetched one after the other as one reading task does) and
the archive's whole rate from that PACS, as a ratio to the same images from a folder.

Usage: python benchmarks/bench_archive.py [--images 48] [--rounds 2] [--pacs]
The runs are separate processes (``python -m rcdnet_desktop.cli ...``), like a user's; the
machine's other load moves every figure, so the conditions are printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_folder(folder: Path, n: int) -> Path:
    from PIL import Image

    samples = sorted((ROOT / "resources" / "samples").glob("*.png"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        with Image.open(samples[i % len(samples)]) as im:
            im.rotate(1 + i // len(samples), fillcolor=0).save(folder / f"img_{i:04d}.png")
    return folder


def cli(*argv: str, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "rcdnet_desktop.cli", *argv], cwd=ROOT,
                         capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if res.returncode not in (0, 1):
        sys.exit(f"{argv[0]} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return elapsed, res


def shard_rows(out: Path) -> int:
    from rcdnet_desktop.archive.state import OutputFolder

    if not (out / "shards").is_dir():
        return 0
    return sum(1 for _ in OutputFolder(out).rows(("key",)))


def model_stage_rate(folder: Path, workers: int, work: Path) -> tuple[float, float]:
    """(steady images/s from first to last row, whole pipeline seconds) on the running Ray."""
    from rcdnet_desktop.archive import pipeline, sources
    from rcdnet_desktop.archive.progress import Progress
    from rcdnet_desktop.archive.state import OutputFolder

    out = OutputFolder(work / f"rate-{workers}-{time.monotonic_ns()}")
    model = pipeline.current_model()
    done = out.done(model.id)
    items, _ = sources.folder_items([folder], done)
    stamps: list[tuple[float, int]] = []
    with open(os.devnull, "w") as devnull:
        progress = Progress(len(items), devnull)
        t0 = time.perf_counter()
        pipeline.run(items, "folder", out, model, done,
                     pipeline.Settings(workers=workers, batch_size=4, shard_rows=1), progress,
                     after_shard=lambda rows: stamps.append((time.perf_counter(), rows)))
        total = time.perf_counter() - t0
    (t_first, n_first), (t_last, n_last) = stamps[0], stamps[-1]
    return (n_last - n_first) / (t_last - t_first), total


def resume(folder: Path, work: Path, n: int) -> tuple[int, float, float]:
    """Kill a run once half the images are in shards; (rows kept, rerun s, no-op rerun s)."""
    out = work / "resume"
    argv = [sys.executable, "-m", "rcdnet_desktop.cli", "archive", str(folder), "--out",
            str(out), "--shard-rows", "2"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while shard_rows(out) < n // 2 and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the command and the Ray it started
        proc.wait()
    time.sleep(2)
    kept = shard_rows(out)
    rerun, res = cli("archive", str(folder), "--out", str(out))
    assert shard_rows(out) == n, res.stderr
    noop, _ = cli("archive", str(folder), "--out", str(out))
    return kept, rerun, noop


def pacs_rates(n: int, work: Path) -> None:
    """The DICOMweb source on a local Orthanc: one stream's read rate, the archive's rate."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    from rcdnet_desktop.core import pacs
    from tests.pacs.orthanc_server import OrthancServer

    source = Path(get_testdata_file("US1_UNCR.dcm", download=False))
    folder = work / "pacs-images"
    folder.mkdir()
    with OrthancServer(work / "orthanc") as server:
        study, series = generate_uid(), None
        for i in range(n):
            ds = dcmread(source)
            if i % 10 == 0:
                series = generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.save_as(folder / f"i{i:04d}.dcm")
            server.upload(folder / f"i{i:04d}.dcm")
        node = pacs.PacsNode(name="bench", url=server.dicomweb_url, timeout=60)
        matches = pacs.find(node, pacs.Query(level="series", study_uid=study, modality=""))
        t0 = time.perf_counter()
        got = 0
        for m in matches:
            cache = work / f"cache-{m.series_uid}"
            got += len(pacs.retrieve(node, [m], pacs.PacsCache(cache)).instances)
            shutil.rmtree(cache)
        read = time.perf_counter() - t0
        mb = n * source.stat().st_size / 1e6
        print(f"WADO-RS, one stream from a local Orthanc: {got / read:.1f} instances/s, "
              f"{mb / read:.1f} MB/s ({got} instances of {source.stat().st_size // 1024} KB)")
        from_pacs, _ = cli("archive", "--url", server.dicomweb_url, "--modality", "",
                           "--out", str(work / "pacs-out"))
        from_folder, _ = cli("archive", str(folder), "--out", str(work / "pacs-folder-out"))
        print(f"rcdnet archive from that PACS: {from_pacs:.1f} s, {from_pacs / from_folder:.2f}x "
              f"the same {n} images from a folder ({from_folder:.1f} s; local Ray started by "
              "each command)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pacs", action="store_true",
                        help="also measure the DICOMweb source on a local Orthanc")
    args = parser.parse_args()
    n = args.images
    from rcdnet_desktop.archive.cluster import start, stop

    work = Path(tempfile.mkdtemp(prefix="rcdnet-bench-archive-"))
    try:
        folder = make_folder(work / "images", n)
        print(f"{n} PNGs of {(folder / 'img_0000.png').stat().st_size // 1024} KB, automatic "
              f"box; {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} at start")

        classify, archive, pipe = [], [], []
        for r in range(args.rounds):
            t, _ = cli("classify", str(folder), "--csv", str(work / f"c{r}.csv"))
            classify.append(t)
            t, _ = cli("archive", str(folder), "--out", str(work / f"a{r}"))
            archive.append(t)
        start(None, 2)
        try:
            rates: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(args.rounds):
                for workers in (1, 2):
                    rate, total = model_stage_rate(folder, workers, work)
                    rates[workers].append(rate)
                    if workers == 2:
                        pipe.append(total)
        finally:
            stop()
        r1, r2 = statistics.median(rates[1]), statistics.median(rates[2])
        c = statistics.median(classify)
        print(f"model stage, 1 worker: {r1:.1f} images/s; 2 workers: {r2:.1f} images/s; "
              f"ratio {r2 / r1:.2f}x (goal >= 1.8x)")
        print(f"rcdnet classify: {c:.1f} s ({n / c:.1f} images/s, process start included)")
        a = statistics.median(archive)
        print(f"rcdnet archive, local Ray started and stopped by the command: {a:.1f} s, "
              f"{a / c:.2f}x classify (goal <= 1.15x)")
        p = statistics.median(pipe)
        print(f"archive pipeline on a running Ray (2 workers, no start-up): {p:.1f} s, "
              f"{p / c:.2f}x classify")

        kept, rerun, noop = resume(folder, work, n)
        left = (n - kept) / n * a
        print(f"resume after SIGKILL with {kept} of {n} images in shards: rerun {rerun:.1f} s "
              f"against {left:.1f} s for the {n - kept} images left at a full run's pace "
              f"({rerun / left:.2f}x); a rerun with nothing left: {noop:.1f} s")
        if args.pacs:
            pacs_rates(n, work)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
