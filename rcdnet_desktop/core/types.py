"""Small typed results passed between the core, the CLI and the GUI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rcdnet_desktop.core.bands import (
    DEFAULT_SUSPICIOUS_THRESHOLD,
    LikelihoodBand,
    band_for,
)

CLASS_NAMES: tuple[str, str] = ("benign", "malignant")
"""Class index -> name. 0 = benign, 1 = malignant, everywhere in the project."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


@dataclass(frozen=True, eq=False)
class LesionFinding:
    """A lesion proposed by the localiser.

    Attributes
    ----------
    box : Box
        Bounding box of the lesion outline in image pixels (unpadded).
    outline : ndarray (N, 2) float32
        The outline as (x, y) points in image pixels.
    confidence : float
        Mean lesion probability inside the outline (0.5 to 1).
    area_share : float
        Share of the image the outline covers.
    """

    box: Box
    outline: np.ndarray
    confidence: float
    area_share: float


@dataclass(frozen=True)
class UltrasoundRegion:
    """One calibrated region from DICOM SequenceOfUltrasoundRegions.

    ``box`` is the region in image pixels (clipped to the image); the physical spacing is in
    millimetres per pixel.
    """

    box: Box
    mm_per_pixel_x: float
    mm_per_pixel_y: float


@dataclass(frozen=True)
class PatientInfo:
    """Identifying data, kept apart from everything else so exports can leave it out."""

    name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    accession_number: str = ""

    def is_empty(self) -> bool:
        return not any((self.name, self.patient_id, self.birth_date, self.sex,
                        self.accession_number))


@dataclass(frozen=True)
class StudyInfo:
    """Non-identifying DICOM context needed to file a derived image in the same study."""

    study_instance_uid: str = ""
    series_instance_uid: str = ""
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    study_description: str = ""
    modality: str = ""
    manufacturer: str = ""
    manufacturer_model: str = ""
    body_part: str = ""
    series_description: str = ""
    # An ultrasound image's examination, Image Type value 3 (DICOM PS3.3 C.8.5.6.1.1):
    # BREAST, SMALL PARTS, EPICARDIAL, OBSTETRICAL, ...; "" when the file gives none.
    exam_type: str = ""
    # (RegionSpatialFormat, RegionDataType) of every item of SequenceOfUltrasoundRegions,
    # calibrated or not (DICOM PS3.3 C.8.5.5): what kinds of ultrasound the frame shows.
    region_kinds: tuple[tuple[int, int], ...] = ()


class StoredReport(Protocol):
    """A Structured Report a record was opened from, as the record's users see it.

    The SR reader fills :attr:`ImageRecord.stored` with an
    :class:`~rcdnet_desktop.core.io.sr_document.SrDocument`; this protocol says what every
    reader of a record may count on, so these types do not depend on the reader above them.
    """

    @property
    def own(self) -> bool:
        """Whether this program wrote the report (its result can be shown as it was made)."""

    @property
    def source_uids(self) -> tuple[str, ...]:
        """SOP Instance UIDs of the images the report refers to."""

    @property
    def result(self) -> Any:
        """The stored result (:class:`~rcdnet_desktop.core.io.sr_document.StoredResult`), or
        None when the report holds none."""

    @property
    def groups(self) -> tuple[Any, ...]:
        """The report's measurement groups
        (:class:`~rcdnet_desktop.core.io.sr_document.SrGroup`)."""

    def lines(self) -> list[str]:
        """The report in words, a line each."""


@dataclass
class ImageRecord:
    """A decoded image and what is known about it.

    ``pixels`` holds frame ``pixels_frame`` (the first, or the one asked for when reading) as
    ``uint8``, shaped ``(H, W)`` for greyscale or ``(H, W, 3)`` for RGB. Other frames of a cine
    are decoded on demand by :meth:`frame`, one at a time. ``notes`` says in words what the
    reader had to assume (a missing Photometric Interpretation read as greyscale, ...); the
    engine adds them to the prediction's warnings. ``stored`` is the Structured Report that was
    opened (``path`` is the report's; ``pixels`` its source image's when it was found, else
    ``has_image`` is False): a stored result to show, not an image to classify.
    """

    path: Path
    pixels: np.ndarray
    frame_count: int = 1
    source_format: str = ""
    bits_stored: int = 8
    photometric: str = ""
    patient: PatientInfo = field(default_factory=PatientInfo)
    study: StudyInfo = field(default_factory=StudyInfo)
    regions: tuple[UltrasoundRegion, ...] = ()
    pixels_frame: int = 0
    frame_loader: Callable[[int], np.ndarray] | None = field(default=None, repr=False)
    frame_rate: float | None = None  # cine frames per second, when the file records it
    pixel_spacing: tuple[float, float] | None = None  # DICOM PixelSpacing as mm (x, y)
    notes: tuple[str, ...] = ()  # what the reader assumed or worked around, in words
    stored: StoredReport | None = field(default=None, repr=False)
    has_image: bool = True
    # Where the image data lies: the bounds of every ultrasound region of a DICOM frame that
    # holds image data (2D, M-mode, spectral, waveform), calibrated or not, clipped to the
    # image. Everything outside them is the scanner's text and graphics, which de-identified
    # exports blank; empty when the file says nothing (then nothing can be blanked).
    image_areas: tuple[Box, ...] = ()

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def is_dicom(self) -> bool:
        return self.source_format == "DICOM"

    @property
    def mm_per_pixel(self) -> tuple[float, float] | None:
        """Spacing (x, y) of the first calibrated region, or None when uncalibrated."""
        if not self.regions:
            return None
        r = self.regions[0]
        return (r.mm_per_pixel_x, r.mm_per_pixel_y)

    def frame(self, index: int) -> np.ndarray:
        """Return frame ``index`` as uint8 (decoded on demand for multi-frame files)."""
        if not 0 <= index < self.frame_count:
            raise IndexError(f"{self.path}: frame {index} out of range 0..{self.frame_count - 1}")
        if index == self.pixels_frame or self.frame_loader is None:
            return self.pixels
        return self.frame_loader(index)


@dataclass(frozen=True)
class Descriptor:
    """One BI-RADS lexicon descriptor the model suggests for the lesion box, in the lexicon's
    words (:mod:`~rcdnet_desktop.core.lexicon`): e.g. ``("shape", "irregular", 0.82)``.
    ``confidence`` is the head's probability of ``value`` (0 to 1). A suggestion, not a
    BI-RADS assessment."""

    name: str
    value: str
    confidence: float


BOX_SOURCES = ("user", "auto", "none")
"""Where a prediction's lesion box came from: drawn or given by the user, found by the lesion
localiser, or none (the whole image was classified)."""


@dataclass(frozen=True)
class Prediction:
    """The classifier's output for one image (or one region of it).

    Probabilities are calibrated with the model card's temperature.

    Attributes
    ----------
    p_benign, p_malignant : float
        Calibrated probabilities of both classes.
    device, model_version : str
        Where the model ran, and the model card's version.
    untrained : bool
        The weights were never trained (every output must say so).
    roi : Box or None
        The padded, clipped region the model saw (heat maps are zero outside it); None for the
        whole image.
    frame : int
        Frame of a multi-frame image.
    warnings : tuple of str
        Intended-use and other warnings for this result.
    box : Box or None
        The lesion box as given by the user or found by the localiser, unpadded, in image
        pixels: the box every view shows and describes. None when no box was used; left empty
        with ``roi`` set (a caller without the box, such as a test), it is ``roi``.
    box_source : str
        ``"user"``, ``"auto"`` (found by the lesion localiser) or ``"none"``. Left empty, it is
        ``"user"`` when ``roi`` is set and ``"none"`` otherwise.
    finding : LesionFinding or None
        The localiser's finding (outline, confidence) when ``box_source`` is ``"auto"``.
    fused : bool
        The probabilities come from the mean of the lesion box's and the whole image's logits
        (the model card's ``fusion`` mode); the heat maps are the box's.
    band : LikelihoodBand
        The likelihood band of ``p_malignant`` under the model card's operating point (the
        default bands when not given). Aligned with BI-RADS likelihood-of-malignancy ranges;
        not a BI-RADS assessment.
    suspicious : bool
        ``p_malignant`` is at or above the card's suspicious threshold (a site profile's when
        one is in use; 0.5 when not given).
    threshold : float
        That threshold (the cut-off the decision was made at); 0.5 when neither it nor
        ``suspicious`` is given.
    checks : tuple of str
        Codes of the intended-use flags (:data:`~rcdnet_desktop.core.checks.CHECK_CODES`);
        their words are among ``warnings``. Any code means the image is outside intended use.
    descriptors : tuple of Descriptor
        The lexicon descriptors the model suggests for the lesion box (only those that beat
        their baseline); empty without a lesion box or without lexicon heads in the bundle.
    descriptor_note : str
        Why there are no descriptors when the bundle has lexicon heads but no box was used
        (:data:`~rcdnet_desktop.core.lexicon.NEEDS_BOX`); empty otherwise.
    logits : (float, float) or None
        The classifier's logits (benign, malignant) before the temperature (fused where the
        probabilities are); what a site profile's temperature is fitted on.
    guard_distance : float or None
        The input guard's distance of the whole image; None without a guard. What a site
        profile's guard limit is fitted on.
    box_p_range : (float, float) or None
        Lowest and highest P(malignant) of the views of the lesion box that were averaged
        (:mod:`~rcdnet_desktop.core.box_views`: the box scaled and shifted a little, as another
        reader might have drawn it); None without a box or when the box was classified alone.
    lesion_region : Box or None
        When the user's box was classified as the lesion region the localiser outlines inside
        it (the card's ``box_views.snap_min_iou``), that region, unpadded; None when the box
        was classified as drawn or found.
    """

    p_benign: float
    p_malignant: float
    device: str
    model_version: str
    untrained: bool = False
    roi: Box | None = None
    frame: int = 0
    warnings: tuple[str, ...] = ()
    box: Box | None = None
    box_source: str = ""
    finding: LesionFinding | None = field(default=None, compare=False, repr=False)
    fused: bool = False
    band: LikelihoodBand | None = None
    suspicious: bool | None = None
    checks: tuple[str, ...] = ()
    descriptors: tuple[Descriptor, ...] = ()
    descriptor_note: str = ""
    threshold: float | None = None
    logits: tuple[float, float] | None = field(default=None, compare=False, repr=False)
    guard_distance: float | None = field(default=None, compare=False, repr=False)
    box_p_range: tuple[float, float] | None = None
    lesion_region: Box | None = None

    def __post_init__(self) -> None:
        # Fill what a caller without a model card (tests, fakes, older code) leaves out.
        if self.box is None and self.roi is not None:
            object.__setattr__(self, "box", self.roi)
        if not self.box_source:
            object.__setattr__(self, "box_source", "user" if self.roi is not None else "none")
        elif self.box_source not in BOX_SOURCES:
            raise ValueError(f"box_source must be one of {BOX_SOURCES}, got {self.box_source!r}")
        if self.band is None:
            object.__setattr__(self, "band", band_for(self.p_malignant))
        if self.suspicious is None:
            if self.threshold is None:
                object.__setattr__(self, "threshold", DEFAULT_SUSPICIOUS_THRESHOLD)
            object.__setattr__(self, "suspicious", self.p_malignant >= self.threshold)

    @property
    def outside_intended_use(self) -> bool:
        """True when an intended-use check flagged the image (see ``checks``)."""
        return bool(self.checks)

    @property
    def box_dependent(self) -> bool:
        """True when the views of the lesion box fall on both sides of the cut-off
        (``low < threshold <= high`` of :attr:`box_p_range`): the decision depends on how the
        box was drawn (see :func:`~rcdnet_desktop.core.result.box_dependence_sentence`). A
        prediction given its decision but not its cut-off is read at the default cut-off."""
        r = self.box_p_range
        cut = DEFAULT_SUSPICIOUS_THRESHOLD if self.threshold is None else float(self.threshold)
        return r is not None and r[0] < cut <= r[1]

    @property
    def label_index(self) -> int:
        """The class with the higher probability (changes at 0.5, not at the cut-off).

        For training and evaluation only: what a clinician reads is the decision at the
        cut-off (:mod:`rcdnet_desktop.core.result`), never this label.
        """
        return int(self.p_malignant >= 0.5)

    @property
    def label(self) -> str:
        """:attr:`label_index` as a class name (not a decision; see :attr:`label_index`)."""
        return CLASS_NAMES[self.label_index]

    @property
    def mode(self) -> str:
        """The input mode in words: ``"lesion box"`` (the user's), ``"lesion box (automatic)"``,
        ``"whole image + automatic box"`` (fusion) or ``"whole image"``."""
        if self.box_source == "auto":
            return "whole image + automatic box" if self.fused else "lesion box (automatic)"
        return "lesion box" if self.roi is not None else "whole image"


@dataclass(frozen=True)
class HeatMaps:
    """Evidence maps for both classes, float32 in [0, 1] at the input image's own size."""

    benign: np.ndarray
    malignant: np.ndarray
    method: str
    prediction: Prediction

    def for_class(self, index: int) -> np.ndarray:
        return (self.benign, self.malignant)[index]
