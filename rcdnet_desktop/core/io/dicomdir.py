"""DICOMDIR: the index of a CD or USB study (DICOM PS3.10 media), read for the images it lists.

A ``DICOMDIR`` file lists patients, their studies, series and images; each IMAGE record names its
file by a Referenced File ID (``PT000000\\ST000000\\SE000000\\IM000000``), relative to the
DICOMDIR's folder. :func:`read_dicomdir` returns the image files that exist, in the index's
order, and the references it had to skip; :func:`expand` turns a DICOMDIR, or a folder with one
at its top, into those files, with a notice in plain words for what was skipped. File IDs are
matched case-insensitively (discs mounted with lower-case names), and an ID that would leave the
DICOMDIR's folder is refused. pydicom is imported only when an index is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UnreadableImageError
from .files import open_regular

NAME = "DICOMDIR"
IMAGE_RECORD = "IMAGE"


@dataclass(frozen=True)
class DicomdirContents:
    """The images a DICOMDIR lists: ``images`` found on disk, ``missing`` file IDs skipped."""

    path: Path
    images: tuple[Path, ...]
    missing: tuple[str, ...] = ()


@dataclass
class Expanded:
    """Paths with every DICOMDIR (or folder holding one) replaced by its images."""

    paths: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def _present(p: Path) -> bool:
    """Something other than a folder is there; whether it is a regular file is for
    :func:`~.files.open_regular` to say, in words, when it is opened."""
    return p.exists() and not p.is_dir()


def is_dicomdir(path: str | os.PathLike[str]) -> bool:
    """True for a file named DICOMDIR (any case)."""
    p = Path(path)
    return p.name.upper() == NAME and _present(p)


def dicomdir_in(folder: Path) -> Path | None:
    """The DICOMDIR at the top of ``folder``, or None."""
    for name in (NAME, NAME.lower()):
        candidate = folder / name
        if _present(candidate):
            return candidate
    return None


def read_dicomdir(path: str | os.PathLike[str]) -> DicomdirContents:
    """Read a DICOMDIR: the image files it references that exist, and those it could not find.

    Raises
    ------
    UnreadableImageError
        The file is not a regular file or cannot be read as a DICOMDIR (the reason in words).
    """
    import pydicom

    p = Path(path)
    try:
        with open_regular(p) as fh:
            ds = pydicom.dcmread(fh, force=True)
        records = list(ds.DirectoryRecordSequence)
    except UnreadableImageError:
        raise
    except AttributeError:
        raise UnreadableImageError(p, "is not a DICOMDIR index (it lists no records)") from None
    except Exception as exc:  # a damaged index is reported, never raised as something else
        raise UnreadableImageError(p, f"the DICOMDIR index cannot be read ({exc})") from None
    images: list[Path] = []
    missing: list[str] = []
    for record in records:
        if str(record.get("DirectoryRecordType", "")).strip().upper() != IMAGE_RECORD:
            continue
        parts = _file_id(record.get("ReferencedFileID"))
        if not parts:
            continue
        found = _resolve(p.parent, parts)
        if found is None:
            missing.append("/".join(parts))
        elif found not in images:
            images.append(found)
    return DicomdirContents(p, tuple(images), tuple(missing))


def expand(paths: Iterable[str | os.PathLike[str]]) -> Expanded:
    """Replace each DICOMDIR, and each folder with a DICOMDIR at its top, by its images.

    Other paths pass unchanged. A DICOMDIR that cannot be read leaves its folder to be scanned
    as any folder is; skipped references and unreadable indexes get a notice.
    """
    out = Expanded()
    for item in paths:
        p = Path(item)
        index = dicomdir_in(p) if p.is_dir() else p if is_dicomdir(p) else None
        if index is None:
            out.paths.append(p)
            continue
        try:
            contents = read_dicomdir(index)
        except UnreadableImageError as exc:
            out.paths.append(index.parent)
            out.notices.append(f"Cannot use the DICOMDIR {index}: {exc.reason}; the files "
                               "in its folder were opened instead.")
            continue
        out.paths.extend(contents.images)
        notice = missing_notice(contents)
        if notice:
            out.notices.append(notice)
    return out


def missing_notice(contents: DicomdirContents) -> str:
    """Plain words for the references a DICOMDIR could not resolve ("" when none)."""
    if not contents.images and not contents.missing:
        return f"The DICOMDIR in {contents.path.parent} lists no images."
    if not contents.missing:
        return ""
    n, total = len(contents.missing), len(contents.missing) + len(contents.images)
    shown = ", ".join(contents.missing[:3]) + (", ..." if n > 3 else "")
    return (f"{n} of the {total} images listed in the DICOMDIR in {contents.path.parent} "
            f"are not on the disc or folder and were skipped ({shown}).")


def _file_id(value: object) -> list[str]:
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else list(value)  # type: ignore[arg-type]
    out = []
    for part in parts:
        out.extend(s for s in str(part).replace("\\", "/").split("/") if s.strip())
    return [s.strip() for s in out]


def _resolve(root: Path, parts: list[str]) -> Path | None:
    """The file ``parts`` names under ``root`` (each part matched without regard to case)."""
    if any(part in (".", "..") or os.sep in part for part in parts):
        return None
    current = root
    for part in parts:
        exact = current / part
        if exact.exists():
            current = exact
            continue
        try:
            match = next((e for e in current.iterdir() if e.name.upper() == part.upper()
                          or e.name.upper() == f"{part.upper()};1"), None)
        except OSError:
            return None
        if match is None:
            return None
        current = match
    return current if _present(current) else None


__all__ = [
    "NAME",
    "DicomdirContents",
    "Expanded",
    "dicomdir_in",
    "expand",
    "is_dicomdir",
    "missing_notice",
    "read_dicomdir",
]
