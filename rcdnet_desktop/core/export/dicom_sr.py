"""The DICOM Structured Report of a result: a TID 1500 measurement report (highdicom).

No Qt here. One Comprehensive SR per classified DICOM image:

* document title "Imaging Measurement Report" (TID 1500), procedure "Ultrasonography";
* observer: this program as a device (name, manufacturer, model "RcdNet <version>");
* one planar ROI group (TID 1410): finding "Mass" in the breast, the lesion box as an SCOORD
  POLYLINE on the source image (the box drawn by the user or found automatically; the whole
  image when there was none), tracked by a UID, the algorithm (name and the model card's
  version) named on the group and the measurement;
* the measurement "Probability of cancer" (DCM 111047): the calibrated probability of
  malignancy, unitless in [0, 1];
* qualitative evaluations: "Pathology" (DCM 111042) benign or malignant (SCT codes), the
  likelihood band and whether the result reaches the model's suspicious threshold (codes of
  this program's own scheme, ``99RCDNET``), and any image descriptors the prediction carries;
* the decision-support note, the box's origin and any intended-use warnings as comments
  (DCM 121106);
* patient and study: the source's (``include_patient=True``, for the PACS) or consistently
  de-identified (:mod:`.dicom_identity`).

:func:`dicom_sr_dataset` builds it, :func:`export_dicom_sr` writes it atomically. Only a DICOM
source can be referenced, so only a DICOM source gets an SR.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from rcdnet_desktop.core.export.atomic import atomic_write
from rcdnet_desktop.core.export.dicom_identity import derived_context
from rcdnet_desktop.core.export.report import DECISION_SUPPORT_NOTE, SOFTWARE_NAME
from rcdnet_desktop.core.types import Box, ImageRecord, Prediction

ALGORITHM_NAME = "RcdNet"
SCHEME = "99RCDNET"
"""Coding scheme of this program's own concepts (a private scheme: "99" prefix)."""
SERIES_NUMBER = 9902
SERIES_DESCRIPTION = "RcdNet decision support (structured report)"
_DEVICE_UID_ROOT = "2.25."


def _software_version() -> str:
    try:
        from importlib.metadata import version

        return version("rcdnet-desktop")
    except Exception:  # noqa: BLE001
        return "unknown"


def _own(value: str, meaning: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=value, scheme_designator=SCHEME, meaning=meaning[:64])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").upper()[:16] or "X"


def _region_box(pred: Prediction, record: ImageRecord) -> tuple[Box, str]:
    """The box to reference and where it came from (the whole image without one)."""
    if pred.box is not None:
        return pred.box, pred.box_source
    rows, cols = record.pixels.shape[:2]
    return Box(0, 0, int(cols), int(rows)), "none"


def _polyline(box: Box):
    import numpy as np

    x0, y0, x1, y1 = float(box.x), float(box.y), float(box.x + box.w), float(box.y + box.h)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float32)


def _comments(pred: Prediction, source: str) -> list[str]:
    origin = {"user": "Lesion box drawn by the user.",
              "auto": "Lesion box found automatically by the lesion localiser.",
              "none": "No lesion box: the whole image was classified."}[source]
    notes = [DECISION_SUPPORT_NOTE, origin]
    if pred.untrained:
        notes.append("UNTRAINED model weights: the result means nothing.")
    notes += [f"Warning: {w}" for w in pred.warnings]
    return [n[:1024] for n in notes]


def _text_item(text: str):
    from highdicom.sr import RelationshipTypeValues, TextContentItem
    from pydicom.sr.codedict import codes

    return TextContentItem(name=codes.DCM.Comment, value=text,
                           relationship_type=RelationshipTypeValues.CONTAINS)


def _evaluations(pred: Prediction) -> list:
    from highdicom.sr import QualitativeEvaluation
    from pydicom.sr.codedict import codes

    pathology = codes.SCT.Malignant if pred.label == "malignant" else codes.SCT.Benign
    band = pred.band
    items = [
        QualitativeEvaluation(codes.DCM.Pathology, pathology),
        QualitativeEvaluation(_own("BAND", "Likelihood of malignancy band"),
                              _own(f"BAND-{_slug(band.name)}", band.label)),
        QualitativeEvaluation(_own("SUSPICIOUS", "At or above the suspicious threshold"),
                              codes.SCT.Yes if pred.suspicious else codes.SCT.No),
    ]
    for d in getattr(pred, "descriptors", ()) or ():
        name, value = str(getattr(d, "name", "")), str(getattr(d, "value", ""))
        if name and value:
            items.append(QualitativeEvaluation(_own(f"D-{_slug(name)}", name),
                                               _own(f"V-{_slug(value)}", value)))
    return items


# Retired ultrasound storage classes, still written by older scanners, that highdicom's tables
# lack: built as their current equivalents (same frame structure), referenced as themselves.
_RETIRED_US = {
    "1.2.840.10008.5.1.4.1.1.6": "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image (Retired)
    "1.2.840.10008.5.1.4.1.1.3": "1.2.840.10008.5.1.4.1.1.3.1",  # US Multi-frame (Retired)
}


def _image_region(source_class: str, context, box: Box, frames: list[int] | None,
                  record: ImageRecord):
    """The lesion region as an SCOORD on the source image (SOP class ``source_class``).

    highdicom checks the class against the standard's tables (to know whether frame numbers
    apply): a class they lack is refused in plain words.
    """
    from highdicom.sr import GraphicTypeValues, ImageRegion, SourceImageForRegion

    try:
        return ImageRegion(graphic_type=GraphicTypeValues.POLYLINE, graphic_data=_polyline(box),
                           source_image=SourceImageForRegion(source_class,
                                                             context.source_sop_uid, frames))
    except KeyError:
        raise ValueError(f"{record.path.name}: a structured report cannot refer to this kind of "
                         f"DICOM object (SOP class {source_class}): it is not an image type the "
                         "report's standard tables know") from None


def _referenced_frames(source_class: str, record: ImageRecord, frame: int) -> list[int] | None:
    """The frame the region is on (numbered from 1) when the source's class is a multi-frame
    one; None otherwise: the standard forbids frame numbers in a reference to a single-frame
    class, even when the file holds several frames."""
    if record.frame_count <= 1:
        return None
    try:
        from highdicom._standard_utils import is_attribute_in_iod

        multiframe = is_attribute_in_iod("NumberOfFrames", source_class)
    except (ImportError, KeyError):  # unknown to the tables: refused later, in plain words
        multiframe = True
    return [frame + 1] if multiframe else None


def _rename_class(ds, old: str, new: str) -> None:
    """Every ``ReferencedSOPClassUID`` ``old`` in ``ds`` (nested sequences too) becomes ``new``."""
    for elem in ds:
        if elem.keyword == "ReferencedSOPClassUID" and elem.value == old:
            elem.value = new
        elif elem.VR == "SQ":
            for item in elem.value:
                _rename_class(item, old, new)


def dicom_sr_dataset(record: ImageRecord, pred: Prediction, *, include_patient: bool = False,
                     when: datetime | None = None):
    """Build (not write) the Comprehensive SR of ``pred`` on ``record`` (see the module).

    Raises
    ------
    ValueError
        The source is not a DICOM image whose SOP class can be read (nothing to reference).
    """
    from highdicom.sr import (
        AlgorithmIdentification,
        ComprehensiveSR,
        DeviceObserverIdentifyingAttributes,
        FindingSite,
        Measurement,
        MeasurementReport,
        ObservationContext,
        ObserverContext,
        PlanarROIMeasurementsAndQualitativeEvaluations,
        TrackingIdentifier,
    )
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    context = derived_context(record, include_patient=include_patient)
    if not (record.is_dicom and context.has_source):
        raise ValueError(f"{record.path.name}: a structured report needs a DICOM source image "
                         "that can be referenced")
    when = when or datetime.now().astimezone()
    version = pred.model_version or "unknown"
    algorithm = AlgorithmIdentification(name=ALGORITHM_NAME, version=version[:64])
    device = DeviceObserverIdentifyingAttributes(
        uid=generate_uid(prefix=None, entropy_srcs=[SOFTWARE_NAME, version]),
        name=SOFTWARE_NAME, manufacturer_name=SOFTWARE_NAME,
        model_name=f"{ALGORITHM_NAME} {version}"[:64])
    observation = ObservationContext(observer_device_context=ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))
    box, source = _region_box(pred, record)
    # A retired ultrasound class is built as its current equivalent (highdicom's tables lack
    # it), then named as it is in every reference.
    actual = context.source_sop_class
    checked_as = _RETIRED_US.get(actual, actual)
    region = _image_region(checked_as, context, box,
                           _referenced_frames(checked_as, record, pred.frame), record)
    probability = Measurement(name=codes.DCM.ProbabilityOfCancer,
                              value=round(float(pred.p_malignant), 6),
                              unit=codes.UCUM.NoUnits, algorithm_id=algorithm)
    group = PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=generate_uid(), identifier="Lesion 1"),
        referenced_region=region, finding_type=codes.SCT.Mass, algorithm_id=algorithm,
        finding_sites=[FindingSite(codes.SCT.Breast)], measurements=[probability],
        qualitative_evaluations=_evaluations(pred))
    for text in _comments(pred, source):
        group[0].ContentSequence.append(_text_item(text))
    report = MeasurementReport(observation_context=observation,
                               procedure_reported=codes.SCT.Ultrasonography,
                               imaging_measurements=[group])
    evidence = context.evidence()
    evidence.SOPClassUID = checked_as
    sr = ComprehensiveSR(
        evidence=[evidence], content=report[0],
        series_instance_uid=generate_uid(), series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=SOFTWARE_NAME,
        is_complete=True, is_final=False, is_verified=False,
        series_description=SERIES_DESCRIPTION, content_date=when.date(),
        content_time=when.time().replace(microsecond=0, tzinfo=None))
    context.apply(sr)  # the same patient and study modules as the Secondary Capture
    if checked_as != actual:
        _rename_class(sr, checked_as, actual)
    sr.SpecificCharacterSet = "ISO_IR 192"
    sr.SoftwareVersions = _software_version()
    return sr


def export_dicom_sr(path: str | Path, record: ImageRecord, pred: Prediction, *,
                    include_patient: bool = False, overwrite: bool = False,
                    when: datetime | None = None) -> Path:
    """Write the SR of ``pred`` atomically; see :func:`dicom_sr_dataset`.

    Raises
    ------
    ValueError
        Not a DICOM source (nothing is written).
    rcdnet_desktop.core.errors.ExportExistsError, rcdnet_desktop.core.errors.ExportError
        The file exists (and ``overwrite`` is False) or could not be written.
    """
    ds = dicom_sr_dataset(record, pred, include_patient=include_patient, when=when)

    def write(fh: BinaryIO) -> None:
        ds.save_as(fh, enforce_file_format=True)

    return atomic_write(path, write, overwrite=overwrite)


__all__: Sequence[str] = ("ALGORITHM_NAME", "SCHEME", "dicom_sr_dataset", "export_dicom_sr")
