"""Who and what an image is: the patient and study words for the viewer's banner and the
grouping of the image list.

Plain Python, no Qt. The words come from the DICOM header the readers keep
(:class:`~rcdnet_desktop.core.types.PatientInfo`, :class:`~rcdnet_desktop.core.types.StudyInfo`);
plain image files (PNG, JPEG, ...) have none and say so. Nothing here goes into an export:
the reports print the patient only when asked (:mod:`rcdnet_desktop.core.export`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rcdnet_desktop.core.export.report import format_person_name
from rcdnet_desktop.core.measure import Calibration
from rcdnet_desktop.core.types import ImageRecord

NO_PATIENT_DATA = "No patient data (plain image file)"
"""The banner of an image file without a DICOM header."""

FILES_WITHOUT_PATIENT = "Files without patient data"
"""The image list's section of plain image files."""

UNNAMED_PATIENT = "Patient without name or ID"
UNDATED_STUDY = "Study without a date"
SEPARATOR = "  \N{MIDDLE DOT}  "

_DATE = re.compile(r"^(\d{4})[.\-]?(\d{2})[.\-]?(\d{2})$")


def format_date(value: str) -> str:
    """A DICOM date (``20110525``, or the old ``2011.05.25``) as ``2011-05-25``; other text
    as it is."""
    value = (value or "").strip()
    m = _DATE.match(value)
    return f"{m[1]}-{m[2]}-{m[3]}" if m else value


def patient_name(record: ImageRecord) -> str:
    """The patient's name as people read it: ``DOE^JANE`` becomes ``DOE, JANE``."""
    return format_person_name(record.patient.name)


def patient_title(record: ImageRecord) -> str:
    """The image list's patient heading: ``"DOE, JANE  ·  ID 12345"``."""
    if not record.is_dicom:
        return FILES_WITHOUT_PATIENT
    bits = [b for b in (patient_name(record),
                        f"ID {record.patient.patient_id}" if record.patient.patient_id else "")
            if b]
    return SEPARATOR.join(bits) or UNNAMED_PATIENT


def study_title(record: ImageRecord) -> str:
    """The image list's study heading: ``"2011-05-25  ·  Breast ultrasound"``."""
    s = record.study
    bits = [format_date(s.study_date) or UNDATED_STUDY, s.study_description]
    return SEPARATOR.join(b for b in bits if b)


def patient_key(record: ImageRecord) -> tuple[str, ...]:
    """What makes two images the same patient (name and ID); one key for all plain files."""
    if not record.is_dicom:
        return ("",)
    return ("dicom", record.patient.name.strip().upper(), record.patient.patient_id.strip())


def study_key(record: ImageRecord) -> tuple[str, ...]:
    """What makes two images of a patient the same study: its UID, else its date and words."""
    s = record.study
    if s.study_instance_uid:
        return ("uid", s.study_instance_uid)
    return ("words", s.study_date, s.study_description)


def scanner(record: ImageRecord) -> str:
    """Manufacturer and model, e.g. ``"Philips Medical Systems CX50"`` ("" when unknown)."""
    s = record.study
    return " ".join(b for b in (s.manufacturer, s.manufacturer_model) if b)


@dataclass(frozen=True)
class Banner:
    """The banner above the image: a patient line and a study line."""

    patient: str
    study: str = ""

    @property
    def text(self) -> str:
        return "\n".join(b for b in (self.patient, self.study) if b)


def banner(record: ImageRecord) -> Banner:
    """The patient and study words of an image, for the banner above it.

    E.g. ``DOE, JANE  ·  ID 12345  ·  born 1970-01-01`` and ``Study 2011-05-25  ·
    Breast ultrasound  ·  US  ·  Philips Medical Systems CX50``; a plain image file has
    :data:`NO_PATIENT_DATA`.
    """
    if not record.is_dicom:
        return Banner(NO_PATIENT_DATA)
    p, s = record.patient, record.study
    who = [patient_name(record) or "Name not recorded",
           f"ID {p.patient_id}" if p.patient_id else "ID not recorded"]
    who.append(f"born {format_date(p.birth_date)}" if p.birth_date
               else "birth date not recorded")
    if p.sex:
        who.append(f"sex {p.sex}")
    what = [f"Study {format_date(s.study_date)}" if s.study_date else UNDATED_STUDY]
    what += [b for b in (s.study_description, s.modality, scanner(record)) if b]
    return Banner(SEPARATOR.join(who), SEPARATOR.join(what))


@dataclass(frozen=True)
class ImageContext:
    """What the viewer shows around an image: its file, banner and scale."""

    path: Path
    is_dicom: bool
    banner: Banner
    calibration: Calibration = field(default_factory=Calibration)


def image_context(record: ImageRecord) -> ImageContext:
    return ImageContext(record.path, record.is_dicom, banner(record), Calibration.of(record))


__all__ = [
    "FILES_WITHOUT_PATIENT",
    "NO_PATIENT_DATA",
    "Banner",
    "ImageContext",
    "banner",
    "image_context",
    "format_date",
    "patient_key",
    "patient_name",
    "patient_title",
    "scanner",
    "study_key",
    "study_title",
]
