"""The codes of this program's DICOM objects, in one table: what its Structured Report says
in coded form, and how its own objects are told apart from a scanner's.

No Qt and no pydicom here (a :class:`Concept` is a plain triple; the SR writer turns it into
highdicom's ``CodedConcept``), so the reader of SR documents and the writer share the table
without importing each other. The decision's words are :mod:`rcdnet_desktop.core.result`'s.

Standard codes first: SNOMED CT (``SCT``), DICOM (``DCM``, PS3.16) and UCUM, each checked
against pydicom's tables of PS3.16 by the tests. The BI-RADS ultrasound lexicon is coded with
the context groups of PS3.16 for breast imaging: CID 6005 (shape), CID 6007 (margin), CID 6154
(echo pattern), CID 6155 (posterior acoustic features), CID 6054 (breast imaging findings) and
CID 241 (present / absent). A private code of :data:`SCHEME` is used only where the standard
has none:

* the model's decision at its card's suspicious cut-off ("suspicious" / "below the cut-off")
  and the likelihood band (a range of the calibrated probability aligned with a BI-RADS
  likelihood-of-malignancy range; not a BI-RADS assessment, so not coded as one);
* the lexicon classes this program merges or that PS3.16 lacks: "oval or round" (the heads do
  not tell oval from round), "not circumscribed", the 5th edition's "heterogeneous" echo
  pattern, and "other" echo patterns.

The scheme is declared in every SR (Coding Scheme Identification Sequence, :data:`SCHEME_NAME`)
so a reader knows whose codes they are. Never a pathology: the model cannot know one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rcdnet_desktop.core import result


@dataclass(frozen=True)
class Concept:
    """A coded concept: code value, coding scheme designator, code meaning (at most 64)."""

    value: str
    scheme: str
    meaning: str

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the concept (the meaning is only its words)."""
        return (self.scheme, self.value)


SCHEME = "99RCDNET"
"""This program's private coding scheme designator ("99" prefix: a local scheme)."""
SCHEME_NAME = "RcdNet Desktop decision support codes"
SCHEME_VERSION = "1"


def _own(value: str, meaning: str) -> Concept:
    return Concept(value, SCHEME, meaning[:64])


# --- identification: what this program writes into its own objects ----------------------------

MANUFACTURER = "RcdNet Desktop"
"""Manufacturer of every object this program writes (the report's software name)."""
SC_SERIES_DESCRIPTION = "RcdNet decision support (Grad-CAM)"
SR_SERIES_DESCRIPTION = "RcdNet decision support (structured report)"
SC_SERIES_NUMBER = 9901  # high, so a PACS lists the derived series after the acquisitions
SR_SERIES_NUMBER = 9902

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SR_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
}
"""The Structured Report storage classes whose content tree the SR reader shows."""


# --- the report and its finding -----------------------------------------------------------

PROCEDURE = Concept("47079000", "SCT", "Ultrasonography of breast")
FINDING = Concept("4147007", "SCT", "Mass")
FINDING_SITE = Concept("76752008", "SCT", "Breast")
PROBABILITY = Concept("111047", "DCM", "Probability of cancer")
NO_UNITS = Concept("1", "UCUM", "no units")
COMMENT = Concept("121106", "DCM", "Comment")

DECISION = _own("DECISION", "Result at the model's suspicious cut-off")
SUSPICIOUS = _own("SUSPICIOUS", result.SUSPICIOUS)
BELOW_CUTOFF = _own("BELOW-CUTOFF", result.BELOW_CUTOFF)
BAND = _own("BAND", "Likelihood band of the calibrated probability")
BAND_PREFIX = "BAND-"
CUTOFF_PARAMETER = "suspicious cut-off"
"""How the SR names the cut-off among the algorithm's parameters: ``suspicious cut-off 0.158``."""


def decision_code(suspicious: bool) -> Concept:
    """The decision at the card's cut-off as a code."""
    return SUSPICIOUS if suspicious else BELOW_CUTOFF


def band_code(name: str, label: str) -> Concept:
    """The code of the likelihood band named ``name`` (its meaning: the band's label with its
    range, e.g. ``"moderate (10-50%)"``). Bands come from the model card: the code is made from
    the band's name (``BAND-MODERATE``)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").upper() or "X"
    return _own(BAND_PREFIX + slug[:16 - len(BAND_PREFIX)], label)


# --- lengths (TID 1410 / TID 300) -------------------------------------------------------------

WIDTH = Concept("103355008", "SCT", "Width")
HEIGHT = Concept("121207", "DCM", "Height")
LENGTH = Concept("410668003", "SCT", "Length")
MILLIMETRE = Concept("mm", "UCUM", "millimeter")
PIXELS = Concept("{pixels}", "UCUM", "pixels")
"""UCUM annotation of a dimensionless count: a length in image pixels (the file gives no
scale), so no reader takes it for millimetres."""
UNITS = {"mm": MILLIMETRE, "px": PIXELS}
"""The units of :class:`rcdnet_desktop.core.measure.Length` as UCUM codes."""


# --- the lexicon: (descriptor, class) -> (concept name, value) --------------------------------

SHAPE = Concept("300842002", "SCT", "Shape")
MARGINS = Concept("111037", "DCM", "Margins")
ECHO_PATTERN = Concept("111360", "DCM", "Echo pattern")
POSTERIOR = Concept("111366", "DCM", "Posterior acoustic features")
CALCIFICATION = Concept("309587003", "SCT", "Calcification of breast")
PRESENT = Concept("52101004", "SCT", "Present")
ABSENT = Concept("272519000", "SCT", "Absent")

_INDISTINCT = Concept("129741003", "SCT", "Indistinct lesion")
_ANGULAR = Concept("111343", "DCM", "Angular margins")
_MICROLOBULATED = Concept("129739004", "SCT", "Microlobulated lesion")
_SPICULATED = Concept("129742005", "SCT", "Spiculated lesion")


def _subtype(name: str, code: Concept) -> dict[tuple[str, str], tuple[Concept, Concept]]:
    # A margin subtype seen is a margin (CID 6007); one not seen is that feature, absent.
    return {(name, "yes"): (MARGINS, code), (name, "no"): (code, ABSENT)}


LEXICON: dict[tuple[str, str], tuple[Concept, Concept]] = {
    ("shape", "oval or round"): (SHAPE, _own("OVAL-OR-ROUND", "Oval or round shape")),
    ("shape", "irregular"): (SHAPE, Concept("49608001", "SCT", "Irregular")),
    ("margin", "circumscribed"): (MARGINS, Concept("129738007", "SCT", "Circumscribed lesion")),
    ("margin", "not circumscribed"): (MARGINS, _own("NONCIRCUMSCRIBED",
                                                    "Not circumscribed margin")),
    **_subtype("margin indistinct", _INDISTINCT),
    **_subtype("margin angular", _ANGULAR),
    **_subtype("margin microlobulated", _MICROLOBULATED),
    **_subtype("margin spiculated", _SPICULATED),
    ("echo pattern", "hypoechoic"): (ECHO_PATTERN, Concept("111364", "DCM", "Hypoechoic")),
    ("echo pattern", "heterogeneous"): (ECHO_PATTERN, _own("HETEROGENEOUS",
                                                           "Heterogeneous echo pattern")),
    ("echo pattern", "other (anechoic, isoechoic, hyperechoic or complex)"): (
        ECHO_PATTERN, _own("ECHO-OTHER", "Anechoic, isoechoic, hyperechoic or complex")),
    ("posterior features", "none"): (POSTERIOR, Concept("111367", "DCM",
                                                        "No posterior acoustic features")),
    ("posterior features", "shadowing"): (POSTERIOR, Concept("111369", "DCM",
                                                             "Posterior shadowing")),
    ("posterior features", "enhancement"): (POSTERIOR, Concept("111368", "DCM",
                                                               "Posterior enhancement")),
    ("calcifications", "none"): (CALCIFICATION, ABSENT),
    ("calcifications", "present"): (CALCIFICATION, PRESENT),
}
"""Every lexicon descriptor class (:data:`rcdnet_desktop.core.lexicon.DESCRIPTORS`) as the
(concept name, value) pair of a qualitative evaluation."""

_LEXICON_BACK = {(n.key, v.key): words for words, (n, v) in LEXICON.items()}


def lexicon_words(name: tuple[str, str], value: tuple[str, str]) -> tuple[str, str] | None:
    """The (descriptor, class) a coded (name, value) pair stands for, or None."""
    return _LEXICON_BACK.get((name, value))


def private_concepts() -> list[Concept]:
    """Every concept of :data:`SCHEME` in the table (for the documentation and the tests)."""
    out = [DECISION, SUSPICIOUS, BELOW_CUTOFF, BAND]
    out += [c for pair in LEXICON.values() for c in pair if c.scheme == SCHEME]
    return list(dict.fromkeys(out))


__all__ = [
    "BAND",
    "Concept",
    "DECISION",
    "LEXICON",
    "MANUFACTURER",
    "SCHEME",
    "SC_SERIES_DESCRIPTION",
    "SR_CLASSES",
    "SR_SERIES_DESCRIPTION",
    "band_code",
    "decision_code",
    "lexicon_words",
    "private_concepts",
]
