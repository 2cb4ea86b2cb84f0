"""Image readers: PNG / JPEG / BMP / TIFF (Pillow) and DICOM (pydicom) -> :class:`ImageRecord`.

Every reader returns ``uint8`` pixels shaped ``(H, W)`` for greyscale or ``(H, W, 3)`` for RGB,
whatever the file stored, so the rest of the program deals with one kind of array:

- **Alpha** (RGBA, LA, PA, palette with transparency) is *ignored*: the stored colour values are
  kept as they are, not composited. Ultrasound exports rarely carry meaningful alpha, and
  compositing could hide image content behind a transparent mask.
- **RGB files whose three channels are identical** become greyscale ``(H, W)`` (BUSI and many
  scanner exports store grey images as RGB).
- **More than 8 bits** (16-bit PNG/TIFF, 32-bit integer or float TIFF, DICOM without a window)
  are mapped linearly from the image's own minimum..maximum to 0..255. A constant image becomes
  all zeros.
- **DICOM monochrome**: the Modality LUT (rescale slope/intercept or LUT) is applied, then the
  VOI LUT or the first window (centre/width) with pydicom; without either, 8-bit unsigned data
  is kept as stored and deeper data is mapped by its own range. MONOCHROME1 is inverted so that
  higher values are darker, as the standard asks. PALETTE COLOR goes through the colour LUT; YBR
  is converted to RGB by pydicom (once: pydicom 3 knows when a JPEG decoder already did it).
- **Multi-frame** DICOM (cine) and multi-page TIFF/GIF decode ONE frame at a time:
  ``ImageRecord.frame_loader(i)`` decodes frame ``i`` on demand from the file.
- **Huge input** is refused from the header, before any pixel is decoded: more than
  :data:`MAX_PIXELS_PER_FRAME` pixels or :data:`~.pixels.MAX_FRAME_BYTES` bytes per frame
  (also what a compressed frame's own header claims); a deflated DICOM data set is inflated
  piece by piece and refused past :data:`~.pixels.MAX_DATASET_BYTES`.
- **Only regular files** are opened (links followed): a FIFO, a device or a socket is refused
  before anything is opened, so ``x.dcm`` linked to ``/dev/zero`` cannot hang a review.
- **Library warnings** (pydicom, Pillow, libtiff) are collected, not printed: a refusal says
  why in its own words, and what a reader had to assume is in ``ImageRecord.notes``.

Only :class:`~rcdnet_desktop.core.errors.UnreadableImageError` leaves :func:`read_image`; its
message names the file and says why in words. pydicom is imported only when a DICOM file is
read (start-up time), and this module never imports torch.

This module dispatches. A reader is anything with the small :class:`Reader` interface
(``can_read(path, head_bytes)``, ``read(path, frame)``, its ``label`` and ``suffixes``);
:func:`read_image` walks :data:`READERS` in order and hands the file to the first that can read
it: a DICOM Structured Report first (:mod:`.sr`: a stored result, shown over the image it refers
to, never classified), then DICOM with its preamble (``DICM`` at byte 128), then Pillow (which
recognises its formats by content), then DICOM written without a preamble (by suffix, no suffix,
or a well-formed group 0002/0008 element at the start). The readers live in :mod:`.sr` (with
:mod:`.sr_document`; :mod:`.own` tells this program's own objects apart), :mod:`.pillow` and
:mod:`.dicom` (with :mod:`.dicom_decode`), and the helpers they share (budgets, uint8
conversion, frame checks, wording) in :mod:`.pixels`, where the budgets are defined and read at
run time (:data:`MAX_PIXELS_PER_FRAME` is re-exported here); files are opened by :mod:`.files`
and library output is kept quiet by :mod:`.quiet`. The suffixes are the readers' own:
:data:`IMAGE_SUFFIXES` (what folders are scanned for) and :func:`image_file_filter` (the file
dialog's filter) are built from them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import UnreadableImageError
from ..types import ImageRecord
from . import dicomdir
from .dicom import DICOM_SUFFIXES, DicomReader, looks_like_dicom
from .files import read_head
from .pillow import PillowReader
from .pixels import MAX_PIXELS_PER_FRAME, NOT_SUPPORTED, describe, frame_out_of_range
from .quiet import captured_library_output
from .sr import SrReader

__all__ = [
    "DICOM_SUFFIXES",
    "HEAD_BYTES",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS_PER_FRAME",
    "READERS",
    "Reader",
    "find_images",
    "image_file_filter",
    "is_dicom_file",
    "pick_frame",
    "read_image",
]

HEAD_BYTES = 132
"""How much of the file's start a reader is shown to decide (the DICOM preamble and magic)."""


class Reader(Protocol):
    """One kind of image file.

    Attributes
    ----------
    label : str
        The kind in words, for a file dialog ("DICOM").
    suffixes : tuple of str
        Lower-case suffixes of such files, most common first.
    """

    label: str
    suffixes: tuple[str, ...]

    def can_read(self, path: Path, head: bytes) -> bool:
        """Whether this reader takes the file; ``head`` is its first :data:`HEAD_BYTES` bytes."""
        ...

    def read(self, path: Path, frame: int) -> ImageRecord:
        """Decode the file; raise :class:`UnreadableImageError` with the reason in words."""
        ...


READERS: tuple[Reader, ...] = (
    SrReader(),
    DicomReader(preamble=True),
    PillowReader(),
    DicomReader(preamble=False),
)
"""The readers :func:`read_image` asks, in order; the first that can read a file reads it."""


def _suffixes(readers: Iterable[Reader]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for r in readers for s in r.suffixes))


IMAGE_SUFFIXES = frozenset(_suffixes(READERS))
"""Lower-case suffixes that :func:`find_images` picks up in folders: every reader's."""


def image_file_filter() -> str:
    """The file dialog's filter, built from the readers' suffixes.

    ``"Images (*.dcm ... *.png ... DICOMDIR);;DICOM (*.dcm *.dicom *.dic);;...;;CD or USB
    study (DICOMDIR);;All files (*)"``: every readable suffix and the DICOMDIR index of a
    study on a disc first, then one entry per kind of file, then all files (DICOM files named
    by their UID have no suffix).
    """

    def entry(label: str, patterns: Iterable[str]) -> str:
        return f"{label} ({' '.join(patterns)})"

    def stars(suffixes: Iterable[str]) -> list[str]:
        return ["*" + s for s in suffixes]

    kinds: dict[str, list[Reader]] = {}
    for reader in READERS:
        kinds.setdefault(reader.label, []).append(reader)
    entries = [entry("Images", [*stars(_suffixes(READERS)), dicomdir.NAME])]
    entries += [entry(label, stars(_suffixes(readers))) for label, readers in kinds.items()]
    entries.append(entry("CD or USB study", [dicomdir.NAME]))
    entries.append("All files (*)")
    return ";;".join(entries)


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike[str], frame: int = 0) -> ImageRecord:
    """Read one image file into an :class:`ImageRecord`.

    Parameters
    ----------
    path : str or PathLike
        A PNG, JPEG, BMP, TIFF, GIF, WebP or DICOM file (DICOM is recognised by content, whatever
        the file is called).
    frame : int
        Frame to decode into ``record.pixels`` (0-based); other frames are decoded on demand by
        ``record.frame_loader``.

    Returns
    -------
    ImageRecord
        ``pixels`` is frame ``frame`` (``pixels_frame``) as ``uint8`` ``(H, W)`` or
        ``(H, W, 3)``; ``frame_loader`` is set for files with more than one frame.
        ``source_format`` is ``"DICOM"`` or Pillow's format name (``"PNG"``, ``"JPEG"``, ...);
        ``photometric`` is the DICOM Photometric Interpretation or Pillow's mode (``"L"``,
        ``"RGB"``, ``"P"``, ``"I;16"``, ...); ``bits_stored`` the stored bit depth. DICOM files
        also fill ``patient``, ``study`` and ``regions``.

    Raises
    ------
    UnreadableImageError
        For every failure (missing file, folder, FIFO or device, permission, empty, truncated,
        not an image, no decoder, no pixel data, too large, frame out of range, ...). Nothing
        else escapes.
    """
    p = Path(path)
    try:
        with captured_library_output():
            return _read(p, frame)
    except UnreadableImageError:
        raise
    except Exception as exc:  # a reader must never crash its caller
        wrapped = UnreadableImageError(p, describe(exc))
        if isinstance(exc, (MemoryError, RecursionError)):
            raise wrapped from None  # nothing more to learn from the chain
        raise wrapped from exc


def pick_frame(record: ImageRecord, frame: int) -> int:
    """The frame of ``record`` to classify when ``frame`` is asked for a whole folder.

    A single-frame image has only frame 0, whatever is asked; a cine must have the frame.

    Raises
    ------
    UnreadableImageError
        ``frame`` is beyond the clip: "frame 40 requested but the clip has 34 frames (0-33)".
    """
    if record.frame_count <= 1:
        return 0
    if not 0 <= frame < record.frame_count:
        whole = "clip" if record.is_dicom else "file"
        raise UnreadableImageError(record.path,
                                   frame_out_of_range(frame, record.frame_count, whole))
    return frame


def find_images(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], recursive: bool = False,
    *, notices: list[str] | None = None
) -> list[Path]:
    """List the image files named by ``paths``.

    Files named explicitly are always returned (even with an unknown suffix, or missing, so the
    caller reports why they cannot be read). Folders are scanned for files with a suffix in
    :data:`IMAGE_SUFFIXES` and for DICOM files recognised by content (:func:`is_dicom_file`:
    extension-less, named by UID or with another suffix; only their first bytes are read, and
    only regular files are opened); other files, hidden files and folders, and ``DICOMDIR``
    indexes are skipped. A named pipe, device or socket with an image suffix is listed (the
    caller reports it as not a regular file); one without is left out, unopened.
    A ``DICOMDIR`` named explicitly, or at the top of a folder named, stands for the images it
    lists (:func:`.dicomdir.expand`, once per call); what it could not resolve is said in words
    in ``notices`` when a list is given.

    Parameters
    ----------
    paths : path or iterable of paths
        Files and folders, in the order wanted.
    recursive : bool
        Descend into sub-folders (symbolic links to folders are not followed).
    notices : list of str, optional
        Receives a DICOMDIR's notices (references not found, an index that cannot be read).

    Returns
    -------
    list of Path
        In argument order; each folder's files sorted by path; no duplicates.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    expanded = dicomdir.expand(paths)
    if notices is not None:
        notices.extend(expanded.notices)
    paths = expanded.paths
    out: list[Path] = []
    seen: set[Path] = set()

    def add(f: Path) -> None:
        key = f.absolute()
        if key not in seen:
            seen.add(key)
            out.append(f)

    for item in paths:
        root = Path(item)
        if not root.is_dir():
            add(root)
            continue
        found: list[Path] = []
        if recursive:
            for dirpath, dirnames, filenames in os.walk(root, onerror=lambda _e: None):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found.extend(Path(dirpath) / n for n in filenames)
        else:
            try:
                found = [e for e in root.iterdir() if not e.is_dir()]
            except OSError:
                found = []
        for f in sorted(found, key=lambda q: (str(q.parent).lower(), q.name.lower())):
            if _is_listed_image(f):
                add(f)
    return out


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """True when a regular file starts like DICOM: the ``DICM`` preamble, or a data set
    written without one (a well-formed group 0002 or 0008 element). Reads :data:`HEAD_BYTES`
    bytes at most; a FIFO, device or socket is never opened."""
    p = Path(path)
    if not p.is_file():  # links followed; a FIFO, device or socket is not a file
        return False
    try:
        head = read_head(p, HEAD_BYTES)
    except UnreadableImageError:
        return False
    return looks_like_dicom(head)


# ----------------------------------------------------------------------------------------------
# dispatch
# ----------------------------------------------------------------------------------------------


def _is_listed_image(f: Path) -> bool:
    name = f.name
    if name.startswith(".") or name.upper() == "DICOMDIR":
        return False
    if f.suffix.lower() in IMAGE_SUFFIXES:
        return True
    return is_dicom_file(f)  # never opens a pipe or a device


def _read(p: Path, frame: int) -> ImageRecord:
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
        raise UnreadableImageError(p, f"frame must be a whole number, not {frame!r}")
    frame = int(frame)
    if frame < 0:
        raise UnreadableImageError(p, f"frame {frame} does not exist (frames count from 0)")
    head = read_head(p, HEAD_BYTES)  # a regular file, or refused with the reason
    if not head:
        raise UnreadableImageError(p, "file is empty")
    for reader in READERS:
        if reader.can_read(p, head):
            return reader.read(p, frame)
    raise UnreadableImageError(p, NOT_SUPPORTED)
