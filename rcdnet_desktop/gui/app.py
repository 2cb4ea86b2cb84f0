"""Entry point of the ``rcdnet-viewer`` GUI script.

``rcdnet-viewer [PATH ...]`` opens the given files and folders; with no paths it opens the
bundled sample image. ``--self-test`` starts the window off screen, classifies the sample,
waits for both heat maps and exits 0 (success) or 1 (failure): the packaging smoke test.

Start-up order matters: the window is shown first, then the model (and torch) load in the
background, so nothing heavy is imported at the top of this module.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from rcdnet_desktop.core.resources import sample_path
from rcdnet_desktop.gui.settings import DEVICES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rcdnet-viewer",
        description="Breast ultrasound viewer with RcdNet benign/malignant decision support.")
    p.add_argument("paths", nargs="*", help="image files or folders to open (default: the "
                   "bundled sample image)")
    p.add_argument("--device", choices=DEVICES,
                   help="where to run the model this time (default: the saved choice, else auto)")
    p.add_argument("--self-test", action="store_true",
                   help="open off screen, classify the sample, wait for both heat maps, exit "
                   "0 on success and 1 on failure")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds the self-test may take (default 300)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the viewer; the self-test returns its exit status, the viewer ends the process with
    its own once the window has closed (:func:`exit_status`)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    # Qt is loaded after the arguments are read: --help and usage errors answer at once.
    from rcdnet_desktop.gui.settings import APPLICATION, ORGANISATION, Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)

    if args.self_test:
        # Never read or change the user's settings from a smoke test.
        import tempfile

        tmp = tempfile.mkdtemp(prefix="rcdnet-selftest-")
        settings = Settings(QSettings(str(Path(tmp) / "settings.ini"),
                                      QSettings.Format.IniFormat))
    else:
        settings = Settings()

    # The window's modules load after the QApplication exists (about 0.5 s: bench_viewer.py).
    from rcdnet_desktop.gui.window.main_window import MainWindow

    window = MainWindow(settings=settings, device=args.device)
    window.show()
    paths = args.paths or [str(sample_path())]
    window.open_paths(paths)
    if args.self_test:
        return _self_test(app, window, args.timeout)
    status = app.exec()
    return exit_status(int(status))


def exit_status(status: int) -> NoReturn:
    """End the process with ``status`` at once, once the window has closed.

    Closing the window saved the settings and cancelled what waits; every file the viewer
    writes is written atomically and closed. What is left is the interpreter's own teardown:
    joining a model call or a model load still running in a worker thread (Qt joins its
    threads), then freeing every module, the model session and Qt's objects, which takes 0.3 s
    on an idle machine and over a second on a busy one. None of it matters to the user, so the
    output is flushed and the process ends here: quitting takes well under a second
    (``benchmarks/bench_quit.py``).
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _self_test(app, window, timeout: float) -> int:
    """Wait for the prediction and both heat maps of the first image; report; exit status."""
    from PySide6.QtCore import QEventLoop, QTimer

    # Only the self-test words a result here; the viewer's start does not load numpy for it.
    from rcdnet_desktop.core.result import band_and_decision, probability_text

    t0 = time.perf_counter()
    result: dict[str, object] = {}

    def on_maps(key) -> None:
        result["key"] = key

    window.heatmaps_shown.connect(on_maps)
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)

    def poll() -> None:
        if "key" in result or window.controller.engine_error or \
                (time.perf_counter() - t0) > timeout:
            loop.quit()
        doc = window.controller.current
        if doc is not None and doc.error:
            loop.quit()

    timer.timeout.connect(poll)
    timer.start()
    loop.exec()
    timer.stop()
    ok = False
    doc = window.controller.current
    try:
        if "key" not in result:
            why = (window.controller.engine_error or (doc.error if doc else "")
                   or f"no heat maps within {timeout:.0f} s")
            print(f"rcdnet-viewer self-test FAILED: {why}", file=sys.stderr)
        else:
            maps = window.heatmaps.maps()
            pred = window.prediction.prediction()
            h, w = doc.record.height, doc.record.width
            problems = []
            if pred is None:
                problems.append("no prediction shown")
            if maps is None:
                problems.append("no heat maps shown")
            else:
                for name, m in (("benign", maps.benign), ("malignant", maps.malignant)):
                    if m.shape != (h, w):
                        problems.append(f"{name} map is {m.shape}, image is {(h, w)}")
                    elif not (float(m.min()) >= 0.0 and float(m.max()) <= 1.0):
                        problems.append(f"{name} map outside [0, 1]")
            if problems:
                print("rcdnet-viewer self-test FAILED: " + "; ".join(problems), file=sys.stderr)
            else:
                ok = True
                print(f"rcdnet-viewer self-test OK: {doc.name} -> {band_and_decision(pred)} "
                      f"P(malignant)={probability_text(pred)}, model {pred.model_version}, "
                      f"{window.controller.device_name}, both heat maps {w}x{h}, "
                      f"{time.perf_counter() - t0:.1f} s")
    finally:
        window.close()
        app.processEvents()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
