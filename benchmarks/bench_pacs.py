"""Query-to-first-image from a local PACS, on this machine (printed, not a test).

Starts a throw-away Orthanc on loopback ports (``tests/pacs/orthanc_server.py``), loads one
ultrasound study of pydicom-data into it, and measures, median of ``--runs``:

* find: a study-level search by patient name (C-FIND, or QIDO-RS with ``--web``);
* retrieve: the study into an empty cache (C-GET, C-MOVE with ``--move``, or WADO-RS);
* first image: the first retrieved file read and decoded as the viewer reads it;
* query -> first image: the three together, against the target of 2 s (printed as a ratio).

Usage::

    python benchmarks/bench_pacs.py [--runs 5] [--web] [--move] [--file US1_J2KR.dcm ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--web", action="store_true", help="DICOMweb instead of DICOM")
    ap.add_argument("--move", action="store_true", help="C-MOVE instead of C-GET")
    ap.add_argument("--file", action="append", default=None,
                    help="pydicom-data files of the study (default: US1_UNCR and US1_J2KR)")
    args = ap.parse_args()

    from pydicom.data import get_testdata_file

    from rcdnet_desktop.core import pacs
    from rcdnet_desktop.core.io import read_image
    from tests.pacs.orthanc_server import APP_AET, OrthancServer

    names = args.file or ["US1_UNCR.dcm", "US1_J2KR.dcm"]
    with OrthancServer() as server:
        for name in names:
            server.upload(get_testdata_file(name))
        if args.web:
            node = pacs.PacsNode(name="bench", url=server.dicomweb_url)
        else:
            node = pacs.PacsNode(name="bench", ae_title=server.aet, host="127.0.0.1",
                                 port=server.dicom_port, calling_ae_title=APP_AET,
                                 storage_port=server.scp_port)
            if args.move:
                node = replace(node, retrieve="move")
        times: dict[str, list[float]] = {"find": [], "retrieve": [], "first image": [],
                                          "query -> first image": []}
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as cache_dir:
                t0 = time.perf_counter()
                matches = pacs.find(node, pacs.Query(patient_name="compressed"))
                t1 = time.perf_counter()
                result = pacs.retrieve(node, matches[:1], pacs.PacsCache(cache_dir))
                t2 = time.perf_counter()
                assert result.complete, result.summary()
                read_image(result.files[0])
                t3 = time.perf_counter()
            for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                times[key].append(value)
    how = "DICOMweb" if args.web else ("C-MOVE" if args.move else "C-GET")
    print(f"Query to first image, {len(names)}-image ultrasound study, local Orthanc, {how}, "
          f"median of {args.runs}:")
    for key, values in times.items():
        print(f"  {key:<22} {statistics.median(values) * 1000:8.0f} ms")
    total = statistics.median(times["query -> first image"])
    print(f"  target {TARGET_S:.0f} s: {total / TARGET_S:.2f} of the target "
          f"({'met' if total < TARGET_S else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
