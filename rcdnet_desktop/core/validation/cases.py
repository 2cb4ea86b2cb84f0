"""The labelled cases of a local validation: which file, which truth, which mask, which patient.

No Qt here. Two ways to give them:

* **class folders**: a folder holding ``benign/`` and ``malignant/`` (any case, nested folders
  included). An image ``X_mask.png`` (or ``X_mask_1.png``, ...) beside an image ``X`` is X's
  lesion mask, not a case of its own.
* **a CSV file** ``path,label[,mask][,patient]``: the label is ``benign``/``malignant`` or
  ``0``/``1``; relative paths are relative to the CSV's folder. With a header row the columns
  are found by name (``path`` or ``file``, ``label``, ``cls`` or ``class``, ``mask``,
  ``patient`` or ``patient_id``; others are ignored), without one they are taken in that
  order.

The patient of a case comes from the CSV's patient column, else from the DICOM file's
PatientID, else each file is its own patient (:data:`PATIENT_SOURCES`): the confidence
intervals resample patients, and a report says how the patients were found.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from rcdnet_desktop.core.files import not_regular
from rcdnet_desktop.core.io import find_images, is_dicom_file
from rcdnet_desktop.core.io.dicom_info import text
from rcdnet_desktop.core.io.files import open_regular

LABELS = {"benign": 0, "malignant": 1, "0": 0, "1": 1}
"""Accepted labels (case-insensitive): 0 = benign, 1 = malignant, as everywhere."""

CLASS_FOLDERS = ("benign", "malignant")
"""The class folders of a folder of cases, in label order."""

PATIENT_SOURCES = {"csv": "the CSV's patient column", "dicom": "the DICOM PatientID",
                   "file": "none found: each file counted as its own patient"}
"""Where a case's patient came from, in words."""

_COLUMNS = {"path": ("path", "file", "image"), "label": ("label", "cls", "class"),
            "mask": ("mask",), "patient": ("patient", "patient_id")}
_MASK_NAME = re.compile(r"^(?P<stem>.+)_mask(_\d+)?$", re.IGNORECASE)


class CasesError(ValueError):
    """The cases cannot be read (bad CSV, missing class folders); the message says why."""


@dataclass(frozen=True)
class Case:
    """One labelled image.

    Attributes
    ----------
    path : Path
        The image file (DICOM or an image format the app reads).
    label : int
        0 benign, 1 malignant (the truth, e.g. from pathology).
    masks : tuple of Path
        Binary lesion masks of the image (same size); empty when none.
    patient : str
        The patient the image belongs to ("" until :func:`with_patients`).
    patient_source : str
        A key of :data:`PATIENT_SOURCES` ("" until :func:`with_patients`).
    """

    path: Path
    label: int
    masks: tuple[Path, ...] = ()
    patient: str = ""
    patient_source: str = ""


def read_cases(source: str | Path) -> list[Case]:
    """The cases of a folder of class folders or of a CSV file (see the module's notes).

    Raises
    ------
    CasesError
        The source is missing, a folder without ``benign/`` and ``malignant/``, a CSV with a
        bad row (named by its line), or holds no case.
    """
    source = Path(source)
    if source.is_dir():
        cases = _folder_cases(source)
    elif source.exists():
        other = not_regular(source)
        if other is not None:
            raise CasesError(f"{source}: it is {other}, not a CSV file or a folder")
        cases = _csv_cases(source)
    else:
        raise CasesError(f"{source}: no such file or folder")
    if not cases:
        raise CasesError(f"{source}: no labelled image found")
    return cases


def _folder_cases(root: Path) -> list[Case]:
    try:
        folders = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
    except OSError as exc:
        raise CasesError(f"{root}: cannot list the folder ({exc.strerror or exc})") from exc
    missing = [name for name in CLASS_FOLDERS if name not in folders]
    if missing:
        raise CasesError(f"{root}: expected the class folders benign/ and malignant/ "
                         f"(missing: {', '.join(m + '/' for m in missing)}), or give a CSV "
                         "file path,label[,mask][,patient]")
    cases = []
    for label, name in enumerate(CLASS_FOLDERS):
        files = find_images([folders[name]], recursive=True)
        cases += _pair_masks(files, label)
    return cases


def _pair_masks(files: list[Path], label: int) -> list[Case]:
    """Cases of ``files``, each ``X_mask*`` beside an image ``X`` taken as X's mask."""
    by_stem = {(f.parent, f.stem.lower()): f for f in files}
    masks: dict[Path, list[Path]] = {}
    for f in files:
        m = _MASK_NAME.match(f.stem)
        image = by_stem.get((f.parent, m["stem"].lower())) if m else None
        if image is not None and image != f:
            masks.setdefault(image, []).append(f)
    as_mask = {m for ms in masks.values() for m in ms}
    return [Case(f, label, tuple(sorted(masks.get(f, ())))) for f in files if f not in as_mask]


def _csv_cases(path: Path) -> list[Case]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [(n, row) for n, row in enumerate(csv.reader(fh), start=1)]
    except UnicodeDecodeError as exc:
        raise CasesError(f"{path}: it is not UTF-8 text; save it as UTF-8 (\"CSV UTF-8\")") \
            from exc
    except csv.Error as exc:
        raise CasesError(f"{path}: not a readable CSV file ({exc})") from exc
    except OSError as exc:
        raise CasesError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    rows = [(n, [c.strip() for c in row]) for n, row in rows
            if row and "".join(row).strip() and not row[0].strip().startswith("#")]
    if not rows:
        return []
    columns = _header(rows[0][1])
    if columns is None:
        columns = {"path": 0, "label": 1, "mask": 2, "patient": 3}
    else:
        rows = rows[1:]
    cases: dict[Path, Case] = {}
    for n, row in rows:
        case = _csv_case(path, n, row, columns)
        if case.path in cases:
            raise CasesError(f"{path}:{n}: {row[columns['path']]} is listed twice")
        cases[case.path] = case
    return list(cases.values())


def _header(row: list[str]) -> dict[str, int] | None:
    """Column positions from a header row; None when the row is not a header."""
    names = [c.lower() for c in row]
    found = {key: next((names.index(a) for a in aliases if a in names), None)
             for key, aliases in _COLUMNS.items()}
    if found["path"] is None or found["label"] is None:
        if names and names[0] in _COLUMNS["path"]:
            raise CasesError(f"the header {','.join(row)} names no label column "
                             "(label, cls or class)")
        return None
    return {k: v for k, v in found.items() if v is not None}


def _csv_case(csv_path: Path, line: int, row: list[str], columns: dict[str, int]) -> Case:
    where = f"{csv_path}:{line}"

    def cell(key: str) -> str:
        i = columns.get(key)
        return row[i] if i is not None and i < len(row) else ""

    if len(row) < 2:
        raise CasesError(f"{where}: expected path,label[,mask][,patient], got {len(row)} field")
    name, label = cell("path"), cell("label").lower()
    if not name:
        raise CasesError(f"{where}: the file name is empty")
    if label not in LABELS:
        raise CasesError(f"{where}: the label must be benign or malignant (or 0 or 1), "
                         f"got {cell('label')!r}")
    mask = cell("mask")
    return Case(_resolve(csv_path, name), LABELS[label],
                (_resolve(csv_path, mask),) if mask else (),
                patient=cell("patient"), patient_source="csv" if cell("patient") else "")


def _resolve(csv_path: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else csv_path.parent / p


def dicom_patient_id(path: Path) -> str:
    """The PatientID of a DICOM file ("" for another file, or when it has none)."""
    if not is_dicom_file(path):
        return ""
    try:
        import pydicom

        with open_regular(path) as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True,
                                 specific_tags=["PatientID"])
        return text(ds, "PatientID")
    except Exception:  # a damaged header: the file is its own patient, its read fails later
        return ""


def with_patients(cases: Iterable[Case]) -> list[Case]:
    """The cases with their patient: the CSV's, else the DICOM PatientID, else the file's own.

    Patients of different sources never share an identifier (a CSV's "12" is not the DICOM
    PatientID "12" of another file).
    """
    out = []
    for c in cases:
        if c.patient_source == "csv" and c.patient:
            out.append(replace(c, patient=f"csv:{c.patient}"))
            continue
        pid = dicom_patient_id(c.path)
        if pid:
            out.append(replace(c, patient=f"dicom:{pid}", patient_source="dicom"))
        else:
            out.append(replace(c, patient=f"file:{c.path}", patient_source="file"))
    return out


__all__ = ["CLASS_FOLDERS", "LABELS", "PATIENT_SOURCES", "Case", "CasesError",
           "dicom_patient_id", "read_cases", "with_patients"]
