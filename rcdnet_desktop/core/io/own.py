"""This program's own DICOM objects, told apart from a scanner's: never classified again.

A Secondary Capture or Structured Report that this program wrote and sent to a PACS comes back
when the study is retrieved. It is recognised by what the writers put in it
(:mod:`rcdnet_desktop.core.dicom_codes`): its SOP class, the Manufacturer and the series
description. Classifying the Secondary Capture would classify a picture of a result (with its
heat maps burned in); an SR has no pixels to classify. :func:`not_classified` is the one rule
the viewer, the batch review and the CLI follow, and says why in words.
"""

from __future__ import annotations

from .. import dicom_codes as dc
from ..types import ImageRecord, StudyInfo

OWN_NOTE = "a result exported by RcdNet Desktop, not classified again"
"""Why an SC or SR this program wrote is shown, not classified."""
OTHER_SR_NOTE = "a structured report (a stored result, not an image): shown as text, not " \
    "classified"
"""Why another tool's SR is shown, not classified."""


def own_object(study: StudyInfo) -> str:
    """``"sc"`` or ``"sr"`` for a Secondary Capture or Structured Report this program wrote
    (by its SOP class, Manufacturer and series description), else ``""``."""
    if study.manufacturer != dc.MANUFACTURER:
        return ""
    if study.sop_class_uid == dc.SECONDARY_CAPTURE \
            and study.series_description == dc.SC_SERIES_DESCRIPTION:
        return "sc"
    if study.sop_class_uid in dc.SR_CLASSES \
            and study.series_description == dc.SR_SERIES_DESCRIPTION:
        return "sr"
    return ""


def not_classified(record: ImageRecord) -> str:
    """Why ``record`` is shown but not classified, or ``""`` when it is an image to classify."""
    if record.stored is not None:
        return OWN_NOTE if record.stored.own else OTHER_SR_NOTE
    if own_object(record.study):
        return OWN_NOTE
    return ""


__all__ = ["OTHER_SR_NOTE", "OWN_NOTE", "not_classified", "own_object"]
