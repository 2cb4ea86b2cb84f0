"""Frozen entry point of the ``rcdnet-viewer`` windowed executable (PyInstaller script)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from rcdnet_desktop.gui.app import main

    sys.exit(main())
