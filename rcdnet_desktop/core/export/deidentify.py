"""De-identifying the pixels of an export: what is blanked, and what is said when nothing can be.

No Qt here. Ultrasound scanners burn the patient's name and ID, the date and the hospital into
the frame, usually in a header band above the image and in side panels. A DICOM ultrasound
frame says where its image data lies (SequenceOfUltrasoundRegions, read into
:attr:`~rcdnet_desktop.core.types.ImageRecord.image_areas`): a de-identified export (PNG, PDF,
Secondary Capture without the patient) shows only those regions and blanks everything outside
them, the header band included (:func:`blank_outside`). A frame without region data (a PNG, a
DICOM that does not say) cannot be cleaned that way: its export keeps the pixels whole, says so
on the report (:data:`BURNED_IN_NOTE`), and its Secondary Capture does not claim that the
identity was removed (:func:`identity_marks`).

Text that a scanner burns *inside* an image region (rare: labels, not names) is not detected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rcdnet_desktop.core.types import Box, ImageRecord

BURNED_IN_NOTE = ("Text burned into the image (such as the scanner's header) may still "
                  "identify the patient: the source has no ultrasound region data to blank it by.")
"""What a de-identified report says when its pixels could not be cleaned."""

METHOD_BLANKED = "Header identifiers removed; pixels outside US regions blanked"
METHOD_NOT_BLANKED = "Header identifiers removed; burned-in text may remain"
METHOD_NO_PIXELS = "Header identifiers removed"
"""DeidentificationMethod (LO, 64 characters at most) of a de-identified object: its pixels
blanked outside the regions, kept whole, or an object without pixels (a structured report)."""


def burned_in_warning(record: ImageRecord, *, include_patient: bool) -> str | None:
    """What to tell the user before or after exporting ``record`` without the patient: None
    when the export will be de-identified (or carries the patient anyway), else
    :data:`BURNED_IN_NOTE`."""
    if include_patient or record.image_areas:
        return None
    return BURNED_IN_NOTE


def blank_outside(pixels: np.ndarray, areas: Sequence[Box]) -> np.ndarray:
    """A copy of ``pixels`` (H, W) or (H, W, 3) that is black outside the union of ``areas``.

    Raises
    ------
    ValueError
        No areas: there would be nothing left to show.
    """
    if not areas:
        raise ValueError("no ultrasound regions: nothing to keep")
    keep = np.zeros(pixels.shape[:2], dtype=bool)
    for b in areas:
        keep[max(b.y, 0):b.y + b.h, max(b.x, 0):b.x + b.w] = True
    out = np.zeros_like(pixels)
    out[keep] = pixels[keep]
    return out


def identity_marks(*, include_patient: bool, pixels_blanked: bool | None) -> dict[str, str]:
    """The DICOM attributes that say what was done to the patient's identity.

    ``pixels_blanked`` is None for an object without pixels (a structured report). With the
    patient: nothing is claimed. Without: PatientIdentityRemoved YES only when no pixel can
    still show the identity; otherwise NO, and BurnedInAnnotation YES.
    """
    if include_patient:
        return {"BurnedInAnnotation": "YES"} if pixels_blanked is not None else {}
    if pixels_blanked is None:
        return {"PatientIdentityRemoved": "YES", "DeidentificationMethod": METHOD_NO_PIXELS}
    if pixels_blanked:
        return {"PatientIdentityRemoved": "YES", "BurnedInAnnotation": "NO",
                "DeidentificationMethod": METHOD_BLANKED}
    return {"PatientIdentityRemoved": "NO", "BurnedInAnnotation": "YES",
            "DeidentificationMethod": METHOD_NOT_BLANKED}


__all__: Sequence[str] = ("BURNED_IN_NOTE", "METHOD_BLANKED",
                          "METHOD_NOT_BLANKED", "METHOD_NO_PIXELS", "blank_outside",
                          "burned_in_warning", "identity_marks")
