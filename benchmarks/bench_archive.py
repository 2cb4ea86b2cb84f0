"""``rcdnet archive`` on Ray against ``rcdnet classify``, as ratios measured in one run here.

Prints, on folders of PNGs (the bundled samples, turned, so every file is a distinct image of
a real size) reviewed with the automatic lesion box:

1. the time of ``rcdnet archive`` on one machine (its own local Ray, started and stopped by the
   command) against ``rcdnet classify`` on the same folder (goal <= 1.15x), on an archive-sized
   folder (``--images``, 1000 by default) and on a small one (``--small``, 160), where Ray's
   fixed start weighs most;
2. on a local Ray of 2 CPUs already running, the model stage's throughput with 1 and with 2
   model workers and their ratio (goal >= 1.8x on 2 cores): the folder's images are read and
   decoded first and held in Ray's object store, so only the model workers compete for the
   cores; the rate is the steady one, from the end of each worker's first batches to the last
   batch, so the workers' start (opening the bundle) is left out; with batches of ``--batch``
   images and of twice as many. Then the same for the whole pipeline (reading, model, shards
   written), as the figure a user sees;
3. the cost of resuming after a kill: a run is killed (SIGKILL) once half the images are in
   shards, then rerun; the rerun's time against the time a full run takes for the images it
   had left, and the time of a rerun with nothing left to do.

With ``--pacs`` it also measures the DICOMweb source against a throw-away Orthanc on this
machine (``tests/pacs/orthanc_server.py``) holding ``--small`` ultrasound instances (US1_UNCR
of pydicom-data, 0.9 MB each, under new UIDs, 10 to a series): the WADO-RS read rate of one
stream (instances/s and MB/s, series fetched one after the other as one reading task does) and
the archive's whole rate from that PACS, as a ratio to the same images from a folder.

Usage: python benchmarks/bench_archive.py [--images 1000] [--small 160] [--stage-images 320]
[--batch 8] [--rounds 1] [--pacs]
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
        turn = i // len(samples)  # each sample turned a degree more, and half one more
        with Image.open(samples[i % len(samples)]) as im:  # past a whole turn: all distinct
            im.rotate(1 + turn + 0.5 * (turn // 359), fillcolor=0).save(
                folder / f"img_{i:04d}.png")
    return folder


def subset(every: Path, folder: Path, n: int) -> Path:
    """A folder of the first ``n`` images of ``every`` (hard links: the same files)."""
    if folder != every:
        folder.mkdir()
        for path in sorted(every.glob("*.png"))[:n]:
            os.link(path, folder / path.name)
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


def _steady(stamps: list[tuple[float, int]], skip: int) -> float:
    """Images/s from the ``skip``-th block received to the last (the blocks before it cover
    the workers' start: opening the bundle, the first run of each graph)."""
    if len(stamps) < skip + 3:
        sys.exit(f"only {len(stamps)} blocks came back: too few images for a steady rate")
    (t0, _), (t1, _) = stamps[skip], stamps[-1]
    return sum(n for _, n in stamps[skip + 1:]) / (t1 - t0)


def stage_items(folder: Path, work: Path):
    from rcdnet_desktop.archive import pipeline, sources
    from rcdnet_desktop.archive.state import OutputFolder

    out = OutputFolder(work / f"rate-{time.monotonic_ns()}")
    model = pipeline.current_model()
    done = out.done(model.id)
    items, _ = sources.folder_items([folder], done)
    return out, model, done, items


def model_stage_rate(folder: Path, workers: int, work: Path, batch: int) -> float:
    """Steady images/s of the model stage alone, on the running Ray: the folder's images are
    read and decoded first (the reading stage, materialised in Ray's object store), then only
    the pool of ``workers`` model workers runs, over those rows held in memory."""
    from rcdnet_desktop.archive import pipeline

    _, model, done, items = stage_items(folder, work)
    settings = pipeline.Settings(workers=workers, batch_size=batch)
    read = pipeline.read_stage(items, "folder", done, settings).materialize()
    stamps: list[tuple[float, int]] = []
    for block in pipeline.model_stage(read, model, settings).iter_batches(
            batch_size=None, batch_format="pyarrow"):
        stamps.append((time.perf_counter(), block.num_rows))
    assert sum(n for _, n in stamps) == len(items)
    return _steady(stamps, 2 * workers)


def pipeline_rate(folder: Path, workers: int, work: Path, batch: int) -> tuple[float, float]:
    """(steady images/s, seconds) of the whole pipeline (reading, model, shards) on the
    running Ray, with ``workers`` model workers."""
    from rcdnet_desktop.archive import pipeline
    from rcdnet_desktop.archive.progress import Progress

    out, model, done, items = stage_items(folder, work)
    stamps: list[tuple[float, int]] = []
    settings = pipeline.Settings(workers=workers, batch_size=batch, shard_rows=batch)
    with open(os.devnull, "w") as devnull:
        progress = Progress(len(items), devnull)
        t0 = time.perf_counter()
        pipeline.run(items, "folder", out, model, done, settings, progress,
                     after_shard=lambda rows: stamps.append((time.perf_counter(), rows)))
        total = time.perf_counter() - t0
    counts = [(t, n - (stamps[i - 1][1] if i else 0)) for i, (t, n) in enumerate(stamps)]
    return _steady(counts, 2 * workers), total


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


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000,
                        help="the folder that archive and classify are timed on")
    parser.add_argument("--small", type=int, default=160,
                        help="a small folder timed too, where Ray's fixed start shows")
    parser.add_argument("--stage-images", type=int, default=320,
                        help="the folder the model stage's throughput is measured on")
    parser.add_argument("--batch", type=int, default=8, help="images per model batch")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pacs", action="store_true",
                        help="also measure the DICOMweb source on a local Orthanc")
    args = parser.parse_args()
    from rcdnet_desktop.archive.cluster import start, stop

    work = Path(tempfile.mkdtemp(prefix="rcdnet-bench-archive-"))
    try:
        sizes = sorted({args.images, args.small, args.stage_images})
        every = make_folder(work / f"images-{sizes[-1]}", sizes[-1])
        folders = {n: subset(every, work / f"images-{n}", n) for n in sizes}
        kb = (folders[args.small] / "img_0000.png").stat().st_size // 1024
        print(f"PNGs of {kb} KB, automatic box; {os.cpu_count()} CPU(s), {load()} at start")

        # 1. archive (its own local Ray) against classify, on the same folders, in turn.
        times: dict[tuple[str, int], list[float]] = {}
        for r in range(args.rounds):
            for n in (args.images, args.small):
                for cmd in ("classify", "archive"):
                    out = ["--csv", str(work / f"c{n}-{r}.csv")] if cmd == "classify" else \
                        ["--out", str(work / f"a{n}-{r}")]
                    t, _ = cli(cmd, str(folders[n]), *out)
                    times.setdefault((cmd, n), []).append(t)
        for n in (args.images, args.small):
            c = statistics.median(times["classify", n])
            a = statistics.median(times["archive", n])
            print(f"{n} images: rcdnet classify {c:.1f} s ({n / c:.1f} images/s, process "
                  f"start included); rcdnet archive with its own local Ray {a:.1f} s: "
                  f"{a / c:.2f}x classify (goal <= 1.15x)")
        print(f"({load()})")

        # 2. on a Ray already running: the model stage alone, then the whole pipeline.
        stage = folders[args.stage_images]
        start(None, 2)
        try:
            rates: dict[tuple[str, int], list[float]] = {}
            seconds: list[float] = []
            for _ in range(args.rounds):
                for workers in (1, 2):
                    for batch in (args.batch, 2 * args.batch):
                        rates.setdefault((f"model {batch}", workers), []).append(
                            model_stage_rate(stage, workers, work, batch))
                    rate, total = pipeline_rate(stage, workers, work, args.batch)
                    rates.setdefault(("pipeline", workers), []).append(rate)
                    if workers == 2:
                        seconds.append(total)
        finally:
            stop()
        for batch in (args.batch, 2 * args.batch):
            m1, m2 = (statistics.median(rates[f"model {batch}", w]) for w in (1, 2))
            print(f"model stage alone ({args.stage_images} images read beforehand and held "
                  f"in memory, batches of {batch}), 1 worker: {m1:.1f} images/s; 2 workers: "
                  f"{m2:.1f} images/s; ratio {m2 / m1:.2f}x (goal >= 1.8x)")
        p1, p2 = (statistics.median(rates["pipeline", w]) for w in (1, 2))
        print(f"whole pipeline (reading, model, shards), 1 worker: {p1:.1f} images/s; "
              f"2 workers: {p2:.1f} images/s; ratio {p2 / p1:.2f}x; 2 workers took "
              f"{statistics.median(seconds):.1f} s for {args.stage_images} images on a Ray "
              f"already running ({load()})")

        # 3. resuming after a kill, on the small folder.
        n = args.small
        kept, rerun, noop = resume(folders[n], work, n)
        left = (n - kept) / n * statistics.median(times["archive", n])
        if not left:
            sys.exit(f"the run finished all {n} images before it was killed: use more")
        print(f"resume after SIGKILL with {kept} of {n} images in shards: rerun {rerun:.1f} s "
              f"against {left:.1f} s for the {n - kept} images left at a full run's pace "
              f"({rerun / left:.2f}x); a rerun with nothing left: {noop:.1f} s")
        if args.pacs:
            pacs_rates(n, work)
        print(f"{load()} at the end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
