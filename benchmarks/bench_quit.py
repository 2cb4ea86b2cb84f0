"""How long the viewer takes to quit (printed, not a test).

Starts ``rcdnet-viewer`` on the bundled sample in a fresh process (off screen unless a display
is set, with its settings in a temporary folder) and chooses File > Quit at three moments:
while the model is still loading, while the first result is being computed, and once the heat
maps are on screen. For each it prints the seconds from the Quit action to the end of the
process, against the 1 s the viewer must keep to.

Usage::

    python benchmarks/bench_quit.py [--device cpu] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT_S = 1.0
MOMENTS = {
    "loading": "while the model loads",
    "computing": "while the first result is computed",
    "idle": "with the heat maps on screen",
}


def child(moment: str, device: str) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from rcdnet_desktop.gui.app import main as viewer_main
    from rcdnet_desktop.gui.window.main_window import MainWindow

    app = QApplication(sys.argv[:1])

    def ready(w: MainWindow) -> bool:
        c = w.controller
        if moment == "loading":
            return w.isVisible()
        if moment == "computing":
            return c.engine is not None and c.is_busy()
        return w.heatmaps.maps() is not None and not c.is_busy()

    def poll() -> None:
        windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
        if windows and ready(windows[0]):
            print(f"QUIT {time.time():.6f}", flush=True)
            windows[0].act.quit.trigger()
            return
        QTimer.singleShot(2, poll)

    QTimer.singleShot(0, poll)
    return viewer_main(["--device", device])


def measure(moment: str, device: str) -> float:
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="rcdnet-bench-quit-")
    proc = subprocess.Popen([sys.executable, __file__, "--child", moment, "--device", device],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    quit_at = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("QUIT "):
            quit_at = float(line.split()[1])
            break
    proc.wait(timeout=600)
    ended = time.time()
    if quit_at is None:
        print(proc.stderr.read() if proc.stderr else "", file=sys.stderr)
        raise RuntimeError(f"the viewer never reached the moment {moment!r}")
    return ended - quit_at


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--child", choices=tuple(MOMENTS), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.device)
    print(f"Quit (File > Quit) to the end of the process, device {args.device}, "
          f"limit {LIMIT_S:.1f} s:")
    worst = 0.0
    for moment, words in MOMENTS.items():
        times = [measure(moment, args.device) for _ in range(args.repeat)]
        worst = max(worst, *times)
        print(f"  {words:<36} {max(times):5.2f} s (worst of {len(times)}; "
              f"{max(times) / LIMIT_S:.2f} of the limit)")
    print(f"  worst {worst:.2f} s: {'within' if worst <= LIMIT_S else 'OVER'} the limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
