"""The DICOM Secondary Capture of a report: its dataset, and the atomic write.

No Qt here. :func:`dicom_sc_dataset` builds, through highdicom's :class:`highdicom.sc.SCImage`
as the SR is built through highdicom, the dataset that :func:`export_dicom_sc` writes (see
there for what it holds): the
report's pixels as 8-bit RGB, the source's study when it is DICOM, a new series and instance,
and patient identifiers only when ``include_patient=True``. Without them, the identity is said
to be removed (PatientIdentityRemoved YES, BurnedInAnnotation NO) only when the report's pixels
were blanked outside the source's ultrasound regions; a report of a frame without region data
may still show text the scanner burned in, and says PatientIdentityRemoved NO,
BurnedInAnnotation YES (:mod:`.deidentify`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rcdnet_desktop.core import dicom_codes as dc
from rcdnet_desktop.core.atomic import atomic_write
from rcdnet_desktop.core.export.dicom_identity import derived_context
from rcdnet_desktop.core.export.report import DECISION_SUPPORT_NOTE, SOFTWARE_NAME, Report
from rcdnet_desktop.core.overlay import as_rgb
from rcdnet_desktop.core.types import ImageRecord

SECONDARY_CAPTURE_SOP_CLASS = dc.SECONDARY_CAPTURE


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
    from highdicom.sc import SCImage
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    if isinstance(report, Report):
        if report.patient_included and not include_patient:
            raise ValueError(
                "the report image shows patient identifiers; export it with include_patient=True "
                "or render it again without the patient"
            )
        rgb = report.image
        blanked = report.pixels_blanked
        when = when or report.when
        frame = report.frame if frame is None else frame
        description_lines = [line.text for line in report.lines]
    else:
        rgb = as_rgb(report)
        blanked = False  # a bare image: nothing is known of what it shows
        description_lines = [DECISION_SUPPORT_NOTE]
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if when is None:
        when = datetime.now().astimezone()
    rows, cols = rgb.shape[:2]
    if rows > 65535 or cols > 65535:
        raise ValueError(f"the report is {cols}x{rows} pixels; DICOM allows at most 65535 a side")
    context = derived_context(record, include_patient=include_patient)
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    try:
        from importlib.metadata import version

        software = version("rcdnet-desktop")
    except Exception:
        software = "unknown"

    # highdicom builds the SOP common, general series, equipment, SC image and image pixel
    # modules (8-bit RGB, colour-by-pixel, explicit VR little endian). Series number and
    # description, with the manufacturer, are how this program knows its own objects when they
    # come back from a PACS (rcdnet_desktop.core.io.own).
    ds = SCImage(
        pixel_array=rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        # Required by highdicom for a patient image; an ultrasound frame has no patient
        # orientation to state, so it is emptied below, as the standard allows (Type 2C).
        patient_orientation=("A", "F"),
        study_instance_uid=context.study_uid,
        series_instance_uid=generate_uid(),  # always a new series
        series_number=dc.SC_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=dc.MANUFACTURER,
        series_description=dc.SC_SERIES_DESCRIPTION,
        content_date=date,
        content_time=time,
        series_date=date,
        series_time=time,
        specific_character_set="ISO_IR 192",  # UTF-8: names may not be ASCII
    )
    ds.PatientOrientation = ""
    ds["PixelData"].VR = "OB"  # 8-bit samples, as the standard writes them (not "OB or OW")
    # The modality of the source, which highdicom fixes at OT; the image was made at a
    # workstation (WSD), not digitised (highdicom's DI); and it is not an "OTHER" image.
    ds.Modality = context.modality
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    for keyword in ("DateOfSecondaryCapture", "TimeOfSecondaryCapture"):
        delattr(ds, keyword)  # highdicom's clock, not the report's: the content time says it
    offset = when.strftime("%z")
    if offset:
        ds.TimezoneOffsetFromUTC = offset

    # Patient and study: the source's with its patient when asked (a result for the PACS),
    # else de-identified consistently (see dicom_identity); the same modules as the SR. The
    # identity is said to be removed only when the pixels were blanked outside the ultrasound
    # regions; otherwise PatientIdentityRemoved NO and BurnedInAnnotation YES (deidentify).
    context.apply(ds, pixels_blanked=blanked)
    if not record.is_dicom:
        ds.StudyDate, ds.StudyTime = date, time  # a study of its own: dated by the export
    # General Series, Type 2C: the side is not carried over from the source, so it is present
    # and empty ("unknown"), as the standard allows; a reader takes the side from the source.
    ds.Laterality = ""

    # Equipment: the software that made this image; the scanner stays in the source.
    ds.SecondaryCaptureDeviceManufacturer = SOFTWARE_NAME
    ds.SecondaryCaptureDeviceManufacturerModelName = "RcdNet Desktop"
    ds.SecondaryCaptureDeviceSoftwareVersions = software

    ds.DerivationDescription = (
        "Source image with the RcdNet result (likelihood band and decision at the model's "
        "suspicious cut-off) and Grad-CAM evidence maps burned in. " + DECISION_SUPPORT_NOTE
    )[:1024]
    ds.ImageComments = "\n".join(description_lines)[:10240]

    if context.has_source:
        item = Dataset()
        item.ReferencedSOPClassUID = context.source_sop_class
        item.ReferencedSOPInstanceUID = context.source_sop_uid
        if record.frame_count > 1 and frame is not None:
            item.ReferencedFrameNumber = frame + 1
        ds.SourceImageSequence = [item]
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
    endian, 8-bit RGB uncompressed; a new SeriesInstanceUID and SOPInstanceUID; ImageType
    DERIVED\\SECONDARY; ConversionType WSD; Modality copied from the
    source ("OT" when unknown); ContentDate/Time from the report; a reference to the source
    image when it can be read. With ``include_patient`` the source's patient and study (what a
    PACS needs to file it with the images); without, no identifiers, PatientIdentityRemoved
    YES and BurnedInAnnotation NO when the report's pixels were blanked outside the ultrasound
    regions (else NO and YES: burned-in text may remain), and the source's study and image UIDs
    replaced consistently (the SC and SR of one
    source share the new study; see :mod:`.dicom_identity`). A non-DICOM source gets a new
    study either way. Built with highdicom, which names itself in the
    ContributingEquipmentSequence and the file meta's ImplementationVersionName.

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
