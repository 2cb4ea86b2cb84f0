"""How fast the viewer starts and explains an image, on this machine (printed, not a test).

Measures, in fresh processes (median of ``--runs``):

* launch -> window shown: from starting the Python process to the main window being exposed
  (interpreter start, PySide6 import, window construction; the model loads afterwards);
* launch -> model ready: torch imported and the bundled weights loaded (in the background);
* launch -> first heat maps: the image given at launch classified and both maps on screen;
* open -> heat maps: with the model loaded, from asking to open an image to its prediction and
  both maps on screen (reading, preprocessing, one forward pass, CAM, blending, painting);
  measured over several images, median.

Usage::

    python benchmarks/bench_viewer.py [--runs 3] [--device cpu] [IMAGE ...]

Without images it uses the two bundled samples. Runs off screen unless a display is set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(t0: float, device: str, images: list[str]) -> dict[str, float]:
    """Runs in the measured process: start the viewer as ``rcdnet-viewer`` does."""
    import tempfile

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from rcdnet_desktop.gui.settings import Settings
    from rcdnet_desktop.gui.window.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    settings = Settings(QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"),
                                  QSettings.Format.IniFormat))
    window = MainWindow(settings=settings, device=device)
    window.show()
    window.open_paths([images[0]])

    def until(cond, limit=600.0):
        end = time.time() + limit
        while not cond():
            if time.time() > end:
                raise TimeoutError("viewer did not get there in time")
            app.processEvents()
            time.sleep(0.001)
        return time.time()

    def maps_on_screen() -> bool:
        maps = window.controller.current_maps()
        return maps is not None and window.heatmaps.maps() is maps

    out: dict[str, float] = {}
    handle = window.windowHandle()
    out["launch_to_window"] = until(lambda: handle is not None and handle.isExposed()) - t0
    app.processEvents()
    out["launch_to_model"] = until(lambda: window.controller.engine is not None) - t0
    out["launch_to_first_maps"] = until(maps_on_screen) - t0
    # Fresh copies, so no result is already known (the viewer keeps results per open image).
    import shutil

    tmp = Path(tempfile.mkdtemp())
    copies = []
    for k in range(3):
        for j, src in enumerate(images):
            dst = tmp / f"copy{k}_{j}{Path(src).suffix}"
            shutil.copyfile(src, dst)
            copies.append(dst)
    times = []
    for path in copies:
        t = time.time()
        window.open_paths([path])
        until(lambda p=Path(path): window.controller.current is not None
              and window.controller.current.path == p and maps_on_screen())
        app.processEvents()  # the paint of the maps
        times.append(time.time() - t)
    out["open_to_maps"] = statistics.median(times)
    out["open_to_maps_all"] = times
    out["device"] = window.controller.device_name
    window.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("images", nargs="*")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    images = args.images or [str(REPO / "resources" / "samples" / "busi_benign_sample.png"),
                             str(REPO / "resources" / "samples" / "busi_malignant_sample.png")]
    if len(images) < 2:
        images = images * 2
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.device, images)))
        return 0

    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    results = []
    for i in range(args.runs):
        t0 = time.time()
        proc = subprocess.run([sys.executable, __file__, "--child", repr(t0), "--device",
                               args.device, *images], capture_output=True, text=True, env=env,
                              timeout=900)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            return 1
        results.append(json.loads(line[7:]))
        r = results[-1]
        print(f"run {i + 1}: window {r['launch_to_window']:.2f} s, model "
              f"{r['launch_to_model']:.2f} s, first maps {r['launch_to_first_maps']:.2f} s, "
              f"open->maps {r['open_to_maps']:.3f} s")

    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"\nViewer timings, median of {args.runs} fresh launches, device "
          f"{results[0]['device']}, {os.cpu_count()} CPU threads ({cpu}), Qt platform "
          f"{env.get('QT_QPA_PLATFORM', 'default')}:")
    print(f"  launch -> window shown          {med('launch_to_window'):6.2f} s")
    print(f"  launch -> model loaded          {med('launch_to_model'):6.2f} s  (background)")
    print(f"  launch -> first heat maps shown {med('launch_to_first_maps'):6.2f} s")
    print(f"  open image -> heat maps shown   {med('open_to_maps'):6.3f} s  (model loaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
