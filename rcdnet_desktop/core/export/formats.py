"""The export formats: one table that the GUI's export dialog and ``rcdnet classify --export``
are built from.

No Qt here. Each :class:`ExportFormat` says what a user picks (key, label, file suffix, file
dialog filter), whether the file can carry the patient's identity, whether it needs a DICOM
source, and which function writes it. Every writer takes the same arguments -- the target, the
source's record, the rendered :class:`~rcdnet_desktop.core.export.report.Report`, whether to
include the patient's identity, whether to replace an existing file -- so a caller dispatches
through :func:`write_report` without knowing the formats, and every file written is recorded
in the audit trail there (:mod:`rcdnet_desktop.core.audit`). Adding a format is one entry in
:data:`EXPORT_FORMATS` (and its writer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rcdnet_desktop.core import audit
from rcdnet_desktop.core.export.dicom_sc import export_dicom_sc
from rcdnet_desktop.core.export.dicom_sr import export_dicom_sr
from rcdnet_desktop.core.export.pdf import export_pdf
from rcdnet_desktop.core.export.png import export_png
from rcdnet_desktop.core.export.report import Report
from rcdnet_desktop.core.types import ImageRecord

NOT_DICOM = "the source is not a DICOM image (the SR and SC need a DICOM source)"
"""Why an SR or SC was not made for a file (the CLI's and the archive's words)."""


class Writer(Protocol):
    """Writes one export atomically and returns the written path.

    ``include_patient`` asks for the patient's identity where the format holds it beyond the
    report's pixels and text (a DICOM header); the report itself shows the identity only when
    it was rendered with the patient.
    """

    def __call__(self, path: str | Path, record: ImageRecord, report: Report, *,
                 include_patient: bool, overwrite: bool) -> Path: ...


@dataclass(frozen=True)
class ExportFormat:
    """One row of the export table.

    Attributes
    ----------
    key : str
        Short name, for code, settings and ``rcdnet classify --export KEY``.
    label : str
        What the user reads in the export dialog.
    suffix : str
        The file suffix, with its dot.
    filter_name : str
        The kind of file in a file dialog ("PNG images").
    can_include_patient : bool
        The file can carry the patient's name and ID (the dialog offers to include them).
    needs_dicom_source : bool
        Only an image opened from a DICOM file can be exported in this format.
    write : Writer
        Writes the file (atomically, never replacing one unless asked).
    name_tag : str
        What a default file name ends with before the suffix (``<stem>_<name_tag><suffix>``),
        so two formats with one suffix get different names.

    A format that needs a DICOM source is a DICOM object: with the patient it joins the
    source's patient and study (for the PACS), without it is consistently de-identified
    (:mod:`rcdnet_desktop.core.export.dicom_identity`).
    """

    key: str
    label: str
    suffix: str
    filter_name: str
    can_include_patient: bool
    needs_dicom_source: bool
    write: Writer
    name_tag: str = "rcdnet"

    @property
    def file_filter(self) -> str:
        """The Qt file-dialog filter, e.g. ``"PNG images (*.png)"``."""
        return f"{self.filter_name} (*{self.suffix})"


def _png(path: str | Path, record: ImageRecord, report: Report, *, include_patient: bool,
         overwrite: bool) -> Path:
    return export_png(path, report, overwrite=overwrite)


def _pdf(path: str | Path, record: ImageRecord, report: Report, *, include_patient: bool,
         overwrite: bool) -> Path:
    return export_pdf(path, report, overwrite=overwrite)


def _dicom_sc(path: str | Path, record: ImageRecord, report: Report, *, include_patient: bool,
              overwrite: bool) -> Path:
    return export_dicom_sc(path, record, report, include_patient=include_patient,
                           overwrite=overwrite)


def _dicom_sr(path: str | Path, record: ImageRecord, report: Report, *, include_patient: bool,
              overwrite: bool) -> Path:
    return export_dicom_sr(path, record, report.prediction, include_patient=include_patient,
                           overwrite=overwrite, when=report.when,
                           measurements=report.measurements,
                           operating_point=report.operating_point)


EXPORT_FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat("png", "Annotated image (PNG)", ".png", "PNG images",
                 can_include_patient=True, needs_dicom_source=False, write=_png),
    ExportFormat("pdf", "One-page report (PDF)", ".pdf", "PDF files",
                 can_include_patient=True, needs_dicom_source=False, write=_pdf),
    ExportFormat("dicom", "DICOM Secondary Capture", ".dcm", "DICOM files",
                 can_include_patient=True, needs_dicom_source=True, write=_dicom_sc),
    ExportFormat("sr", "DICOM Structured Report (the finding as coded data)", ".dcm",
                 "DICOM files", can_include_patient=True, needs_dicom_source=True,
                 write=_dicom_sr, name_tag="rcdnet_sr"),
)
"""Every export format, in the order a user is offered them."""


def export_format(key: str) -> ExportFormat:
    """The table entry named ``key``.

    Raises
    ------
    ValueError
        No format has that key.
    """
    for fmt in EXPORT_FORMATS:
        if fmt.key == key:
            return fmt
    raise ValueError(f"unknown export format {key!r}; choose one of: "
                     + ", ".join(f.key for f in EXPORT_FORMATS))


def export_file_name(record: ImageRecord, frame: int, key: str, tag: str | None = None) -> str:
    """The default file name of an export: ``<stem>[_frame<n>]_<tag><suffix>``, ``tag`` being
    the format's :attr:`~ExportFormat.name_tag` unless given.

    The frame (counted from 1) is named only for a multi-frame source.
    """
    fmt = export_format(key)
    stem = record.path.stem or "image"
    if record.frame_count > 1:
        stem += f"_frame{frame + 1}"
    return f"{stem}_{fmt.name_tag if tag is None else tag}{fmt.suffix}"


def write_report(key: str, path: str | Path, record: ImageRecord, report: Report, *,
                 include_patient: bool = False, overwrite: bool = False) -> Path:
    """Write ``report`` in format ``key``; returns the written path.

    Raises
    ------
    ValueError
        An unknown format, or a format that needs a DICOM source for another kind of image
        (nothing is written).
    rcdnet_desktop.core.errors.ExportExistsError
        The file exists and ``overwrite`` is False.
    rcdnet_desktop.core.errors.ExportError
        It could not be written; the message says why.
    """
    fmt = export_format(key)
    if fmt.needs_dicom_source and not record.is_dicom:
        raise ValueError(f"{fmt.label} export needs a DICOM source image")
    written = fmt.write(path, record, report, include_patient=include_patient,
                        overwrite=overwrite)
    identity = ("with the patient" if include_patient or report.patient_included
                else "de-identified" if fmt.key == "sr" or report.identity_removed
                else "without the patient, burned-in text may remain")
    audit.record_event("export", objects=audit.record_objects(record),
                       destination={"file": str(written)}, detail=f"{fmt.key}, {identity}")
    return written


__all__: Sequence[str] = (
    "EXPORT_FORMATS",
    "ExportFormat",
    "Writer",
    "export_file_name",
    "export_format",
    "write_report",
)
