"""Exports: annotated report image (PNG), one-page PDF report, DICOM Secondary Capture.

No Qt here: the GUI and the CLI call these functions (off the GUI thread if they like) and show
the errors. The pieces live in their own modules and the names the rest of the program uses are
re-exported here:

* :mod:`.formats` -- the table of export formats (:data:`EXPORT_FORMATS`): each one's key,
  label, file suffix, whether it can carry the patient's identity, and its writer; the GUI's
  export dialog and ``rcdnet classify --export`` are built from it, so adding a format is one
  entry there;
* :mod:`.report` -- the report image, its layout and its text (:func:`render_report`,
  :class:`ReportOptions`, :class:`Report`);
* :mod:`.png` -- the report as PNG (:func:`export_png`);
* :mod:`.pdf` -- the one-page PDF (:func:`pdf_bytes`, :func:`export_pdf`);
* :mod:`.dicom_sc` -- the Secondary Capture (:func:`dicom_sc_dataset`, :func:`export_dicom_sc`);
* :mod:`.deidentify` -- what a de-identified export blanks, and says when it cannot;
* :mod:`.batch_csv` -- the batch-review table as CSV, shared by the CLI and the batch dialog;
* :mod:`rcdnet_desktop.core.atomic` -- atomic writes, the only way this program writes a
  file (:func:`~rcdnet_desktop.core.atomic.atomic_write`), shared with the training package;
* :mod:`rcdnet_desktop.core.errors` -- :class:`ExportError` and :class:`ExportExistsError`.

Patient identifiers
-------------------
They appear only where the caller asks: in the report image when the :class:`ReportOptions`
given to :func:`render_report` hold a ``patient``, in the DICOM header when
``include_patient=True``. They are never written
into PNG text chunks or PDF metadata, which a user cannot see and would not think to scrub.
Text that the scanner burned into the source pixels (ultrasound header bars often show the
patient's name or ID) is blanked in a de-identified report (rendered without the patient):
only the source's ultrasound regions are shown. A source without region data keeps its pixels;
its report says that burned-in text may remain, and its Secondary Capture does not claim the
identity removed (:mod:`.deidentify`).

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

from rcdnet_desktop.core.errors import ExportError, ExportExistsError
from rcdnet_desktop.core.export.dicom_sc import (
    SECONDARY_CAPTURE_SOP_CLASS,
    dicom_sc_dataset,
    export_dicom_sc,
)
from rcdnet_desktop.core.export.formats import (
    EXPORT_FORMATS,
    ExportFormat,
    export_file_name,
    export_format,
    write_report,
)
from rcdnet_desktop.core.export.pdf import export_pdf, pdf_bytes
from rcdnet_desktop.core.export.png import export_png
from rcdnet_desktop.core.export.report import (
    DECISION_SUPPORT_NOTE,
    PANEL_TITLES,
    SOFTWARE_NAME,
    Report,
    ReportLayout,
    ReportLine,
    ReportOptions,
    format_person_name,
    render_report,
    report_lines,
)

__all__: Sequence[str] = (
    "DECISION_SUPPORT_NOTE",
    "EXPORT_FORMATS",
    "PANEL_TITLES",
    "SECONDARY_CAPTURE_SOP_CLASS",
    "SOFTWARE_NAME",
    "ExportError",
    "ExportExistsError",
    "ExportFormat",
    "Report",
    "ReportLayout",
    "ReportLine",
    "dicom_sc_dataset",
    "export_dicom_sc",
    "export_file_name",
    "export_format",
    "export_pdf",
    "export_png",
    "format_person_name",
    "pdf_bytes",
    "ReportOptions",
    "render_report",
    "report_lines",
    "write_report",
)
