"""What ``rcdnet classify`` makes of each classified image besides its row.

Files: ``--export FORMAT`` (into ``--export-dir``), ``--heatmaps DIR`` (the PNG report named
``<name>_heatmaps.png``) and ``--sr DIR`` (the DICOM Structured Report). Each is one
:class:`FileOutput`, and every file, whatever option asked for it, is written by one method,
``_Made.write``, through the export table
(:func:`~rcdnet_desktop.core.export.formats.write_report`) as the viewer's exports are:
``--sr DIR`` and ``--export sr`` write the same SR. Two options naming the same file write it
once.

PACS: ``--send`` (:class:`~rcdnet_desktop.cli_pacs.ResultSender`) receives the SR and, with
``--send-sc``, the Secondary Capture, made here with the same time as the files.

Each image's report is rendered at most once per identity (without the patient for files, with
the patient for the PACS), and only when something needs it. Without the patient the report is
de-identified: the image is blanked outside its ultrasound regions; files of images without
region data keep their pixels whole, and one closing note says so (:meth:`Outputs.notes`). An
option that wrote or sent nothing over a whole run in which images were classified is a
failure of the run: one line says why (:meth:`Outputs.problems`).
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rcdnet_desktop.core.atomic import check_folder
from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.errors import ExportError, RcdNetError
from rcdnet_desktop.core.export.deidentify import BURNED_IN_NOTE
from rcdnet_desktop.core.export.dicom_sc import dicom_sc_dataset
from rcdnet_desktop.core.export.dicom_sr import dicom_sr_dataset
from rcdnet_desktop.core.export.formats import (
    NOT_DICOM,
    export_file_name,
    export_format,
    write_report,
)
from rcdnet_desktop.core.export.report import ReportOptions, render_report

if TYPE_CHECKING:
    from rcdnet_desktop.cli_pacs import ResultSender
    from rcdnet_desktop.core.export.report import Report
    from rcdnet_desktop.core.operating_point import OperatingPoint


@dataclass(frozen=True)
class FileOutput:
    """One kind of file asked on the command line.

    Attributes
    ----------
    option : str
        The option that asked for it, as the user typed it ("--sr", "--export pdf").
    key : str
        Its export format (:data:`~rcdnet_desktop.core.export.formats.EXPORT_FORMATS`).
    folder : Path
        Where the files go.
    tag : str
        What each file name ends with before the suffix.
    """

    option: str
    key: str
    folder: Path
    tag: str


def file_outputs(args: argparse.Namespace) -> list[FileOutput]:
    """The files asked by ``--export``/``--export-dir``, ``--heatmaps`` and ``--sr``, each
    (format, folder, name) once.

    Raises
    ------
    ValueError
        ``--export-dir`` without ``--export``.
    """
    if args.export_dir and not args.export:
        raise ValueError("--export-dir needs --export FORMAT")
    folder = args.export_dir or Path(".")
    asked = [FileOutput(f"--export {key}", key, folder, export_format(key).name_tag)
             for key in args.export or ()]
    if args.heatmaps is not None:
        asked.append(FileOutput("--heatmaps", "png", args.heatmaps, "heatmaps"))
    if args.sr is not None:
        asked.append(FileOutput("--sr", "sr", args.sr, export_format("sr").name_tag))
    unique: dict[tuple[str, Path, str], FileOutput] = {}
    for out in asked:
        unique.setdefault((out.key, out.folder.resolve(), out.tag), out)
    return list(unique.values())


def check_folders(outputs: list[FileOutput]) -> None:
    """Create the output folders and make sure they can be written, before any work.

    Raises
    ------
    ValueError
        Naming the option, the folder and why.
    """
    for out in outputs:
        try:
            check_folder(out.folder)
        except ExportError as exc:
            option = "--export-dir" if out.option.startswith("--export ") else out.option
            raise ValueError(f"{option}: {exc}") from exc


@dataclass
class _Tally:
    """What one option produced over the run: files written, and why the others were not."""

    done: int = 0
    why_not: Counter[str] = field(default_factory=Counter)


class _Made:
    """One image's report and DICOM objects, each made once when first asked for."""

    def __init__(self, item: BatchItem, operating_point: OperatingPoint | None) -> None:
        assert item.record is not None and item.heatmaps is not None
        self.record, self.heatmaps = item.record, item.heatmaps
        self.operating_point = operating_point
        self.when = datetime.now().astimezone()  # one time for every file and object sent
        self._reports: dict[bool, Report] = {}

    def report(self, with_patient: bool) -> Report:
        """The rendered report; ``with_patient`` shows the patient's identity in it."""
        if with_patient not in self._reports:
            options = ReportOptions.of_record(self.record, include_patient=with_patient,
                                              when=self.when,
                                              operating_point=self.operating_point)
            self._reports[with_patient] = render_report(
                self.record.frame(self.heatmaps.prediction.frame), self.heatmaps, options)
        return self._reports[with_patient]

    def write(self, key: str, path: Path, with_patient: bool) -> None:
        """Write the file of export format ``key``; ``with_patient`` keeps the patient and
        study in a DICOM file's header (the report's pixels never show them in a file)."""
        # Through the export table, as the viewer's exports: the SR's writer takes the finding,
        # its time and any measurements from the report, so every SR file is made alike.
        write_report(key, path, self.record, self.report(False), include_patient=with_patient,
                     overwrite=True)

    def for_pacs(self, with_sc: bool) -> list:
        """The SR, and with ``with_sc`` the Secondary Capture, under the source's patient and
        study (the report in the SC shows the patient, as the PACS files it with them)."""
        made = [dicom_sr_dataset(self.record, self.heatmaps.prediction, include_patient=True,
                                 when=self.when)]
        if with_sc:
            made.append(dicom_sc_dataset(self.record, self.report(True), include_patient=True))
        return made


"""Why an image gets no SR or SC, written or sent."""


def _unexpected(exc: Exception) -> str:
    return f"unexpected {type(exc).__name__}: {exc}"


class Outputs:
    """The files and the PACS results of a ``classify`` run.

    Parameters
    ----------
    files : list of FileOutput
        The files asked (:func:`file_outputs`).
    sender : ResultSender, optional
        Where results are sent (``--send``), already checked with a C-ECHO.
    with_patient : bool
        DICOM files keep the source's patient and study (``--with-patient``).
    """

    def __init__(self, files: list[FileOutput], sender: ResultSender | None = None,
                 with_patient: bool = False) -> None:
        self.files = files
        self.sender = sender
        self.with_patient = with_patient
        # The model's, once it is loaded: the report says what its cut-off means.
        self.operating_point: OperatingPoint | None = None
        self._used: set[Path] = set()
        self._burned_in = 0  # files written without the patient whose pixels were not cleaned
        self._tally = {out.option: _Tally() for out in files}
        if sender is not None:
            self._tally["--send"] = _Tally()

    @property
    def active(self) -> bool:
        """Anything to make per image (the review then keeps each image and its maps)."""
        return bool(self.files) or self.sender is not None

    def handle(self, item: BatchItem) -> list[str]:
        """Write and send everything asked for one classified image; notes on what was not."""
        if item.record is None or item.heatmaps is None:
            return []  # a failed or skipped file: its row says why
        made = _Made(item, self.operating_point)
        notes = [note for out in self.files if (note := self._write(out, item, made))]
        if self.sender is not None:
            notes += self._send(item, made)
        return list(dict.fromkeys(notes))  # --sr and --export sr fail alike on a PNG

    def _write(self, out: FileOutput, item: BatchItem, made: _Made) -> str | None:
        tally = self._tally[out.option]
        fmt = export_format(out.key)
        try:
            if fmt.needs_dicom_source and not made.record.is_dicom:
                tally.why_not[NOT_DICOM] += 1  # known before any rendering
                return f"{out.key} not written: {made.record.path.name}: {NOT_DICOM}"
            made.write(out.key, self._target(out, item), self.with_patient)
        except (RcdNetError, OSError, ValueError) as exc:
            why = str(exc)
        except Exception as exc:  # a run must outlive any one file's exports, whatever it holds
            why = _unexpected(exc)
        else:
            tally.done += 1
            if fmt.key != "sr" and not (fmt.needs_dicom_source and self.with_patient) \
                    and not made.report(False).pixels_blanked:
                self._burned_in += 1
            return None
        tally.why_not[why.removeprefix(f"{made.record.path.name}: ")] += 1
        return f"{out.key} not written: {why}"

    def _target(self, out: FileOutput, item: BatchItem) -> Path:
        """The viewer's default file name, numbered when two sources share a stem."""
        assert item.record is not None and item.heatmaps is not None
        name = Path(export_file_name(item.record, item.heatmaps.prediction.frame, out.key,
                                     out.tag))
        target, n = out.folder / name, 1
        while target in self._used:  # same stem in two folders
            n += 1
            target = out.folder / f"{name.stem}_{n}{name.suffix}"
        self._used.add(target)
        return target

    def _send(self, item: BatchItem, made: _Made) -> list[str]:
        assert self.sender is not None
        tally = self._tally["--send"]
        if not made.record.is_dicom:
            tally.why_not[NOT_DICOM] += 1
            return [f"not sent: {made.record.path.name}: {NOT_DICOM}"]
        try:
            datasets = made.for_pacs(self.sender.send_sc)
        except (RcdNetError, OSError, ValueError) as exc:
            why = str(exc)
        except Exception as exc:  # a run must outlive any one file, whatever it holds
            why = _unexpected(exc)
        else:
            notes = self.sender.send(datasets)
            tally.done = self.sender.sent
            return notes
        self.sender.failed += 1
        return [f"not sent: {why}"]

    def problems(self) -> list[str]:
        """One line for each option that produced nothing in a run where images were
        classified, saying why (the most frequent reason)."""
        lines = []
        for option, tally in self._tally.items():
            if tally.done or not tally.why_not:
                continue
            (why, n), = tally.why_not.most_common(1)
            verb = "sent" if option == "--send" else "written"
            lines.append(f"{option}: nothing {verb}: {why}"
                         + (f" ({n} image(s))" if n > 1 else ""))
        return lines

    def notes(self) -> list[str]:
        """What the user must know about the files written, though nothing failed: images
        written without the patient that may still show text burned into the source."""
        if not self._burned_in:
            return []
        return [f"{self._burned_in} file(s) written without the patient keep the source's "
                f"pixels whole, so they are not de-identified. {BURNED_IN_NOTE}"]

    def summary(self) -> str:
        """The files written and results sent, for the run's closing line."""
        parts = []
        for option, tally in self._tally.items():
            if option == "--send":
                continue
            missed = sum(tally.why_not.values())
            if tally.done or missed:
                parts.append(f"{option}: {tally.done} file(s)"
                             + (f", {missed} not written" if missed else ""))
        return "".join(f"; {part}" for part in parts) + (
            self.sender.summary() if self.sender is not None else "")
