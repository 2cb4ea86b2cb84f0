"""The DICOM Structured Report of a result: a TID 1500 measurement report (highdicom).

No Qt here. One Comprehensive SR per classified DICOM image, in the codes of
:mod:`rcdnet_desktop.core.dicom_codes` (standard codes where they exist, the program's own
documented scheme where none does):

* document title "Imaging Measurement Report" (TID 1500), procedure "Ultrasonography of
  breast";
* observer: this program as a device (name, manufacturer, model "RcdNet <version>");
* one planar ROI group (TID 1410): finding "Mass" in the breast, the lesion box as an SCOORD
  POLYLINE on the source image (the box drawn by the user or found automatically; the whole
  image when there was none), tracked by a UID, the algorithm (name and the model card's
  version) named on the group and the measurements;
* its measurements: "Probability of cancer" (DCM 111047), the calibrated probability of
  malignancy, unitless in [0, 1]; the lesion box's width and height in mm where the image is
  calibrated (:class:`~rcdnet_desktop.core.measure.Calibration`; left out otherwise: the
  SCOORD gives the box in pixels);
* its qualitative evaluations: the decision at the model card's suspicious cut-off
  (``Prediction.suspicious``: "suspicious" or "below the cut-off"), the likelihood band
  (``Prediction.band``, aligned with a BI-RADS likelihood-of-malignancy range, not a BI-RADS
  assessment) and the lexicon descriptors in the breast-imaging context groups of PS3.16.
  Never a pathology: the model cannot know one;
* the cut-off the decision was made at, as the algorithm's parameter (TID 4019 "Algorithm
  Parameters": ``suspicious cut-off 0.158``);
* comments (DCM 121106), in the words of :mod:`rcdnet_desktop.core.result`: the
  decision-support note, where P lies against the cut-off, the band and what it is aligned
  with, what limits the result (whole image, box-dependent), the descriptors in words with
  their confidence, the box's origin, any intended-use warnings, and the site profile in use
  (:func:`rcdnet_desktop.core.result.site_sentence`);
* the caliper measurements, when there are (TID 1501 group "Caliper measurements"): each a
  "Length" in mm, or in image pixels (UCUM ``{pixels}``) when the file gives no scale, inferred
  from its line on the source image;
* patient and study: the source's (``include_patient=True``, for the PACS) or consistently
  de-identified (:mod:`.dicom_identity`).

:func:`dicom_sr_dataset` builds it, :func:`export_dicom_sr` writes it atomically. Only a DICOM
source can be referenced, so only a DICOM source gets an SR. The reader of such documents is
:mod:`rcdnet_desktop.core.io.sr`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from rcdnet_desktop.core import dicom_codes as dc
from rcdnet_desktop.core import result
from rcdnet_desktop.core.atomic import atomic_write
from rcdnet_desktop.core.export.dicom_identity import derived_context
from rcdnet_desktop.core.export.report import DECISION_SUPPORT_NOTE, SOFTWARE_NAME
from rcdnet_desktop.core.lexicon import lexicon_words
from rcdnet_desktop.core.measure import Calibration, Measured
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.types import Box, ImageRecord, Prediction

ALGORITHM_NAME = "RcdNet"
SCHEME = dc.SCHEME
SERIES_NUMBER = dc.SR_SERIES_NUMBER
SERIES_DESCRIPTION = dc.SR_SERIES_DESCRIPTION
CALIPER_GROUP = "Caliper measurements"


def _software_version() -> str:
    try:
        from importlib.metadata import version

        return version("rcdnet-desktop")
    except Exception:  # noqa: BLE001
        return "unknown"


def _coded(concept: dc.Concept):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=concept.value, scheme_designator=concept.scheme,
                        meaning=concept.meaning)


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


def cutoff_parameter(pred: Prediction) -> list[str]:
    """The cut-off the decision was made at, as the algorithm's parameter (TID 4019), e.g.
    ``["suspicious cut-off 0.158"]``; none when the prediction does not carry it."""
    if pred.threshold is None:
        return []
    return [f"{dc.CUTOFF_PARAMETER} {pred.threshold:g}"]


def _comments(pred: Prediction, source: str,
              operating_point: OperatingPoint | None = None) -> list[str]:
    """The result's sentences, in the words every view uses (:mod:`rcdnet_desktop.core.result`),
    at ``operating_point`` (the card's, or a site profile's, which is then said too)."""
    origin = {"user": "Lesion box drawn by the user.",
              "auto": "Lesion box found automatically by the lesion localiser.",
              "none": "No lesion box: the whole image was classified."}[source]
    notes = [DECISION_SUPPORT_NOTE]
    if pred.threshold is not None:
        notes.append(result.cutoff_sentence(pred, operating_point))
    site = result.site_sentence(operating_point.site if operating_point else None)
    if site:
        notes.append(site)
    notes.append(f"Likelihood band: {result.band_text(pred)}. {result.band_note(pred)}")
    notes += result.caveats(pred)
    if pred.descriptors:
        notes.append(f"Lexicon: {lexicon_words(pred)}")
    notes.append(origin)
    if pred.untrained:
        notes.append("UNTRAINED model weights: the result means nothing.")
    notes += [f"Warning: {w}" for w in pred.warnings]
    return [n[:1024] for n in notes]


def _text_item(text: str):
    from highdicom.sr import RelationshipTypeValues, TextContentItem

    return TextContentItem(name=_coded(dc.COMMENT), value=text,
                           relationship_type=RelationshipTypeValues.CONTAINS)


def _evaluations(pred: Prediction) -> list:
    """The decision, the band and the lexicon descriptors as coded evaluations."""
    from highdicom.sr import QualitativeEvaluation

    band = pred.band
    items = [
        QualitativeEvaluation(_coded(dc.DECISION), _coded(dc.decision_code(pred.suspicious))),
        QualitativeEvaluation(_coded(dc.BAND), _coded(dc.band_code(band.name, band.label))),
    ]
    for d in pred.descriptors:
        pair = dc.LEXICON.get((d.name, d.value))
        if pair is not None:  # every class the heads can give is in the table (tested)
            items.append(QualitativeEvaluation(_coded(pair[0]), _coded(pair[1])))
    return items


def _box_size(record: ImageRecord, pred: Prediction, algorithm) -> list:
    """The lesion box's width and height in mm; none without a box or a scale."""
    from highdicom.sr import Measurement

    if pred.box is None:
        return []
    size = Calibration.of(record).box_size(pred.box)
    if size is None:
        return []
    return [Measurement(name=_coded(concept), value=round(float(mm), 2),
                        unit=_coded(dc.MILLIMETRE), algorithm_id=algorithm)
            for concept, mm in ((dc.WIDTH, size[0]), (dc.HEIGHT, size[1]))]


def _caliper_group(measured: Sequence[Measured], source_image):
    """The caliper lines as a TID 1501 group: one "Length" each, inferred from its line."""
    import numpy as np
    from highdicom.sr import (
        CoordinatesForMeasurement,
        GraphicTypeValues,
        Measurement,
        MeasurementsAndQualitativeEvaluations,
        TrackingIdentifier,
    )
    from pydicom.uid import generate_uid

    items = []
    for m in measured:
        line = np.array(m.measurement.points(), dtype=np.float32)
        items.append(Measurement(
            name=_coded(dc.LENGTH), value=round(float(m.length.value), 2),
            unit=_coded(dc.UNITS[m.length.unit]),
            tracking_identifier=TrackingIdentifier(uid=generate_uid(),
                                                   identifier=f"Caliper {m.number}"),
            referenced_coordinates=[CoordinatesForMeasurement(
                GraphicTypeValues.POLYLINE, line, source_image)]))
    return MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=generate_uid(), identifier=CALIPER_GROUP),
        measurements=items)


# Retired ultrasound storage classes, still written by older scanners, that highdicom's tables
# lack: built as their current equivalents (same frame structure), referenced as themselves.
_RETIRED_US = {
    "1.2.840.10008.5.1.4.1.1.6": "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image (Retired)
    "1.2.840.10008.5.1.4.1.1.3": "1.2.840.10008.5.1.4.1.1.3.1",  # US Multi-frame (Retired)
}


def _image_region(source_class: str, context, box: Box, frames: list[int] | None,
                  record: ImageRecord):
    """The lesion region as an SCOORD on the source image (SOP class ``source_class``), and
    the source image's reference (for the calipers' lines).

    highdicom checks the class against the standard's tables (to know whether frame numbers
    apply): a class they lack is refused in plain words.
    """
    from highdicom.sr import GraphicTypeValues, ImageRegion, SourceImageForRegion

    try:
        image = SourceImageForRegion(source_class, context.source_sop_uid, frames)
        return ImageRegion(graphic_type=GraphicTypeValues.POLYLINE,
                           graphic_data=_polyline(box), source_image=image), image
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
    return [frame + 1] if _is_multiframe_class(source_class) else None


def _is_multiframe_class(source_class: str) -> bool:
    """Whether the standard's tables give SOP class ``source_class`` a number of frames.

    Asked through highdicom's public API: a reference with a frame number to an image of a
    single-frame class is refused with TypeError. A class the tables lack counts as
    multi-frame here; it is refused later, in plain words (:func:`_image_region`).
    """
    from highdicom.sr import SourceImageForRegion
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    probe = Dataset()  # the least a source image needs to be referenced
    probe.SOPClassUID, probe.SOPInstanceUID = source_class, generate_uid()
    probe.Rows = probe.Columns = probe.SamplesPerPixel = probe.NumberOfFrames = 1
    probe.PixelRepresentation, probe.Modality = 0, "OT"
    try:
        SourceImageForRegion.from_source_image(probe, [1])
    except TypeError:
        return False
    except (KeyError, ValueError):
        return True
    return True


def _scheme_item():
    """The private coding scheme, declared (PS3.3 C.12.1.1.2.1): whose codes they are."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodingSchemeDesignator = dc.SCHEME
    item.CodingSchemeName = dc.SCHEME_NAME
    item.CodingSchemeVersion = dc.SCHEME_VERSION
    item.CodingSchemeResponsibleOrganization = dc.MANUFACTURER
    return item


def _rename_class(ds, old: str, new: str) -> None:
    """Every ``ReferencedSOPClassUID`` ``old`` in ``ds`` (nested sequences too) becomes ``new``."""
    for elem in ds:
        if elem.keyword == "ReferencedSOPClassUID" and elem.value == old:
            elem.value = new
        elif elem.VR == "SQ":
            for item in elem.value:
                _rename_class(item, old, new)


def dicom_sr_dataset(record: ImageRecord, pred: Prediction, *, include_patient: bool = False,
                     when: datetime | None = None, measurements: Sequence[Measured] = (),
                     operating_point: OperatingPoint | None = None):
    """Build (not write) the Comprehensive SR of ``pred`` on ``record`` (see the module), with
    the caliper ``measurements`` of the frame when there are.

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
    algorithm = AlgorithmIdentification(name=ALGORITHM_NAME, version=version[:64],
                                        parameters=cutoff_parameter(pred) or None)
    device = DeviceObserverIdentifyingAttributes(
        uid=generate_uid(prefix=None, entropy_srcs=[SOFTWARE_NAME, version]),
        name=SOFTWARE_NAME, manufacturer_name=dc.MANUFACTURER,
        model_name=f"{ALGORITHM_NAME} {version}"[:64])
    observation = ObservationContext(observer_device_context=ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))
    box, source = _region_box(pred, record)
    # A retired ultrasound class is built as its current equivalent (highdicom's tables lack
    # it), then named as it is in every reference.
    actual = context.source_sop_class
    checked_as = _RETIRED_US.get(actual, actual)
    region, image = _image_region(checked_as, context, box,
                                  _referenced_frames(checked_as, record, pred.frame), record)
    probability = Measurement(name=_coded(dc.PROBABILITY),
                              value=round(float(pred.p_malignant), 6),
                              unit=_coded(dc.NO_UNITS), algorithm_id=algorithm)
    group = PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=generate_uid(), identifier="Lesion 1"),
        referenced_region=region, finding_type=_coded(dc.FINDING), algorithm_id=algorithm,
        finding_sites=[FindingSite(_coded(dc.FINDING_SITE))],
        measurements=[probability, *_box_size(record, pred, algorithm)],
        qualitative_evaluations=_evaluations(pred))
    for text in _comments(pred, source, operating_point):
        group[0].ContentSequence.append(_text_item(text))
    groups = [group]
    if measurements:
        groups.append(_caliper_group(measurements, image))
    report = MeasurementReport(observation_context=observation,
                               procedure_reported=_coded(dc.PROCEDURE),
                               imaging_measurements=groups)
    evidence = context.evidence()
    evidence.SOPClassUID = checked_as
    sr = ComprehensiveSR(
        evidence=[evidence], content=report[0],
        series_instance_uid=generate_uid(), series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=dc.MANUFACTURER,
        is_complete=True, is_final=False, is_verified=False,
        series_description=SERIES_DESCRIPTION, content_date=when.date(),
        content_time=when.time().replace(microsecond=0, tzinfo=None))
    sr.CodingSchemeIdentificationSequence = [_scheme_item()]
    context.apply(sr)  # the same patient and study modules as the Secondary Capture
    if checked_as != actual:
        _rename_class(sr, checked_as, actual)
    sr.SpecificCharacterSet = "ISO_IR 192"
    sr.SoftwareVersions = _software_version()
    return sr


def export_dicom_sr(path: str | Path, record: ImageRecord, pred: Prediction, *,
                    include_patient: bool = False, overwrite: bool = False,
                    when: datetime | None = None,
                    measurements: Sequence[Measured] = (),
                    operating_point: OperatingPoint | None = None) -> Path:
    """Write the SR of ``pred`` atomically; see :func:`dicom_sr_dataset`.

    Raises
    ------
    ValueError
        Not a DICOM source (nothing is written).
    rcdnet_desktop.core.errors.ExportExistsError, rcdnet_desktop.core.errors.ExportError
        The file exists (and ``overwrite`` is False) or could not be written.
    """
    ds = dicom_sr_dataset(record, pred, include_patient=include_patient, when=when,
                          measurements=measurements, operating_point=operating_point)

    def write(fh: BinaryIO) -> None:
        ds.save_as(fh, enforce_file_format=True)

    return atomic_write(path, write, overwrite=overwrite)


__all__: Sequence[str] = ("ALGORITHM_NAME", "SCHEME", "cutoff_parameter", "dicom_sr_dataset",
                          "export_dicom_sr")
