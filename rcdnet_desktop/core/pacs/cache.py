"""The local cache of retrieved DICOM instances: complete files only, whatever happens.

No Qt here. Retrieved instances land in ``<cache>/<study>/<series>/<instance>.dcm``, where
each part is a short hash of the UID (file names carry no patient data). A retrieve receives
into a private staging folder (``<cache>/.incoming-<random>``, :func:`atomic.staging_folder
<rcdnet_desktop.core.atomic.staging_folder>`): each instance is written there with
:func:`~rcdnet_desktop.core.atomic.atomic_write`, read back to check that it is a whole
DICOM file, and only then moved to its place in the cache in one rename. When the retrieve
ends -- complete, failed half-way or cancelled -- the staging folder is removed with anything
still in it: the cache holds the complete instances received, and nothing else. Staging
folders left by a program that was killed are removed the next time the cache is opened.

The default folder is ``$RCDNET_PACS_CACHE``, else ``$XDG_CACHE_HOME/rcdnet-desktop/pacs``
(``~/.cache/...``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rcdnet_desktop.core.atomic import (
    STAGING_PREFIX,
    atomic_write,
    move_file,
    remove_file,
    remove_tree,
    staging_folder,
)
from rcdnet_desktop.core.errors import ExportError

CACHE_ENV = "RCDNET_PACS_CACHE"
STALE_STAGING_S = 3600.0
"""A staging folder untouched this long belongs to a program that is gone."""


def default_cache_dir() -> Path:
    """``$RCDNET_PACS_CACHE``, else ``$XDG_CACHE_HOME/rcdnet-desktop/pacs``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rcdnet-desktop" / "pacs"


def uid_key(uid: str) -> str:
    """A short, stable file name for a UID (16 hex digits of its SHA-1)."""
    return hashlib.sha1((uid or "unknown").encode("ascii", "replace")).hexdigest()[:16]


@dataclass(frozen=True)
class CachedInstance:
    """One complete instance in the cache, with what it needs to be sorted and grouped."""

    path: Path
    patient_id: str
    patient_name: str
    study_uid: str
    study_date: str
    series_uid: str
    series_number: int
    instance_number: int
    sop_uid: str

    def sort_key(self) -> tuple:
        return (self.patient_name.lower(), self.patient_id, self.study_date, self.study_uid,
                self.series_number, self.series_uid, self.instance_number, self.sop_uid)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def describe(ds, path: Path) -> CachedInstance:
    """The cache entry of ``ds`` stored at ``path``."""
    return CachedInstance(path=path, patient_id=str(ds.get("PatientID", "") or ""),
                          patient_name=str(ds.get("PatientName", "") or ""),
                          study_uid=str(ds.get("StudyInstanceUID", "") or ""),
                          study_date=str(ds.get("StudyDate", "") or ""),
                          series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
                          series_number=_int(ds.get("SeriesNumber")),
                          instance_number=_int(ds.get("InstanceNumber")),
                          sop_uid=str(ds.get("SOPInstanceUID", "") or ""))


class PacsCache:
    """A cache folder (created when first written).

    Parameters
    ----------
    root : str or Path, optional
        The folder; :func:`default_cache_dir` when None.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self._cleaned = False

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return self.root / uid_key(study_uid) / uid_key(series_uid) / f"{uid_key(sop_uid)}.dcm"

    def clean_stale(self, older_than_s: float = STALE_STAGING_S) -> int:
        """Remove staging folders nobody has touched for ``older_than_s`` (a killed program's);
        returns how many."""
        removed = 0
        if not self.root.is_dir():
            return 0
        now = time.time()
        for entry in self.root.iterdir():
            if not entry.name.startswith(STAGING_PREFIX) or not entry.is_dir():
                continue
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime >= older_than_s:
                    remove_tree(entry)
                    removed += 1
        return removed

    def files(self) -> list[Path]:
        """Every complete instance in the cache."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*/*/*.dcm") if p.is_file())

    @contextlib.contextmanager
    def receive(self) -> Iterator[Receiver]:
        """Receive instances for one retrieve (see the module's docstring).

        Raises
        ------
        ExportError
            The cache folder cannot be written.
        """
        if not self._cleaned:
            self._cleaned = True
            self.clean_stale()
        with staging_folder(self.root) as folder:
            receiver = Receiver(self, folder)
            try:
                yield receiver
            finally:
                receiver.close()


class Receiver:
    """Takes instances as they arrive (from any thread) and puts complete ones in the cache.

    After :meth:`close` (the end of :meth:`PacsCache.receive`) nothing more is accepted, so no
    file can appear once the retrieve is over.
    """

    def __init__(self, cache: PacsCache, staging: Path) -> None:
        self.cache = cache
        self.staging = staging
        self.received: list[CachedInstance] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        self._n = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Accept nothing more (waits for an instance being written to finish)."""
        with self._lock:
            self._closed = True

    def add_encoded(self, data: bytes, ds) -> CachedInstance:
        """Store one instance given as a whole DICOM file's bytes (preamble, file meta and
        data set) and its decoded header ``ds`` (for its UIDs).

        Raises
        ------
        ExportError
            It could not be written or is not a complete DICOM file; nothing of it remains.
        RuntimeError
            The retrieve is over (cancelled or finished).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the retrieve is over; the instance was not kept")
            self._n += 1
            staged = self.staging / f"{self._n:06d}.dcm"
            target = self.cache.instance_path(str(ds.get("StudyInstanceUID", "")),
                                              str(ds.get("SeriesInstanceUID", "")),
                                              str(ds.get("SOPInstanceUID", "")))
            try:
                atomic_write(staged, lambda fh: fh.write(data), overwrite=True)
                header = _check_complete(staged)
                move_file(staged, target)
            except ExportError:
                remove_file(staged)
                raise
            entry = describe(header, target)
            self.received.append(entry)
            return entry

    def add_dataset(self, ds) -> CachedInstance:
        """Store one instance given as a pydicom Dataset (with ``file_meta``)."""
        buffer = io.BytesIO()
        try:
            ds.save_as(buffer, enforce_file_format=True)
        except Exception as exc:  # noqa: BLE001 - an odd data set from a server
            raise ExportError(self.staging, f"the instance cannot be encoded: {exc}") from exc
        return self.add_encoded(buffer.getvalue(), ds)


def _check_complete(path: Path):
    """Read back the header of a file just written; its header (ExportError when broken)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if not ds.get("SOPInstanceUID"):
            raise ValueError("it has no SOP Instance UID")
    except Exception as exc:  # noqa: BLE001 - whatever is wrong, the file is not kept
        raise ExportError(path, f"the received instance is not a complete DICOM file: "
                                f"{exc}") from exc
    return ds


def sorted_instances(entries: Sequence[CachedInstance]) -> list[CachedInstance]:
    """Grouped by patient and study, series and instances in number order."""
    return sorted(entries, key=CachedInstance.sort_key)


__all__: Sequence[str] = ("CACHE_ENV", "CachedInstance", "PacsCache", "Receiver",
                          "default_cache_dir", "describe", "sorted_instances", "uid_key")
