"""What an archive run reviews: files under folders, or the series of a DICOMweb service.

No Ray here: the lists are made on the machine that runs the command, each entry a small dict
(the rows of the pipeline's first dataset), and the images themselves are read on the
cluster (:mod:`.stages`).

* Folders (shared storage every worker can read at the same path): every image file under
  them, sub-folders included, found by the same rule as ``rcdnet classify``
  (:func:`~rcdnet_desktop.core.io.find_images`). A file whose size and modification time
  match a file done in an earlier run is left out without being read.
* A DICOMweb service: the studies QIDO-RS lists for the date range and modality, then their
  series of that modality (:func:`rcdnet_desktop.core.pacs.find`, the node as configured for
  ``rcdnet pacs``); each series is fetched with WADO-RS by a worker
  (:func:`rcdnet_desktop.core.pacs.retrieve`). A series whose every instance is done is left
  out without being fetched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rcdnet_desktop.archive.state import Done
from rcdnet_desktop.core import pacs
from rcdnet_desktop.core.io import find_images


def folder_items(paths: Sequence[Path], done: Done) -> tuple[list[dict], set[str]]:
    """The files to review under ``paths``, and the keys of those left out as done."""
    items, skipped = [], set()
    for path in find_images(paths, recursive=True):
        try:
            st = os.stat(path)
            size, mtime = str(st.st_size), str(st.st_mtime_ns)
        except OSError:
            size = mtime = ""  # the reader says why
        seen = done.seen.get(str(path))
        if size and seen is not None and seen[:2] == (size, mtime):
            skipped.add(seen[2])
            continue
        items.append({"path": str(path), "size": size, "mtime_ns": mtime})
    return items, skipped


def dicomweb_items(node, query, done: Done) -> tuple[list[dict], set[str]]:
    """The series to fetch (one dict each), and the keys of the instances left out as done.

    Raises
    ------
    rcdnet_desktop.core.pacs.PacsError
        The search failed (why, in words).
    """
    items, skipped = [], set()
    for study in pacs.find(node, query):
        series_query = replace(query, level="series", study_uid=study.study_uid,
                               date_from="", date_to="")
        for series in pacs.find(node, series_query):
            n = series.instances
            keys = done.series.get(series.series_uid, [])
            if n is not None and n <= len(keys):
                skipped.update(keys)
                continue
            items.append({"study_uid": series.study_uid, "series_uid": series.series_uid,
                          "instances": -1 if n is None else n,
                          "patient_id": study.patient_id, "study_date": study.study_date})
    return items, skipped


def instance_url(node, study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Where an instance is fetched from (WADO-RS): the ``file`` of its row."""
    return f"{node.url.rstrip('/')}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


__all__: Sequence[str] = ("dicomweb_items", "folder_items", "instance_url")
