"""Frozen entry point of the ``rcdnet`` command-line executable (PyInstaller script)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from rcdnet_desktop.cli import main

    sys.exit(main())
