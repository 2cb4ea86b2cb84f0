"""Peak memory of the viewer opening one very large image (printed, not a test).

Makes an 8000 x 8000 RGB PNG (or uses the image given), starts the main window in a fresh
process off screen, opens the image, waits until the prediction and both heat maps are on
screen, and prints the process's peak resident memory (``ru_maxrss``) with the resident memory
after each step, sampled every 10 ms, so a regression shows where the memory goes.

Usage::

    python benchmarks/bench_large_image.py [--size 8000] [--device cpu] [--fake] [IMAGE]

``--fake`` uses a stand-in engine that returns maps at the image's size without running the
model (the viewer's own memory, without the model's).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT_MB = 1536
"""The peak the viewer must keep under for an 8000 x 8000 PNG (1.5 GB)."""


def rss_mb() -> float:
    """Resident memory now, from /proc (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def make_image(path: Path, size: int) -> None:
    """A large, smooth, ultrasound-grey RGB PNG (compressible, so quick to write)."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:size:8, 0:size:8].astype(np.float32) / size
    lesion = (xx - 0.5) ** 2 + (yy - 0.55) ** 2 < 0.01
    small = 90 + 60 * np.sin(9 * xx) * np.cos(7 * yy) - 70 * lesion
    small = np.clip(small, 0, 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR))
    Image.fromarray(np.stack([big] * 3, -1)).save(path, compress_level=1)


class FakeEngine:
    """Maps at the image's size, no model (see ``--fake``)."""

    device, device_name, device_note, model_version = "cpu", "", "", "fake"
    untrained, has_localiser = False, False
    methods = {"fast": "Grad-CAM (closed form)"}

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.card = SimpleNamespace(roi_margin=0.2, to_dict=dict)

    def prepare(self, image, roi=None, frame=0, auto_box=True):
        return image

    def _prediction(self):
        from rcdnet_desktop.core.types import Prediction

        return Prediction(0.3, 0.7, "cpu", "fake")

    def predict_prepared(self, items):
        return [self._prediction() for _ in items]

    def explain_prepared(self, items, method="fast"):
        import numpy as np

        from rcdnet_desktop.core.model.explain import to_image_size
        from rcdnet_desktop.core.types import HeatMaps

        out = []
        for record in items:
            yy, xx = np.mgrid[0:224, 0:224].astype(np.float32) / 224
            cam = np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.02)
            hw = record.pixels.shape[:2]
            out.append(HeatMaps(to_image_size(cam, hw), to_image_size(1 - cam, hw), method,
                                self._prediction()))
        return out

    def predict(self, image, roi=None, frame=0, auto_box=True):
        return self._prediction()

    def explain(self, image, roi=None, frame=0, method="fast", auto_box=True):
        return self.explain_prepared([image], method)[0]


def child(image: str, device: str, fake: bool) -> dict:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from rcdnet_desktop.gui.settings import Settings
    from rcdnet_desktop.gui.window.main_window import MainWindow

    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_mb()))
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    app = QApplication(sys.argv[:1])
    settings = Settings(QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"),
                                  QSettings.Format.IniFormat))
    factory = (lambda _d: FakeEngine()) if fake else None
    window = MainWindow(engine_factory=factory, settings=settings, device=device)
    window.resize(1280, 720)
    window.show()

    def until(cond, limit=900.0) -> float:
        end = time.time() + limit
        while not cond():
            if time.time() > end:
                raise TimeoutError("the viewer did not get there in time")
            app.processEvents()
            time.sleep(0.005)
        return time.perf_counter()

    marks = {"start": time.perf_counter()}
    marks["model"] = until(lambda: window.controller.engine is not None
                           or bool(window.controller.engine_error))
    before = rss_mb()
    marks["open"] = time.perf_counter()
    window.open_paths([image])
    marks["decoded"] = until(lambda: window.controller.current is not None
                             and window.controller.current.record is not None)
    marks["maps"] = until(lambda: window.heatmaps.maps() is not None)
    for _ in range(20):  # the paints that follow
        app.processEvents()
        time.sleep(0.01)
    marks["shown"] = time.perf_counter()
    stop.set()

    def peak_between(a: str, b: str) -> float:
        vals = [r for t, r in samples if marks[a] <= t <= marks[b]]
        return max(vals) if vals else float("nan")

    out = {
        "peak_rss_mb": peak_mb(),
        "rss_before_open_mb": before,
        "peak_while_decoding_mb": peak_between("open", "decoded"),
        "peak_while_classifying_mb": peak_between("decoded", "maps"),
        "peak_while_showing_mb": peak_between("maps", "shown"),
        "rss_at_end_mb": rss_mb(),
        "seconds_open_to_maps": marks["maps"] - marks["open"],
        "error": window.controller.engine_error,
    }
    window.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("image", nargs="?")
    p.add_argument("--size", type=int, default=8000)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--fake", action="store_true", help="a stand-in engine, no model")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.image, args.device, args.fake)), flush=True)
        return 0
    image = args.image
    if image is None:
        image = str(Path(tempfile.mkdtemp()) / f"large_{args.size}.png")
        t = time.perf_counter()
        make_image(Path(image), args.size)
        print(f"made {image} ({args.size} x {args.size} RGB) in {time.perf_counter() - t:.1f} s")
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--child", "--device", args.device, image]
    if args.fake:
        cmd.append("--fake")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return 1
    r = json.loads(line[7:])
    print(f"Opening {Path(image).name} in the viewer ({'stand-in engine' if args.fake else 'model'}"
          f", {args.device}):")
    print(f"  resident before opening   {r['rss_before_open_mb']:7.0f} MB")
    print(f"  peak while decoding       {r['peak_while_decoding_mb']:7.0f} MB")
    print(f"  peak while classifying    {r['peak_while_classifying_mb']:7.0f} MB")
    print(f"  peak while showing        {r['peak_while_showing_mb']:7.0f} MB")
    print(f"  resident at the end       {r['rss_at_end_mb']:7.0f} MB")
    print(f"  PEAK RESIDENT (ru_maxrss) {r['peak_rss_mb']:7.0f} MB "
          f"({r['peak_rss_mb'] / LIMIT_MB:.2f} of the {LIMIT_MB} MB limit)")
    print(f"  open -> heat maps shown   {r['seconds_open_to_maps']:7.1f} s")
    if r["error"]:
        print(f"  model error: {r['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
