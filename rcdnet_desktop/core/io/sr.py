"""The reader of DICOM Structured Reports, in :data:`rcdnet_desktop.core.io.READERS`.

An SR has no pixels: it is a stored result. :class:`SrReader` takes a DICOM file whose SOP
class is a Structured Report (from its file meta, before the DICOM image reader would refuse
it for having no pixel data), reads its content tree (:mod:`.sr_document`) and looks for the
image it refers to in the same folder, then in the folders beside it (a PACS cache files each
series in a folder of its own), by SOP Instance UID, reading only the file meta of each DICOM
file there. The :class:`~rcdnet_desktop.core.types.ImageRecord` it returns keeps the
report's path and carries the document in ``stored``; its pixels, frame, calibration, patient
and study are the source image's when it was found. Without it, ``has_image`` is False, the
pixels a blank stand-in and the patient and study the report's own: the result is shown in
words, or over the image when the viewer has it open elsewhere (:func:`over_source`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import dicom_codes as dc
from ..errors import UnreadableImageError
from ..types import ImageRecord
from .dicom import DICOM_SUFFIXES, has_dicm_preamble, read_dicom
from .dicom_decode import file_meta
from .dicom_info import patient_info, study_info
from .own import own_object
from .pixels import MAX_DATASET_BYTES, plain
from .sr_document import SrDocument, parse_document

MAX_FOLDER_FILES = 2000
"""Files of a folder looked at, at most, for a report's source image."""
MAX_SIBLING_FOLDERS = 32
"""Folders beside the report's looked at, at most, when its own does not hold the image."""


def _meta(path: Path, keyword: str) -> str:
    """A value of the file meta group; "" when there is none (the full read says why)."""
    try:
        meta = file_meta(path)
        return "" if meta is None else str(meta[0].get(keyword, ""))
    except Exception:  # noqa: BLE001 - a damaged header is for the image reader to explain
        return ""


def find_source(folder: Path, uids: tuple[str, ...], skip: Path) -> Path | None:
    """The file whose SOP Instance UID is the first of ``uids`` found in ``folder``, else in
    the folders beside it (a PACS cache or a disc files each series in a folder of its own
    within the study's); None when none is there."""
    if not uids:
        return None
    for place in [folder, *_siblings(folder)]:
        try:
            stamp = os.stat(place).st_mtime_ns
        except OSError:
            continue
        index = _folder_index(place, stamp)
        found = next((index[u] for u in uids if u in index and index[u] != skip), None)
        if found is not None:
            return found
    return None


def _siblings(folder: Path) -> list[Path]:
    """The folders beside ``folder`` (at most :data:`MAX_SIBLING_FOLDERS`, by name)."""
    try:
        with os.scandir(folder.parent) as entries:
            found = sorted(Path(e.path) for e in entries
                           if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
    except OSError:
        return []
    return [f for f in found if f != folder][:MAX_SIBLING_FOLDERS]


@functools.lru_cache(maxsize=8)
def _folder_index(folder: Path, stamp: int) -> dict[str, Path]:
    """SOP Instance UID -> file, of the DICOM files in ``folder`` (their file meta only).

    Kept while the folder is unchanged (``stamp``: its modification time), so a review of a
    folder of reports reads each header once, not once per report.
    """
    index: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)[:MAX_FOLDER_FILES]
    except OSError:
        return index
    for entry in entries:
        try:
            if entry.name.startswith(".") or not entry.is_file():
                continue
        except OSError:
            continue
        path = Path(entry.path)
        if path.suffix and path.suffix.lower() not in DICOM_SUFFIXES:
            continue
        uid = _meta(path, "MediaStorageSOPInstanceUID")
        if uid:
            index.setdefault(uid, path)
    return index


def read_sr(path: Path) -> tuple[SrDocument, object]:
    """The document and its data set (pydicom), read whole (an SR holds no pixels)."""
    import pydicom

    try:
        if os.stat(path).st_size > MAX_DATASET_BYTES:
            raise UnreadableImageError(path, "the structured report is too large to read")
        ds = pydicom.dcmread(path, force=True)
        own = own_object(study_info(ds)) == "sr"
        return parse_document(ds, own), ds
    except UnreadableImageError:
        raise
    except Exception as exc:  # a damaged report says why, like any unreadable file
        raise UnreadableImageError(path, f"the structured report could not be read "
                                         f"({plain(exc)})") from exc


def _stored_frame(doc: SrDocument, default: int) -> int:
    """The frame (0-based) the report's regions are drawn on, else ``default``."""
    frames = [g.region_frame for g in doc.groups if g.region_frame]
    return frames[0] - 1 if frames else default


def over_source(report: ImageRecord, source: ImageRecord) -> ImageRecord | None:
    """``report`` (an SR read without its image) shown over ``source``, an image already open,
    when the report refers to it; None otherwise."""
    doc = report.stored
    if doc is None or not source.has_image or source.stored is not None \
            or source.study.sop_instance_uid not in doc.source_uids:
        return None
    frame = _stored_frame(doc, 0)
    if not 0 <= frame < source.frame_count:
        frame = 0
    return replace(source, path=report.path, stored=doc, pixels=source.frame(frame),
                   pixels_frame=frame)


class SrReader:
    """Structured Reports (files with the DICOM preamble whose class is an SR)."""

    label = "DICOM"
    suffixes = DICOM_SUFFIXES

    def can_read(self, path: Path, head: bytes) -> bool:
        return has_dicm_preamble(head) and \
            _meta(path, "MediaStorageSOPClassUID") in dc.SR_CLASSES

    def read(self, path: Path, frame: int) -> ImageRecord:
        doc, ds = read_sr(path)
        source = find_source(path.parent, doc.source_uids, path)
        if source is not None:
            try:
                image = read_dicom(source, _stored_frame(doc, frame), has_preamble=True)
            except UnreadableImageError:
                image = None
            if image is not None and image.study.sop_instance_uid in doc.source_uids:
                return replace(image, path=path, stored=doc)
        return ImageRecord(path=path, pixels=np.zeros((64, 64), np.uint8),
                           source_format="DICOM", patient=patient_info(ds),
                           study=study_info(ds), stored=doc, has_image=False)


__all__ = ["SrReader", "find_source", "over_source", "read_sr"]
