"""DICOM files for the context and measurement tests, built from pydicom's own test files.

``examples_palette.dcm`` is a Philips CX50 ultrasound frame (800 x 350) with a calibrated
SequenceOfUltrasoundRegions region (x 120-800, y 60-350, 0.2623 mm per pixel); copies of it
get the patient and study a test needs. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pydicom

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
US_WITH_REGIONS = TEST_FILES / "examples_palette.dcm"
US_MM_PER_PIXEL = 0.26228787661969977


def write_dicom(path: Path, source: Path = US_WITH_REGIONS, **fields: object) -> Path:
    """A copy of ``source`` with ``fields`` set (keywords: ``PatientName="DOE^JANE"``, ...)
    and new instance UIDs, so copies are distinct images."""
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(source)
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)
    return path


def patient_dicom(path: Path, name: str = "DOE^JANE", patient_id: str = "PID-001",
                  study: str = "1.2.826.0.1.3680043.8.498.1", study_date: str = "20240301",
                  description: str = "Breast ultrasound", **fields: object) -> Path:
    """An ultrasound frame of patient ``name`` in study ``study``."""
    return write_dicom(path, PatientName=name, PatientID=patient_id, PatientBirthDate="19700125",
                       StudyInstanceUID=study, StudyDate=study_date,
                       StudyDescription=description, **fields)


def make_disc(root: Path, sources: list[Path]) -> list[Path]:
    """A CD-style study: ``sources`` and a DICOMDIR written into ``root`` by pydicom's FileSet.
    Returns the image files the DICOMDIR lists, in its order."""
    from pydicom.fileset import FileSet

    fs = FileSet()
    for src in sources:
        fs.add(pydicom.dcmread(src))
    fs.write(root)
    index = pydicom.dcmread(root / "DICOMDIR")
    return [root.joinpath(*r.ReferencedFileID) for r in index.DirectoryRecordSequence
            if r.DirectoryRecordType == "IMAGE"]
