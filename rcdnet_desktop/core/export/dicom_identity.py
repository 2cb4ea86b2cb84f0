"""Who a derived DICOM object (Secondary Capture, Structured Report) belongs to.

No Qt here. A result sent to the PACS must file with the images it explains: it carries the
source's patient (name, ID, birth date, sex), its study (UID, date, time, ID, accession
number) and references the source image by its UIDs -- ``include_patient=True``. A result
exported for teaching or sharing is de-identified, consistently: no identifiers in the header
(``PatientIdentityRemoved`` YES, unless pixels that may show burned-in text are kept:
:mod:`.deidentify`), and the source's study, series and image UIDs replaced by new
ones that are the same for every object made from the same source in this run of the program
(the SC and the SR of one image share their new study, and point at the same new image UID),
but cannot be traced back to the originals without this run's secret -- ``include_patient=False``.
Dates of the study are left out too.

:func:`derived_context` reads what is needed once; :meth:`DerivedContext.apply` writes the
patient and study modules into a data set; :meth:`DerivedContext.evidence` is a header-only
stand-in for the source (what highdicom needs to reference it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from rcdnet_desktop.core.export.deidentify import identity_marks
from rcdnet_desktop.core.types import ImageRecord

_RUN_SECRET = secrets.token_hex(16)
"""Mixed into every replaced UID: the same source gives the same new UID within this run."""

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")



def valid_uid(uid: str) -> bool:
    return bool(uid) and len(uid) <= 64 and bool(_UID_RE.match(uid))


def replaced_uid(uid: str) -> str:
    """The de-identified stand-in of ``uid`` (stable within this run, a new UID otherwise)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[_RUN_SECRET, uid]) if uid else generate_uid()


@dataclass(frozen=True)
class DerivedContext:
    """Patient, study and source reference of a derived object, as it will be written."""

    include_patient: bool
    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    accession_number: str = ""
    study_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    study_description: str = ""
    modality: str = "OT"
    source_series_uid: str = ""
    source_sop_class: str = ""
    source_sop_uid: str = ""

    @property
    def has_source(self) -> bool:
        """The source image can be referenced (a DICOM source whose SOP class is known)."""
        return bool(self.source_sop_class and self.source_sop_uid)

    def apply(self, ds, *, pixels_blanked: bool | None = None) -> None:
        """Write the patient and general study modules, and the marks that say what was done
        to the identity (:func:`~.deidentify.identity_marks`): ``pixels_blanked`` is None for
        an object without pixels (a structured report), else whether its pixels were blanked
        outside the ultrasound regions."""
        ds.PatientName = self.patient_name
        ds.PatientID = self.patient_id
        ds.PatientBirthDate = self.birth_date
        ds.PatientSex = self.sex
        ds.AccessionNumber = self.accession_number
        for keyword, value in identity_marks(include_patient=self.include_patient,
                                             pixels_blanked=pixels_blanked).items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID = self.study_uid
        ds.StudyDate = self.study_date
        ds.StudyTime = self.study_time
        ds.StudyID = self.study_id
        if self.study_description:
            ds.StudyDescription = self.study_description
        ds.ReferringPhysicianName = ""

    def evidence(self):
        """A header-only stand-in for the source image (patient, study, series, SOP)."""
        from pydicom.dataset import Dataset

        ds = Dataset()
        self.apply(ds)
        ds.SeriesInstanceUID = self.source_series_uid
        ds.SOPClassUID = self.source_sop_class
        ds.SOPInstanceUID = self.source_sop_uid
        ds.Modality = self.modality
        return ds


def derived_context(record: ImageRecord, *, include_patient: bool) -> DerivedContext:
    """The patient, study and source reference of an object derived from ``record``.

    A non-DICOM source (or one without a valid study UID) gets a new study of its own and no
    source reference.
    """
    from pydicom.uid import generate_uid

    study = record.study
    modality = study.modality or "OT"
    if not (record.is_dicom and valid_uid(study.study_instance_uid)):
        return DerivedContext(include_patient=include_patient, study_uid=generate_uid(),
                              modality=modality,
                              **(_patient(record) if include_patient else {}))
    sop_class = study.sop_class_uid if study.sop_instance_uid else ""
    sop_uid = study.sop_instance_uid if sop_class else ""
    series_uid = study.series_instance_uid
    if include_patient:
        return DerivedContext(include_patient=True, **_patient(record),
                              study_uid=study.study_instance_uid, study_date=study.study_date,
                              study_time=study.study_time, study_id=study.study_id,
                              study_description=study.study_description, modality=modality,
                              source_series_uid=series_uid, source_sop_class=sop_class,
                              source_sop_uid=sop_uid)
    return DerivedContext(include_patient=False, study_uid=replaced_uid(study.study_instance_uid),
                          modality=modality,
                          source_series_uid=replaced_uid(series_uid),
                          source_sop_class=sop_class,
                          source_sop_uid=replaced_uid(sop_uid) if sop_uid else "")


def _patient(record: ImageRecord) -> dict[str, str]:
    p = record.patient
    return {"patient_name": p.name, "patient_id": p.patient_id, "birth_date": p.birth_date,
            "sex": p.sex, "accession_number": p.accession_number}


__all__: Sequence[str] = ("DerivedContext", "derived_context",
                          "replaced_uid", "valid_uid")
