"""What DICOM TLS and the audit trail cost, on this machine (printed, not a test).

Starts two throw-away Orthancs on loopback ports (``tests/pacs/orthanc_server.py``) holding the
same ultrasound study of pydicom-data, one plain and one with DICOM TLS (certificates made on
the spot, client certificate required), and measures, median of ``--runs``, each operation on
both: C-ECHO, a study-level C-FIND, a C-GET of the study into an empty cache. Printed as the
ratio TLS / plain. Then the cost of one audit event (one O_APPEND write and fsync, in a
temporary folder) as a share of the plain C-GET it would record.

Usage::

    python benchmarks/bench_pacs_tls.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    from pydicom.data import get_testdata_file

    from rcdnet_desktop.core import audit, pacs
    from tests.pacs.certs import make_pki
    from tests.pacs.orthanc_server import APP_AET, DicomTls, OrthancServer

    with tempfile.TemporaryDirectory() as tmp:
        os.environ[audit.AUDIT_DIR_ENV] = str(Path(tmp) / "audit")
        pki = make_pki(Path(tmp) / "pki")
        plain = OrthancServer(Path(tmp) / "plain")
        secure = OrthancServer(Path(tmp) / "tls", tls=DicomTls(pki.server.cert, pki.server.key,
                                                                pki.ca))
        with plain, secure:
            for server in (plain, secure):
                for name in ("US1_UNCR.dcm", "US1_J2KR.dcm"):
                    server.upload(get_testdata_file(name))
            nodes = {
                "plain": pacs.PacsNode(name="plain", ae_title=plain.aet, host="127.0.0.1",
                                       port=plain.dicom_port, calling_ae_title=APP_AET),
                "tls": pacs.PacsNode(name="tls", ae_title=secure.aet, host="127.0.0.1",
                                     port=secure.dicom_port, calling_ae_title=APP_AET,
                                     tls=True, ca_file=str(pki.ca),
                                     cert_file=str(pki.client.cert),
                                     key_file=str(pki.client.key)),
            }
            query = pacs.Query(patient_id="13US1")
            results: dict[str, dict[str, float]] = {}
            counter = iter(range(10_000))  # a new, empty cache for every retrieve
            for kind, node in nodes.items():
                study = pacs.find(node, query)
                results[kind] = {
                    "echo": _median(lambda n=node: pacs.echo(n), args.runs),
                    "find": _median(lambda n=node: pacs.find(n, query), args.runs),
                    "get": _median(lambda n=node, s=study: pacs.retrieve(
                        n, s, pacs.PacsCache(Path(tmp) / f"cache-{next(counter)}")),
                        args.runs),
                }
        print(f"{'operation':<10}{'plain':>10}{'TLS':>10}{'TLS / plain':>14}")
        for op in ("echo", "find", "get"):
            p, t = results["plain"][op], results["tls"][op]
            print(f"{op:<10}{p * 1000:>8.1f}ms{t * 1000:>8.1f}ms{t / p:>13.2f}x")
        event = _median(lambda: audit.record_event(
            "retrieve", objects=audit.study_objects("1.2.3", "1.2.3.4", "1.2.3.4.5"),
            source={"node": "bench"}), max(args.runs, 50))
        print(f"audit event (write + fsync): {event * 1000:.2f} ms = "
              f"{event / results['plain']['get']:.3f}x of a plain C-GET of the study")
    return 0


if __name__ == "__main__":
    sys.exit(main())
