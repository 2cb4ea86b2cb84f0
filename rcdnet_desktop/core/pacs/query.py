"""What a user searches for, and what the PACS answers: :class:`Query` and :class:`Match`.

No Qt here. A :class:`Query` is the search form (patient ID or name, a study date range,
modality -- ultrasound by default --, accession number) at one of three levels: patient, study
or series. It becomes a C-FIND identifier (:meth:`Query.dataset`) or QIDO-RS parameters
(:meth:`Query.qido_filters`); each answer becomes a :class:`Match`, whichever transport it
came by.

Names match from their start, whatever the case (``smi`` finds ``SMITH^JOHN``), unless the
text holds its own wildcards (``*`` or ``?``). Dates are ``YYYYMMDD``; either end of the range
may be left open.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

LEVELS = ("patient", "study", "series")
_DATE_RE = re.compile(r"^\d{8}$")


def _date(value: str, what: str) -> str:
    text = (value or "").strip().replace("-", "")
    if text and not _DATE_RE.match(text):
        raise ValueError(f"the {what} date {value!r} is not a date: write it YYYYMMDD or "
                         "YYYY-MM-DD")
    return text


@dataclass(frozen=True)
class Query:
    """A search of the PACS.

    Attributes
    ----------
    level : str
        ``"patient"``, ``"study"`` or ``"series"`` (series of ``study_uid``).
    patient_id, patient_name, accession_number : str
        Empty matches anything. The name matches from its start unless it holds ``*``/``?``.
    date_from, date_to : str
        The study date range, ``YYYYMMDD`` (either may be empty: open).
    modality : str
        ``"US"`` by default; empty for any.
    study_uid : str
        The study whose series are wanted (level ``series``), or one study.
    """

    level: str = "study"
    patient_id: str = ""
    patient_name: str = ""
    date_from: str = ""
    date_to: str = ""
    modality: str = "US"
    accession_number: str = ""
    study_uid: str = ""

    def checked(self) -> Query:
        """This query with its fields trimmed and its dates in ``YYYYMMDD``.

        Raises
        ------
        ValueError
            A bad level, date or a range that ends before it starts, or a series query without
            a study.
        """
        if self.level not in LEVELS:
            raise ValueError(f"the level must be one of {', '.join(LEVELS)}, not {self.level!r}")
        q = replace(self, patient_id=self.patient_id.strip(),
                    patient_name=self.patient_name.strip(),
                    date_from=_date(self.date_from, "first"), date_to=_date(self.date_to, "last"),
                    modality=self.modality.strip().upper(),
                    accession_number=self.accession_number.strip(),
                    study_uid=self.study_uid.strip())
        if q.date_from and q.date_to and q.date_from > q.date_to:
            raise ValueError(f"the date range ends ({q.date_to}) before it starts "
                             f"({q.date_from})")
        if q.level == "series" and not q.study_uid:
            raise ValueError("a search for series needs the study")
        for text, what in ((q.patient_id, "patient ID"), (q.patient_name, "patient name"),
                           (q.accession_number, "accession number")):
            if "\\" in text:
                raise ValueError(f"the {what} may not hold a backslash")
        return q

    @property
    def date_range(self) -> str:
        """The DICOM range matching value: ``A-B``, ``A-``, ``-B``, ``A`` or empty."""
        if self.date_from and self.date_to:
            return self.date_from if self.date_from == self.date_to else \
                f"{self.date_from}-{self.date_to}"
        if self.date_from:
            return f"{self.date_from}-"
        if self.date_to:
            return f"-{self.date_to}"
        return ""

    @property
    def name_pattern(self) -> str:
        """The patient name as a matching value (``*`` appended unless it has wildcards)."""
        name = self.patient_name
        if not name or "*" in name or "?" in name:
            return name
        return name + "*"

    def dataset(self):
        """The C-FIND identifier: the keys to match and the keys to return, for the level.

        Patient level uses the Patient Root model (date and modality do not apply to it);
        study and series levels the Study Root model.
        """
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.QueryRetrieveLevel = self.level.upper()
        ds.PatientID = self.patient_id
        ds.PatientName = self.name_pattern
        if self.level == "patient":
            ds.PatientBirthDate = ""
            ds.PatientSex = ""
            ds.NumberOfPatientRelatedStudies = ""
            return ds
        ds.StudyInstanceUID = self.study_uid
        ds.StudyDate = self.date_range
        ds.StudyTime = ""
        ds.AccessionNumber = self.accession_number
        ds.StudyDescription = ""
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        if self.level == "study":
            ds.ModalitiesInStudy = self.modality
            ds.NumberOfStudyRelatedSeries = ""
            ds.NumberOfStudyRelatedInstances = ""
        else:
            ds.SeriesInstanceUID = ""
            ds.Modality = self.modality
            ds.SeriesNumber = ""
            ds.SeriesDescription = ""
            ds.NumberOfSeriesRelatedInstances = ""
        return ds

    def qido_filters(self) -> dict[str, str]:
        """QIDO-RS search filters (the same keys as :meth:`dataset`, empty ones left out)."""
        out: dict[str, str] = {}
        if self.patient_id:
            out["PatientID"] = self.patient_id
        if self.patient_name:
            out["PatientName"] = self.name_pattern
        if self.level == "patient":
            return out
        if self.date_range:
            out["StudyDate"] = self.date_range
        if self.accession_number:
            out["AccessionNumber"] = self.accession_number
        if self.modality:
            out["ModalitiesInStudy" if self.level == "study" else "Modality"] = self.modality
        return out


QIDO_FIELDS = ("PatientBirthDate", "PatientSex", "StudyDescription", "StudyTime",
               "NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries",
               "ModalitiesInStudy", "SeriesDescription", "SeriesNumber",
               "NumberOfSeriesRelatedInstances", "AccessionNumber")
"""Attributes a QIDO-RS search asks for beyond the defaults."""


def _text(ds, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _int(ds, keyword: str) -> int | None:
    try:
        value = ds.get(keyword, None)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Match:
    """One answer of a search (a patient, a study or a series).

    ``instances`` is the number of instances the PACS says it holds (None when it does not
    say); ``modalities`` the study's modalities (study level) or the series' modality.
    """

    level: str
    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    study_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    modalities: str = ""
    series_uid: str = ""
    series_number: str = ""
    series_description: str = ""
    instances: int | None = None
    studies: int | None = None
    series_count: int | None = None

    @classmethod
    def from_dataset(cls, ds, level: str) -> Match:
        """From a C-FIND answer or a QIDO-RS answer read into a pydicom Dataset."""
        if level == "series":
            modalities = _text(ds, "Modality")
            instances = _int(ds, "NumberOfSeriesRelatedInstances")
        else:
            modalities = _text(ds, "ModalitiesInStudy")
            instances = _int(ds, "NumberOfStudyRelatedInstances")
        return cls(level=level, patient_id=_text(ds, "PatientID"),
                   patient_name=_text(ds, "PatientName"),
                   birth_date=_text(ds, "PatientBirthDate"), sex=_text(ds, "PatientSex"),
                   study_uid=_text(ds, "StudyInstanceUID"), study_date=_text(ds, "StudyDate"),
                   study_time=_text(ds, "StudyTime"),
                   study_description=_text(ds, "StudyDescription"),
                   accession_number=_text(ds, "AccessionNumber"), modalities=modalities,
                   series_uid=_text(ds, "SeriesInstanceUID"),
                   series_number=_text(ds, "SeriesNumber"),
                   series_description=_text(ds, "SeriesDescription"),
                   instances=instances, studies=_int(ds, "NumberOfPatientRelatedStudies"),
                   series_count=_int(ds, "NumberOfStudyRelatedSeries"))

    @property
    def key(self) -> tuple[str, str, str]:
        """(patient ID, study UID, series UID): what identifies it at its level."""
        return (self.patient_id, self.study_uid, self.series_uid)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def sort_matches(matches: Sequence[Match]) -> list[Match]:
    """Grouped by patient (by name, then ID), newest study first within a patient, the series
    of a study by number."""
    def number(text: str) -> int:
        digits = re.sub(r"\D", "", text or "")
        return int(digits) if digits else 0

    return sorted(matches, key=lambda m: (
        m.patient_name.lower(), m.patient_id, -number(m.study_date), -number(m.study_time),
        m.study_uid, number(m.series_number) if m.series_number else 1 << 30, m.series_uid))


__all__: Sequence[str] = ("LEVELS", "QIDO_FIELDS", "Match", "Query", "sort_matches")
