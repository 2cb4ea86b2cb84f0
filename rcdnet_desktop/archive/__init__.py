"""``rcdnet archive``: the review of ``rcdnet classify`` over a whole archive, on Ray Data.

No Qt here, and importing this package does not import Ray (the optional extra
``rcdnet-desktop[cluster]``): :func:`ray_missing` says, in words, what to install. The
pieces, in the order a run uses them:

* :mod:`.sources` -- what to review: image files under folders (shared storage), or the
  series a DICOMweb service lists (QIDO-RS) for a date range and modality;
* :mod:`.keys` -- what identifies an image across runs (its content's sha256, or its SOP
  Instance UID) and the UIDs of the results sent back;
* :mod:`.state` -- the output folder, which is the run's state: whole Parquet shards only,
  the rows done, and the tables made from them (the CSV of ``rcdnet classify``);
* :mod:`.stages` -- the work done on the cluster: reading and decoding as Ray tasks, the
  model in a pool of actors, each with its own verified copy of the model bundle;
* :mod:`.pipeline` -- the Ray Data pipeline, run from this machine;
* :mod:`.summary` -- per-study and per-patient summaries;
* :mod:`.progress` -- the progress bar of the machine that runs the command;
* :mod:`.cluster` -- an embedded Ray on this machine, or a cluster by address.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'rcdnet-desktop[cluster]'"
"""How to install what ``rcdnet archive`` needs."""


def ray_missing() -> str | None:
    """Why ``rcdnet archive`` cannot run here, in words, or None when Ray Data is installed.

    Looks for the modules without importing them (importing Ray takes a second)."""
    for module in ("ray", "pyarrow", "pandas"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return (f"rcdnet archive runs on Ray Data, which is not installed here ({module} "
                    f"is missing): install it with {INSTALL_HINT}")
    return None
