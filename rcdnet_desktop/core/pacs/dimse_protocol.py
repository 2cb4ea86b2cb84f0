"""What the app negotiates over DICOM, and what the answers mean in words.

No Qt here. The SOP classes and transfer syntaxes a retrieve accepts, the presentation
contexts of a C-GET, and DIMSE statuses and association rejections in plain words (used by
:mod:`.dimse` and :mod:`.dicomweb`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rcdnet_desktop.core.pacs.nodes import PacsNode

VERIFICATION = "1.2.840.10008.1.1"

RETRIEVE_SOP_CLASSES: tuple[str, ...] = (
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.6",  # Ultrasound Image (retired)
    "1.2.840.10008.5.1.4.1.1.3",  # Ultrasound Multi-frame Image (retired)
    "1.2.840.10008.5.1.4.1.1.6.2",  # Enhanced US Volume
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray (presentation)
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray (processing)
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray (presentation)
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic
)
"""What a retrieve accepts: ultrasound, secondary captures, reports and the other objects a
breast study may hold (a study's other objects are fetched too, so the PACS reports no
failures; the viewer opens those it can read)."""

TRANSFER_SYNTAXES: tuple[str, ...] = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
)
"""Transfer syntaxes a retrieve accepts as they are (the readers decode all of them), so the
PACS need not convert."""

STORE_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")

_OFTEN_COMPRESSED = RETRIEVE_SOP_CLASSES[:6]
"""Image classes that a C-GET offers once per transfer syntax: a PACS answers each presentation
context with one syntax, and one that cannot convert (Orthanc without its transcoding) can then
still send a JPEG 2000 image in the context that offers JPEG 2000."""


def get_contexts() -> list[tuple[str, list[str]]]:
    """The presentation contexts of a C-GET (fewer than the 128 an association may hold)."""
    contexts = [(sop, [ts]) for sop in _OFTEN_COMPRESSED for ts in TRANSFER_SYNTAXES]
    contexts += [(sop, list(STORE_SYNTAXES)) for sop in RETRIEVE_SOP_CLASSES
                 if sop not in _OFTEN_COMPRESSED]
    return contexts


def status_words(code: int | None, status=None) -> str:
    """A DIMSE status in plain words, with its code (and the PACS's comment, if any)."""
    if code is None:
        return "no status"
    ranges = [
        (0x0000, 0x0000, "success"),
        (0x0105, 0x0106, "an attribute or value the PACS does not accept"),
        (0x0110, 0x0110, "processing failure on the PACS"),
        (0x0111, 0x0111, "the object is already there"),
        (0x0112, 0x0112, "no such object"),
        (0x0117, 0x0117, "invalid object"),
        (0x0122, 0x0122, "the PACS does not support this kind of object"),
        (0x0124, 0x0124, "not authorised"),
        (0x0211, 0x0211, "the PACS does not support this operation"),
        (0x0213, 0x0213, "the PACS is out of resources"),
        (0xA700, 0xA7FF, "the PACS is out of resources (its disk may be full)"),
        (0xA801, 0xA801, "the PACS does not know the move destination"),
        (0xA900, 0xA9FF, "the data does not match what the PACS expects"),
        (0xB000, 0xB000, "some instances could not be sent"),
        (0xB006, 0xB007, "stored, with some values changed or left out"),
        (0xC000, 0xCFFF, "the PACS cannot process the request"),
        (0xFE00, 0xFE00, "cancelled"),
    ]
    words = next((w for lo, hi, w in ranges if lo <= code <= hi), "failure")
    comment = ""
    if status is not None:
        comment = str(status.get("ErrorComment", "") or "").strip()
    return f"{words} (status 0x{code:04X}{': ' + comment if comment else ''})"


def rejection_words(assoc, node: PacsNode) -> str:
    prim = getattr(getattr(assoc, "acceptor", None), "primitive", None)
    if prim is None:
        return "the PACS rejected the connection"
    source, diagnostic = prim.result_source, prim.diagnostic
    for_now = " for now" if prim.result == 2 else ""
    if source == 1 and diagnostic == 3:
        return (f"the PACS rejected the connection{for_now}: it does not know this app's AE "
                f"title {node.calling_ae_title} (add it to the PACS's list of DICOM nodes, or "
                "correct the own AE title)")
    if source == 1 and diagnostic == 7:
        return (f"the PACS rejected the connection{for_now}: it does not answer to the AE "
                f"title {node.ae_title} (check the PACS's AE title)")
    if source == 1 and diagnostic == 2:
        return f"the PACS rejected the connection{for_now}: it does not speak this DICOM dialect"
    if source == 3:
        return (f"the PACS rejected the connection{for_now}: it is busy (too many "
                "connections); try again later")
    reason = getattr(prim, "reason_str", "") or "no reason given"
    return f"the PACS rejected the connection{for_now} ({reason})"


__all__: Sequence[str] = ("RETRIEVE_SOP_CLASSES", "STORE_SYNTAXES", "TRANSFER_SYNTAXES",
                          "VERIFICATION", "get_contexts", "rejection_words", "status_words")
