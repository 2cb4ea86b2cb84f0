"""The work done on the cluster: reading and decoding as Ray tasks, the model in actors.

Nothing here imports Ray at the top; these functions and the :class:`ReviewWorker` class are
what :mod:`.pipeline` hands to Ray Data. Each stage passes rows of
:data:`~rcdnet_desktop.archive.state.FIELDS` (text) plus ``payload``: the image read,
pickled, for the model stage. A row whose ``already`` is ``yes`` is an image an earlier run
did (found so once its key was known), passed on only to be counted.

Reading is :func:`rcdnet_desktop.core.batch.read_for_review` and classifying
:func:`rcdnet_desktop.core.batch.review_read`: the same functions as ``rcdnet classify``,
so an archive row is the row classify writes for the same file (its ``file`` aside, which for
a PACS instance is its WADO-RS address). A clip's other frames are decoded one at a time as
the sweep asks for them, on the model's worker, as in classify; a clip fetched from a PACS
therefore travels as its file's bytes.

**The model bundle on the workers.** The machine that runs the command puts the bundle's
files in Ray's object store once. Each model worker writes them (whole files only) into a
folder named after the model card's sha256 in its machine's temporary folder, checks the
card's sha256 against the one the command sent, and opens the bundle with the same code as
classify, which checks the sha256 of every graph against the card before ONNX Runtime reads
it. A worker whose files do not verify refuses to start, saying why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rcdnet_desktop.archive.keys import content_key, instance_key, sr_uids
from rcdnet_desktop.archive.sources import instance_url
from rcdnet_desktop.archive.state import FIELDS, blank_row
from rcdnet_desktop.core import pacs
from rcdnet_desktop.core.atomic import atomic_write, remove_file, remove_tree
from rcdnet_desktop.core.batch import read_for_review, review_read
from rcdnet_desktop.core.errors import ExportExistsError, WeightsError
from rcdnet_desktop.core.export.batch_csv import batch_row
from rcdnet_desktop.core.export.dicom_sr import dicom_sr_dataset
from rcdnet_desktop.core.export.formats import NOT_DICOM
from rcdnet_desktop.core.files import not_regular
from rcdnet_desktop.core.model.card import CARD_FILE
from rcdnet_desktop.core.model.engine import InferenceEngine
from rcdnet_desktop.core.model.onnx_graphs import ONNX_CUDA_ENV, ONNX_THREADS_ENV
from rcdnet_desktop.core.types import ImageRecord

EXTRA = ("payload", "already")
"""Columns between the stages only: the image read (pickled), and ``yes`` for an image done
in an earlier run."""

READ, DICOM_BYTES = "read", "dicom"
"""Kinds of payload: the record (or the item saying why there is none) as read, or a clip's
DICOM file as fetched (read again on the model's worker, whose sweep decodes its frames)."""


def _pack(kind: str, value) -> bytes:
    from ray import cloudpickle

    return cloudpickle.dumps((kind, value))


def _unpack(data: bytes):
    import pickle

    return pickle.loads(data)


def _already(key: str, **where: str) -> dict:
    """The row of an image an earlier run did: its key, and where it was found (its
    ``file``, or its ``series_uid``), so the run can tell its item came back."""
    return {**blank_row(key=key, **where), "payload": b"", "already": "yes"}


def _read(base: dict, path: Path):
    """The row of a file read (its identity filled in) and what was read."""
    read = read_for_review(path)
    if isinstance(read, ImageRecord):
        base.update(_identity(read))
    return {**base, "already": ""}, read


def _identity(record) -> dict[str, str]:
    """The DICOM identity of a record (empty for other files)."""
    if not record.is_dicom:
        return {}
    return {"patient_id": record.patient.patient_id, "study_uid": record.study.study_instance_uid,
            "series_uid": record.study.series_instance_uid,
            "sop_uid": record.study.sop_instance_uid, "study_date": record.study.study_date}


def read_file(item: dict, *, done: frozenset[str]) -> list[dict]:
    """Ray task: one file of a folder source, read and decoded (or its failure, in words)."""
    path = Path(item["path"])
    base = _file_row(item)
    if base["key"] in done:
        return [_already(base["key"], file=item["path"])]
    row, read = _read(base, path)
    row["payload"] = _pack(READ, read)
    return [row]


def _file_row(item: dict) -> dict[str, str]:
    """The row of a folder's item before it is read: where it is, and its key."""
    path = Path(item["path"])
    base = blank_row(file=item["path"], source="folder", file_size=item["size"],
                     file_mtime_ns=item["mtime_ns"])
    try:
        # a pipe or device is never opened: read_for_review says why in its row
        base["key"] = f"path:{path}" if not_regular(path) is not None else content_key(path)
    except OSError:
        base["key"] = f"path:{path}"  # unreadable: read_for_review says why in its row
    return base


def item_failed(item: dict, source: str, node, why: str) -> dict:
    """The failed row of an item no row came back for (``why``: the reason), marked for
    another try in the next run: a folder's file under its key, a PACS series as a whole."""
    if source == "folder":
        row = _file_row(item)
        row.update(status="failed", error=f"{item['path']}: {why}", transient="yes")
        return {**row, "payload": b"", "already": ""}
    return _series_failed(node, _match(item), why)


def _match(item: dict):
    """The :class:`~rcdnet_desktop.core.pacs.Match` of a PACS series item."""
    n = int(item["instances"])
    return pacs.Match(level="series", study_uid=item["study_uid"],
                      series_uid=item["series_uid"], patient_id=item["patient_id"],
                      study_date=item["study_date"], instances=None if n < 0 else n)


def fetch_series(item: dict, *, node, done: frozenset[str]) -> list[dict]:
    """Ray task: one series of a DICOMweb source, fetched (WADO-RS) and decoded.

    The instances land in a private cache folder removed when the task ends. A series that
    could not be fetched whole gives one failed row for what is missing, marked for another
    try in the next run.
    """
    study, series = item["study_uid"], item["series_uid"]
    match = _match(item)
    folder = Path(tempfile.mkdtemp(prefix="rcdnet-archive-fetch-"))
    rows: list[dict] = []
    try:
        try:
            result = pacs.retrieve(node, [match], pacs.PacsCache(folder))
        except pacs.PacsError as exc:
            return [_series_failed(node, match, str(exc))]
        for inst in result.instances:
            key = instance_key(inst.sop_uid)
            if key in done:
                rows.append(_already(key, series_uid=series))
                continue
            base = blank_row(file=instance_url(node, study, series, inst.sop_uid), key=key,
                             source="dicomweb", patient_id=inst.patient_id, study_uid=study,
                             series_uid=series, sop_uid=inst.sop_uid,
                             study_date=inst.study_date or item["study_date"])
            row, read = _read(base, inst.path)
            clip = isinstance(read, ImageRecord) and read.frame_count > 1
            row["payload"] = (_pack(DICOM_BYTES, inst.path.read_bytes()) if clip
                              else _pack(READ, read))
            rows.append(row)
        if result.problem:
            rows.append(_series_failed(node, match, result.problem))
    finally:
        remove_tree(folder)
    return rows


def _series_failed(node, match, why: str) -> dict:
    url = instance_url(node, match.study_uid, match.series_uid, "").removesuffix("/instances/")
    return {**blank_row(file=url, key=f"series:{match.series_uid}", source="dicomweb",
                        status="failed", error=why, transient="yes",
                        patient_id=match.patient_id, study_uid=match.study_uid,
                        series_uid=match.series_uid, study_date=match.study_date),
            "payload": b"", "already": ""}


def bundle_files(model_dir: Path) -> dict[str, bytes]:
    """The bundle's files (every regular file of its folder), to send to the workers."""
    return {p.name: p.read_bytes() for p in sorted(model_dir.iterdir()) if p.is_file()}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ReviewWorker:
    """Ray actor: one model engine (one ONNX Runtime session per graph, one thread each on
    the CPU, or on the worker's GPU: :func:`worker_engine`), classifying the rows read.

    Parameters
    ----------
    bundle : list
        One element: the object reference of the bundle's files (:func:`bundle_files`).
    settings : dict
        ``card_sha256``, ``model_version`` and ``model_id`` (what the command verified and
        what the shards record), ``device``,
        ``frame``, ``auto_box``, ``sweep``, ``threads``, and ``send_node`` (a PACS node for
        ``--send-sr``, or None).

    Raises
    ------
    rcdnet_desktop.core.errors.WeightsError
        The bundle's files do not verify here, or are another model than the command's.
    """

    def __init__(self, bundle: list, settings: dict) -> None:
        self.settings = settings
        folder = _bundle_folder(bundle[0], settings["card_sha256"])
        self.engine = worker_engine(folder, settings)
        if self.engine.model_version != settings["model_version"]:
            raise WeightsError(f"{folder}: this worker opened model {self.engine.model_version}, "
                               f"not {settings['model_version']}")
        self.scratch = Path(tempfile.mkdtemp(prefix="rcdnet-archive-clip-"))

    def __call__(self, batch: dict) -> dict:
        rows = [{k: _text(batch[k][i]) if k != "payload" else batch[k][i] for k in batch}
                for i in range(len(batch["key"]))]
        todo = [r for r in rows if r.get("payload") is not None and len(r["payload"])]
        read, made = [], []
        for r in todo:
            kind, value = _unpack(bytes(r["payload"]))
            if kind == DICOM_BYTES:
                path = self._scratch_file(r["key"], value)
                made.append(path)
                value = read_for_review(path)
            read.append((value, None))
        s = self.settings
        try:
            items = review_read(self.engine, read, frame=s["frame"], auto_box=s["auto_box"],
                                sweep=s["sweep"])
        finally:
            for path in made:
                remove_file(path)
        for r, (value, _), item in zip(todo, read, items, strict=True):
            file = r["file"]
            r.update(batch_row(item))
            r["file"] = file
            r["model_version"] = s["model_id"]
            if s["send_node"] is not None and item.prediction is not None:
                r["sr"] = send_sr(s["send_node"], value, item.prediction, s["model_id"])
                if r["sr"] != "sent":
                    r["warnings"] = "; ".join(filter(None, (r["warnings"], r["sr"])))
        return {k: [r.get(k, "") for r in rows] for k in (*FIELDS, "already")}

    def _scratch_file(self, key: str, data: bytes) -> Path:
        path = self.scratch / f"{sha256_hex(key.encode())[:16]}.dcm"
        return atomic_write(path, lambda fh: fh.write(data), overwrite=True)


def worker_engine(folder: Path, settings: dict):
    """The model engine of a worker: the bundle's ONNX graphs in ONNX Runtime, with
    ``settings["threads"]`` threads per session on the CPU, or with ``settings["device"] ==
    "cuda"`` on the worker's GPU through ONNX Runtime's CUDA provider (Ray gives the worker
    its own GPU). Where ONNX Runtime has no CUDA provider, the graphs run on the CPU and every
    result's warnings say so (the engine's device note), as classify says a GPU it could not
    use."""
    if settings.get("threads"):
        import cv2

        os.environ[ONNX_THREADS_ENV] = str(settings["threads"])
        # OpenCV's own pool (resizing, in the preparation) would otherwise start one thread
        # per core of the machine in each worker: the workers would fight over the cores.
        cv2.setNumThreads(settings["threads"])
    if settings["device"] == "cuda":
        os.environ[ONNX_CUDA_ENV] = "1"
    # The ONNX backend whatever the device: its sessions' providers place it (and the torch
    # device "cpu" keeps torch from being imported to look for a GPU).
    return InferenceEngine(model_dir=folder, device="cpu", backend="onnx")


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return "" if value is None else str(value)


def _bundle_folder(ref, card_sha256: str) -> Path:
    """The bundle's files written on this machine (once), the card checked by its sha256."""
    import ray

    files: dict[str, bytes] = ray.get(ref)
    folder = Path(tempfile.gettempdir()) / f"rcdnet-archive-bundle-{card_sha256[:16]}"
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        # A file there already was written by another worker of this machine: the card's
        # sha256 is checked below, the graphs' when the bundle is opened.
        with contextlib.suppress(ExportExistsError):
            atomic_write(folder / name, lambda fh, d=data: fh.write(d), overwrite=False)
    card = (folder / CARD_FILE).read_bytes()
    if sha256_hex(card) != card_sha256:
        raise WeightsError(f"{folder / CARD_FILE}: sha256 {sha256_hex(card)} is not the model "
                           f"card's that the run was started with ({card_sha256})")
    return folder


def send_sr(node, record, prediction, model_version: str) -> str:
    """Store the result's SR on ``node`` (STOW-RS or C-STORE) under UIDs derived from the
    source instance and the model (:func:`~rcdnet_desktop.archive.keys.sr_uids`): ``sent``,
    or ``not sent: why``. The SR is made by the one SR writer
    (:func:`~rcdnet_desktop.core.export.dicom_sr.dicom_sr_dataset`), filed under the source's
    patient and study as ``rcdnet classify --send`` files it."""
    if not getattr(record, "is_dicom", False):
        return f"not sent: {NOT_DICOM}"
    try:
        ds = dicom_sr_dataset(record, prediction, include_patient=True)
        series, sop = sr_uids(record.study.sop_instance_uid, model_version)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series, sop
        if getattr(ds, "file_meta", None) is not None and \
                "MediaStorageSOPInstanceUID" in ds.file_meta:
            ds.file_meta.MediaStorageSOPInstanceUID = sop
        result = pacs.store(node, [ds])
    except (pacs.PacsError, ValueError) as exc:
        return f"not sent: {exc}"
    except Exception as exc:  # a run must outlive any one image, whatever it holds
        return f"not sent: unexpected {type(exc).__name__}: {exc}"
    return "sent" if result.ok else "not sent: " + "; ".join(result.refused)


__all__: Sequence[str] = ("ReviewWorker", "bundle_files", "fetch_series", "item_failed",
                          "read_file", "send_sr", "worker_engine")
