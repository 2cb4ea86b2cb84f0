"""Exports: annotated report image (PNG), one-page PDF report, DICOM Secondary Capture.

No Qt here: the GUI calls these functions (off the GUI thread if it likes) and shows the errors.
This module writes the files; the pieces live in their own modules and the names the rest of the
program uses are re-exported here:

* :mod:`.report` -- the report image, its layout and its text (:func:`render_report`,
  :func:`render_record_report`, :class:`Report`);
* :mod:`.pdf` -- the one-page PDF (:func:`pdf_bytes`);
* :mod:`.dicom_sc` -- the Secondary Capture dataset (:func:`dicom_sc_dataset`);
* :mod:`.atomic` -- atomic writes, the only way this program writes a file
  (:func:`atomic_write`);
* :mod:`rcdnet_desktop.core.errors` -- :class:`ExportError` and :class:`ExportExistsError`.

Patient identifiers
-------------------
They appear only where the caller asks: in the report image when ``patient`` is passed to
:func:`render_report`, in the DICOM header when ``include_patient=True``. They are never written
into PNG text chunks or PDF metadata, which a user cannot see and would not think to scrub.
Text that the scanner burned into the source pixels (ultrasound header bars often show the
patient's name or ID) is part of the image and stays in every panel: nothing here detects or
masks it, and the DICOM export says so in DeidentificationMethod.

Writing files
-------------
Every export is atomic: the bytes go to a temporary file in the target's folder, are flushed and
fsync'ed, and only then take the target's name. On any failure the temporary file is removed and
no partial target remains. An existing file is never replaced unless ``overwrite=True``; even a
file that appears while the export runs is not replaced (the final step is a hard link, which
fails if the name is taken).

Errors
------
:class:`ExportExistsError`
    The target exists and ``overwrite`` is False. It is also a :class:`FileExistsError`.
:class:`ExportError`
    Anything else that stopped the file being written (missing or unwritable folder, disk full,
    an encoder failure). The message names the file and the reason, ready to show to a user.
:class:`ValueError`
    Bad arguments (mismatched heat-map size, a report with patient data burned in exported as a
    DICOM that claims the identity was removed...), raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rcdnet_desktop.core.errors import ExportError, ExportExistsError
from rcdnet_desktop.core.export.atomic import atomic_write
from rcdnet_desktop.core.export.dicom_sc import SECONDARY_CAPTURE_SOP_CLASS, dicom_sc_dataset
from rcdnet_desktop.core.export.pdf import pdf_bytes
from rcdnet_desktop.core.export.report import (
    DECISION_SUPPORT_NOTE,
    PANEL_TITLES,
    SOFTWARE_NAME,
    Report,
    ReportLayout,
    ReportLine,
    format_person_name,
    render_record_report,
    render_report,
    report_lines,
)
from rcdnet_desktop.core.overlay import as_rgb
from rcdnet_desktop.core.types import ImageRecord

# --- PNG -----------------------------------------------------------------------------------------


def export_png(
    path: str | Path,
    report: Report | np.ndarray,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a report image as PNG.

    Parameters
    ----------
    path : str or Path
        Target file.
    report : Report or numpy.ndarray
        A :class:`Report` (its non-identifying summary goes into PNG text chunks) or a bare
        uint8 RGB image.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.
    """
    from PIL import Image, PngImagePlugin

    rgb = report.image if isinstance(report, Report) else as_rgb(report)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE_NAME)
    info.add_text("Disclaimer", DECISION_SUPPORT_NOTE)
    if isinstance(report, Report):
        # Never patient identifiers: text chunks are invisible and survive cropping.
        for key, value in report.summary.items():
            if key not in ("Software", "Disclaimer") and value:
                info.add_itxt(key, value)
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")

    def write(fh: BinaryIO) -> None:
        image.save(fh, format="PNG", pnginfo=info, compress_level=6)

    return atomic_write(path, write, overwrite=overwrite)


# --- PDF -----------------------------------------------------------------------------------------


def export_pdf(
    path: str | Path,
    report: Report,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a one-page PDF report (see :func:`pdf_bytes`) atomically.

    Patient identifiers appear in the page text only when they were passed to
    :func:`render_report`; they never go into the PDF's metadata.
    """
    if not isinstance(report, Report):
        raise TypeError("export_pdf needs a Report from render_report (it uses the report text)")
    data = pdf_bytes(report)

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    return atomic_write(path, write, overwrite=overwrite)


# --- DICOM Secondary Capture ---------------------------------------------------------------------


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


__all__: Sequence[str] = (
    "DECISION_SUPPORT_NOTE",
    "PANEL_TITLES",
    "SECONDARY_CAPTURE_SOP_CLASS",
    "ExportError",
    "ExportExistsError",
    "Report",
    "ReportLayout",
    "ReportLine",
    "atomic_write",
    "dicom_sc_dataset",
    "export_dicom_sc",
    "export_pdf",
    "export_png",
    "format_person_name",
    "pdf_bytes",
    "render_record_report",
    "render_report",
    "report_lines",
)
