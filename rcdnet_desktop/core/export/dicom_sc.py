"""The DICOM Secondary Capture of a report: its dataset, and the atomic write.

No Qt here. :func:`dicom_sc_dataset` builds the pydicom dataset that :func:`export_dicom_sc`
writes (see there for what it holds): the
report's pixels as 8-bit RGB, the source's study when it is DICOM, a new series and instance,
and patient identifiers only when ``include_patient=True``. Text that the scanner burned into the
source pixels is part of the image and is kept; DeidentificationMethod says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rcdnet_desktop.core.export.atomic import atomic_write
from rcdnet_desktop.core.export.report import DECISION_SUPPORT_NOTE, SOFTWARE_NAME, Report
from rcdnet_desktop.core.overlay import as_rgb
from rcdnet_desktop.core.types import ImageRecord

SECONDARY_CAPTURE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"


def _source_reference(record: ImageRecord):
    """Return (SOPClassUID, SOPInstanceUID) of the DICOM source, or None when unknown."""
    if not record.is_dicom or not record.study.sop_instance_uid:
        return None
    try:
        import pydicom

        ds = pydicom.dcmread(
            record.path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"]
        )
        sop_class = str(ds.get("SOPClassUID", "") or "")
    except Exception:  # the source may have moved; the reference is optional (type 3)
        return None
    if not sop_class:
        return None
    return sop_class, record.study.sop_instance_uid


_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _valid_uid(uid: str) -> bool:
    return bool(uid) and len(uid) <= 64 and bool(_UID_RE.match(uid))


def dicom_sc_dataset(
    record: ImageRecord,
    report: Report | np.ndarray,
    *,
    include_patient: bool = False,
    when: datetime | None = None,
    frame: int | None = None,
):
    """Build (not write) the DICOM Secondary Capture dataset of a report.

    See :func:`rcdnet_desktop.core.export.export_dicom_sc` for what it holds.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    if isinstance(report, Report):
        if report.patient_included and not include_patient:
            raise ValueError(
                "the report image shows patient identifiers; export it with include_patient=True "
                "or render it again without the patient"
            )
        rgb = report.image
        when = when or report.when
        frame = report.frame if frame is None else frame
        description_lines = [line.text for line in report.lines]
    else:
        rgb = as_rgb(report)
        description_lines = [DECISION_SUPPORT_NOTE]
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if when is None:
        when = datetime.now().astimezone()
    rows, cols = rgb.shape[:2]
    if rows > 65535 or cols > 65535:
        raise ValueError(f"the report is {cols}x{rows} pixels; DICOM allows at most 65535 a side")

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names may not be ASCII
    ds.SOPClassUID = SECONDARY_CAPTURE_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["DERIVED", "SECONDARY"]
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.ContentDate, ds.ContentTime = date, time
    offset = when.strftime("%z")
    if offset:
        ds.TimezoneOffsetFromUTC = offset

    # Patient module (type 2: present, empty unless asked for).
    patient = record.patient
    if include_patient:
        ds.PatientName = patient.name
        ds.PatientID = patient.patient_id
        ds.PatientBirthDate = patient.birth_date
        ds.PatientSex = patient.sex
        ds.AccessionNumber = patient.accession_number
    else:
        ds.PatientName = ""
        ds.PatientID = ""
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.AccessionNumber = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = (
            # LO: 64 characters at most. Honest about what was not done: scanners often burn
            # the patient's name or ID into the image's header bar, and the panels keep it.
            "Header identifiers removed; source burned-in text kept"
        )

    # Study: the source's when it is DICOM, so the report files with the images it explains.
    study = record.study
    if record.is_dicom and _valid_uid(study.study_instance_uid):
        ds.StudyInstanceUID = study.study_instance_uid
        ds.StudyDate = study.study_date
        ds.StudyTime = study.study_time
        ds.StudyID = study.study_id
        if study.study_description:
            ds.StudyDescription = study.study_description
    else:
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime = date, time
        ds.StudyID = ""
    ds.ReferringPhysicianName = ""

    # Series: always new.
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = study.modality or "OT"
    ds.SeriesNumber = 9901  # high, so PACS lists the derived series after the acquisitions
    ds.SeriesDescription = "RcdNet decision support (Grad-CAM)"
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""

    # Equipment: the software that made this image; the scanner stays in the source.
    ds.Manufacturer = SOFTWARE_NAME
    ds.ConversionType = "WSD"  # workstation
    ds.SecondaryCaptureDeviceManufacturer = SOFTWARE_NAME
    ds.SecondaryCaptureDeviceManufacturerModelName = "RcdNet Desktop"
    try:
        from importlib.metadata import version

        ds.SecondaryCaptureDeviceSoftwareVersions = version("rcdnet-desktop")
    except Exception:
        ds.SecondaryCaptureDeviceSoftwareVersions = "unknown"

    ds.BurnedInAnnotation = "YES"
    ds.DerivationDescription = (
        "Source image with RcdNet benign/malignant prediction and Grad-CAM evidence maps "
        "burned in. " + DECISION_SUPPORT_NOTE
    )[:1024]
    ds.ImageComments = "\n".join(description_lines)[:10240]

    reference = _source_reference(record)
    if reference is not None:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = reference
        if record.frame_count > 1 and frame is not None:
            item.ReferencedFrameNumber = frame + 1
        ds.SourceImageSequence = [item]

    # Image pixel module: 8-bit RGB, colour-by-pixel.
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    data = rgb.tobytes()
    if len(data) % 2:
        data += b"\x00"  # DICOM values have even length
    ds.PixelData = data
    ds["PixelData"].VR = "OB"
    return ds


def export_dicom_sc(
    path: str | Path,
    record: ImageRecord,
    report: Report | np.ndarray,
    *,
    include_patient: bool = False,
    overwrite: bool = False,
    when: datetime | None = None,
    frame: int | None = None,
) -> Path:
    """Write the report as a DICOM Secondary Capture image, atomically.

    The file: SOP Class Secondary Capture (1.2.840.10008.5.1.4.1.1.7), explicit VR little
    endian, 8-bit RGB uncompressed; the source's StudyInstanceUID when the source is DICOM (a
    new study otherwise); a new SeriesInstanceUID and SOPInstanceUID; ImageType
    DERIVED\\SECONDARY; ConversionType WSD; BurnedInAnnotation YES; Modality copied from the
    source ("OT" when unknown); ContentDate/Time from the report; a reference to the source
    image when it can be read. Patient name, ID, birth date, sex and accession number are empty
    and PatientIdentityRemoved is YES unless ``include_patient`` is True.

    Parameters
    ----------
    path : str or Path
        Target file (".dcm" is customary).
    record : ImageRecord
        The source image's record (study, patient, modality).
    report : Report or numpy.ndarray
        The rendered report, or a bare uint8 RGB image.
    include_patient : bool
        Copy the patient's identifiers into the header. A :class:`Report` that shows them in
        its pixels cannot be exported with ``include_patient=False`` (ValueError).
    overwrite : bool
        Replace an existing file.
    when : datetime, optional
        Content date/time; defaults to the report's time, or now.
    frame : int, optional
        The source frame (0-based) of a cine, recorded in the source reference; defaults to the
        report's frame.

    Returns
    -------
    Path
        The written file.
    """
    ds = dicom_sc_dataset(record, report, include_patient=include_patient, when=when, frame=frame)

    def write(fh: BinaryIO) -> None:
        ds.save_as(fh, enforce_file_format=True)

    return atomic_write(path, write, overwrite=overwrite)


__all__: Sequence[str] = ("SECONDARY_CAPTURE_SOP_CLASS", "dicom_sc_dataset", "export_dicom_sc")
