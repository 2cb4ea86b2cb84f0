"""Batch review of a folder: progress, time left, Cancel, a sortable/filterable table, CSV.

The CSV is :mod:`rcdnet_desktop.core.export.batch_csv`'s, the same columns as
``rcdnet classify`` writes.

The work is :func:`rcdnet_desktop.core.batch.review` in a one-thread pool of its own; model
calls go through the viewer's :class:`~rcdnet_desktop.gui.session.engine.LockedEngine`, so the batch
and the viewer take turns on the model and the viewer stays usable during a long review.
Results are added to the table as they arrive; Cancel stops before the next file and keeps
what is done, and "Continue" then reviews only the files not done yet.

The table is sized for reading: the file names and the status take the room they need, and a
column no row fills (the Clip column of a folder without cine clips) is hidden.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QSortFilterProxyModel,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.batch_item import BatchItem
from rcdnet_desktop.core.errors import ExportError
from rcdnet_desktop.core.result import (
    BELOW_CUTOFF,
    SUSPICIOUS,
    band_text,
    cutoff_text,
    decision_word,
    frame_number,
    probability_text,
    site_name,
)
from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui.session.engine import Engine, engine_operating_point
from rcdnet_desktop.gui.session.messages import BatchResult, BatchTotal
from rcdnet_desktop.gui.session.workers import Job, JobKeeper, make_pool
from rcdnet_desktop.gui.theme import colour
from rcdnet_desktop.gui.wording import input_words, status_words

COLUMNS = ("File", "Decision", "P(malignant)", "Band", "Box", "Clip", "Status")
COL_FILE, COL_LABEL, COL_P, COL_BAND, COL_BOX, COL_CLIP, COL_STATUS = range(len(COLUMNS))
"""The Box column says where the lesion box came from: user (drawn in the viewer), auto (found
by the lesion localiser) or none (the whole image was classified). The Clip column gives a
swept cine clip's summary (its row is its most suspicious frame); empty for other files."""
CLIP_CHOICES = (("Cine clips: every frame", "all"), ("Cine clips: 10 frames", 10),
                ("Cine clips: first frame only", None))
"""How a cine clip is reviewed (``sweep`` of :func:`rcdnet_desktop.core.batch.review`): every
frame, 10 evenly spaced frames, or its first frame only."""
OPTIONAL_COLUMNS = (COL_CLIP,)
"""Columns empty for most files: hidden while no row has anything in them."""
FILTERS = ("All", "Suspicious only", "Below the cut-off only", "Outside intended use only",
           "Failed only")
"""What the table shows. Suspicious and below the cut-off follow each result's decision at the
model card's cut-off (``Prediction.suspicious``), never the 0.5 of the most probable class."""
SORT_ROLE = Qt.ItemDataRole.UserRole + 2


def _run_batch(report: Callable[[object], None], engine: Engine, paths: Sequence[Path],
               recursive: bool, rois: Mapping[Path, Box] | None,
               cancel: threading.Event, sweep: int | str | None = None,
               done_before: frozenset[Path] = frozenset()) -> int:
    """Worker body: list the files, then report every BatchItem as it comes; the files of
    ``done_before`` (a run continued after Cancel) are counted in the total but not reviewed
    again."""
    # The readers (pydicom, Pillow: ~0.2 s) load with the first batch, not with the window.
    from rcdnet_desktop.core import batch, io

    files = io.find_images(list(paths), recursive=recursive)
    report(BatchTotal(len(files)))
    todo = [f for f in files if f not in done_before]
    done = 0
    for item in batch.review(todo, engine, rois=dict(rois or {}), cancel=cancel, sweep=sweep):
        report(BatchResult(item))
        done += 1
        if cancel.is_set():
            break
    return done


def format_eta(seconds: float | None) -> str:
    """Time left in words: "about 1 min 20 s left"."""
    if seconds is None:
        return "estimating time left..."
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"about {seconds} s left"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"about {minutes} min {s:02d} s left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min left"


class BatchTableModel(QAbstractTableModel):
    """One row per :class:`BatchItem`, in arrival order."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.items: list[BatchItem] = []
        self.root: Path | None = None

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def display_path(self, item: BatchItem) -> str:
        if self.root is not None:
            try:
                return str(item.path.relative_to(self.root))
            except ValueError:
                pass
        return str(item.path)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        col = index.column()
        p = item.prediction
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_FILE:
                return self.display_path(item)
            if col == COL_LABEL:
                return decision_word(p) if p is not None else "-"
            if col == COL_P:
                return probability_text(p) if p is not None else "-"
            if col == COL_BAND:
                return band_text(p) if p is not None else "-"
            if col == COL_BOX:
                return p.box_source if p is not None else "-"
            if col == COL_CLIP:
                return item.clip.text() if item.clip is not None else ""
            if col == COL_STATUS:
                if p is None:  # failed, or skipped (not opened, or not to be classified)
                    return f"{item.status}: {_reason(item)}"
                return status_words(p)
        if role == SORT_ROLE:
            if col in (COL_P, COL_BAND):  # bands are ordered ranges of the probability
                return p.p_malignant if p is not None else -1.0
            return self.data(index, Qt.ItemDataRole.DisplayRole)
        if role == Qt.ItemDataRole.ToolTipRole:
            if p is None:
                return item.error
            if col == COL_BOX:
                return input_words(p)
            if col == COL_CLIP and item.clip is not None:
                return (f"{item.clip.text()}.\nSuspicious: at or above the cut-off "
                        f"({cutoff_text(p)}). The row is the clip's most suspicious "
                        f"classifiable frame (frame {frame_number(p.frame)}).")
            if p.warnings:
                return "\n".join(p.warnings)
            return str(item.path)
        if role == Qt.ItemDataRole.ForegroundRole and (
                p is None or (col == COL_STATUS and p.outside_intended_use)):
            from PySide6.QtGui import QColor

            return QColor(colour("failed" if p is None else "outside"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_P:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def add(self, item: BatchItem) -> None:
        n = len(self.items)
        self.beginInsertRows(QModelIndex(), n, n)
        self.items.append(item)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.items.clear()
        self.endResetModel()


def _reason(item: BatchItem) -> str:
    """The error without the path prefix (the File column already names the file)."""
    err = item.error or "unknown error"
    prefix = f"{item.path}: "
    return err[len(prefix):] if err.startswith(prefix) else err


class BatchFilterModel(QSortFilterProxyModel):
    """Sorts by the numbers (not their text) and filters by outcome."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self._mode = FILTERS[0]

    def set_mode(self, mode: str) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10; invalidateFilter is deprecated
            self.beginFilterChange()
            self._mode = mode
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._mode = mode
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:  # noqa: N802
        model = self.sourceModel()
        item: BatchItem = model.items[row]
        p = item.prediction
        if self._mode == "Suspicious only":
            return p is not None and bool(p.suspicious)
        if self._mode == "Below the cut-off only":
            return p is not None and not p.suspicious
        if self._mode == "Outside intended use only":
            return p is not None and p.outside_intended_use
        if self._mode == "Failed only":
            return p is None
        return True


class BatchDialog(QDialog):
    """Review every image in a folder.

    Signals
    -------
    open_requested(object)
        The user double-clicked a row: open this Path in the viewer.
    finished_run(int)
        A run ended (completed or cancelled); the number of results.
    """

    open_requested = Signal(object)
    finished_run = Signal(int)

    def __init__(self, folder: str | Path, engine: Engine | None = None,
                 rois: Mapping[Path, Box] | None = None, parent: QWidget | None = None,
                 ask_save_path: Callable[[str], str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Batch review - {Path(folder).name or folder}")
        self.setModal(False)
        self.resize(900, 600)
        self.folder = Path(folder)
        self.rois = dict(rois or {})
        self._engine = engine
        self._site = ""  # the site profile the rows were decided under (the CSV's site column)
        self._ask_save_path = ask_save_path
        self._pool = make_pool("rcdnet-batch", self)
        self._keeper = JobKeeper(self)
        self._cancel = threading.Event()
        self._running = False
        self._total = 0
        self._t0 = 0.0
        self._start_done_time: float | None = None
        self._cancelled_options: tuple | None = None  # the options of a run cut short

        self.folder_label = QLabel(f"Folder: {self.folder}", self)
        self.folder_label.setWordWrap(True)
        self.recursive = QCheckBox("Include sub-folders", self)
        self.recursive.setChecked(True)
        self.recursive.toggled.connect(lambda _on: self._update_start_button())
        self.clips = QComboBox(self)
        for text, sweep in CLIP_CHOICES:
            self.clips.addItem(text, sweep)
        self.clips.setToolTip("Every frame: each clip's row is its most suspicious classifiable "
                              "frame, with the clip's summary in the Clip column")
        self.clips.currentIndexChanged.connect(lambda _i: self._update_start_button())
        self.start_button = QPushButton("Start", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label = QLabel("Not started", self)
        self.filter = QComboBox(self)
        self.filter.addItems(FILTERS)
        self.export_button = QPushButton("Export CSV...", self)
        self.export_button.setToolTip("Write the rows shown (current filter and order) to CSV")
        self.export_button.setEnabled(False)
        self.summary = QLabel(self)

        self.model = BatchTableModel(self)
        self.model.root = self.folder if self.folder.is_dir() else None
        self.proxy = BatchFilterModel(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # arrival order until asked
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        # The file names and the clip summaries are fitted to their text as rows arrive
        # (:meth:`_fit_columns`, the user may still drag them); the short columns follow their
        # contents; the status takes the rest of the width.
        for c in (COL_FILE, COL_CLIP):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Interactive)
        for c in (COL_LABEL, COL_P, COL_BAND, COL_BOX):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        # Long summaries and warnings wrap onto a second line rather than being cut; a file
        # name (no spaces) that does not fit loses its middle, not its end.
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self._fit_columns()

        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.recursive)
        top.addWidget(self.clips)
        top.addWidget(self.start_button)
        top.addWidget(self.cancel_button)
        prog = QHBoxLayout()
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.progress_label)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Show", self))
        bottom.addWidget(self.filter)
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(self.export_button)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(prog)
        lay.addWidget(self.table, 1)
        lay.addLayout(bottom)

        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.filter.currentTextChanged.connect(self.proxy.set_mode)
        self.filter.currentTextChanged.connect(lambda _t: self._update_summary())
        self.export_button.clicked.connect(self._export_clicked)
        self.table.doubleClicked.connect(self._on_double_click)
        self.set_engine(engine)

    # --- engine ------------------------------------------------------------------------------

    def set_engine(self, engine: Engine | None) -> None:
        self._engine = engine
        self.start_button.setEnabled(engine is not None and not self._running)
        if engine is None and not self._running:
            self.progress_label.setText("Waiting for the model to load...")
        elif not self._running and not self.model.items:
            self.progress_label.setText("Not started")

    # --- running -----------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._running

    def _options(self) -> tuple:
        return (self.recursive.isChecked(), self.clips.currentData())

    def continues(self) -> bool:
        """The next start goes on with the files not done: the last run was cancelled and
        its options are unchanged."""
        return self._cancelled_options is not None and self._cancelled_options == self._options()

    def start(self) -> None:
        """Review the folder; after Cancel (same options), only the files not done yet."""
        if self._running or self._engine is None:
            return
        done_before: frozenset[Path] = frozenset()
        if self.continues():
            done_before = frozenset(i.path for i in self.model.items)
        else:
            self.model.clear()
            self._fit_columns()
        self._cancelled_options = None
        self._site = site_name(engine_operating_point(self._engine))
        self._cancel = threading.Event()
        self._running = True
        self._total = 0
        self._t0 = time.perf_counter()
        self._start_done_time = None
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.export_button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy until the files are listed
        self.progress_label.setText("Listing files...")
        job = Job(_run_batch, self._engine, [self.folder], self.recursive.isChecked(),
                  self.rois, self._cancel, self.clips.currentData(), done_before)
        job.signals.progress.connect(self._on_progress)
        job.signals.error.connect(self._on_error)
        job.signals.done.connect(self._on_done)
        self._keeper.start(self._pool, job)

    def cancel(self) -> None:
        """Stop before the next file; the results so far stay in the table."""
        if self._running:
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling...")

    @Slot(object)
    def _on_progress(self, message: object) -> None:
        if isinstance(message, BatchTotal):
            self._total = message.count
            done = len(self.model.items)  # > 0 when a cancelled run goes on
            self.progress.setRange(0, max(self._total, 1))
            self.progress.setValue(done)
            self.progress_label.setText(f"{done} of {self._total}")
            return
        if not isinstance(message, BatchResult):
            return
        self.model.add(message.item)
        self._fit_columns()
        done = len(self.model.items)
        self.progress.setValue(done)
        now = time.perf_counter()
        if self._start_done_time is None:
            # The first results include loading: time the rest from here on.
            self._start_done_time = now
            self._start_done_count = done
            eta = None
        else:
            rate_n = done - self._start_done_count
            elapsed = now - self._start_done_time
            eta = (self._total - done) * elapsed / rate_n if rate_n > 0 else None
        if not self._cancel.is_set():
            self.progress_label.setText(f"{done} of {self._total}, {format_eta(eta)}")
        self._update_summary()

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self.progress_label.setText(f"Stopped: {message}")

    @Slot()
    def _on_done(self) -> None:
        self._running = False
        done = len(self.model.items)
        cancelled = self._cancel.is_set()
        self.progress.setRange(0, max(self._total, 1))
        self.progress.setValue(done)
        elapsed = time.perf_counter() - self._t0
        if cancelled:
            text = f"Cancelled: {done} of {self._total} done, results kept"
        elif not self.progress_label.text().startswith("Stopped"):
            text = f"Done: {done} files in {elapsed:.1f} s"
        else:
            text = self.progress_label.text()
        self.progress_label.setText(text)
        self.start_button.setEnabled(self._engine is not None)
        if cancelled and done < self._total:
            self._cancelled_options = self._options()
        self._update_start_button()
        self.cancel_button.setEnabled(False)
        self.export_button.setEnabled(bool(self.model.items))
        self._update_summary()
        self.finished_run.emit(done)

    def _update_start_button(self) -> None:
        """"Continue" after Cancel (the files not done yet), "Run again" after a whole run."""
        if not self.model.items and self._cancelled_options is None:
            return
        if self.continues():
            self.start_button.setText("Continue")
            self.start_button.setToolTip("Review the files not done yet; the results so far "
                                         "stay in the table")
        else:
            self.start_button.setText("Run again")
            self.start_button.setToolTip("Review the whole folder again")

    def _update_summary(self) -> None:
        preds = [i.prediction for i in self.model.items if i.prediction is not None]
        suspicious = sum(bool(p.suspicious) for p in preds)
        outside = sum(p.outside_intended_use for p in preds)
        failed = len(self.model.items) - len(preds)
        shown = self.proxy.rowCount()
        self.summary.setText(f"{shown} shown; {suspicious} {SUSPICIOUS}, "
                             f"{len(preds) - suspicious} {BELOW_CUTOFF}, {outside} outside "
                             f"intended use, {failed} failed")

    def _fit_columns(self) -> None:
        """Hide the columns no row fills; fit the file names and clip summaries to their text
        (at most a share of the table's width, so the status stays readable)."""
        items = self.model.items
        for c in OPTIONAL_COLUMNS:
            empty = not any(self.model.data(self.model.index(r, c)) for r in range(len(items)))
            self.table.setColumnHidden(c, empty)
        width = max(self.table.viewport().width(), 600)
        for c, share in ((COL_FILE, 0.35), (COL_CLIP, 0.3)):
            if self.table.isColumnHidden(c):
                continue
            self.table.resizeColumnToContents(c)
            header = self.table.horizontalHeader()
            header.resizeSection(c, min(header.sectionSize(c), int(share * width)))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if hasattr(self, "table"):  # (not while being built)
            self._fit_columns()

    # --- table -------------------------------------------------------------------------------

    def visible_items(self) -> list[BatchItem]:
        """Rows as shown: current filter and sort order."""
        out = []
        for r in range(self.proxy.rowCount()):
            src = self.proxy.mapToSource(self.proxy.index(r, 0))
            out.append(self.model.items[src.row()])
        return out

    def _on_double_click(self, index: QModelIndex) -> None:
        src = self.proxy.mapToSource(index)
        if src.isValid():
            self.open_requested.emit(self.model.items[src.row()].path)

    def export_csv(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the visible rows to ``path`` atomically; refuses to overwrite unless asked.

        Raises
        ------
        rcdnet_desktop.core.errors.ExportExistsError
            The file exists and ``overwrite`` is False (also a FileExistsError).
        rcdnet_desktop.core.errors.ExportError
            It could not be written; the message says why.
        """
        # The export modules (~0.2 s) load when a table is saved, not with the window.
        from rcdnet_desktop.core.export.batch_csv import batch_row, write_batch_csv

        return write_batch_csv(path, [batch_row(i, self._site) for i in self.visible_items()],
                               overwrite=overwrite)

    def _export_clicked(self) -> None:
        default = str(self.folder / "batch_review.csv") if self.folder.is_dir() else ""
        if self._ask_save_path is not None:
            path = self._ask_save_path(default)
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export results as CSV", default,
                                                  "CSV files (*.csv)")
        if not path:
            return
        if not path.lower().endswith(".csv"):
            path += ".csv"
        overwrite = False
        if Path(path).exists():
            answer = QMessageBox.question(self, "Replace file?",
                                          f"{path} already exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            overwrite = True
        try:
            written = self.export_csv(path, overwrite=overwrite)
        except ExportError as exc:  # its message names the file and says why
            QMessageBox.warning(self, "Export failed", f"Could not write {exc}")
            return
        self.progress_label.setText(f"Saved {written.name}")

    # --- closing -----------------------------------------------------------------------------

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        self._cancel.set()
        return self._pool.waitForDone(timeout_ms)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        # Cancel without waiting: the file being read finishes in the background, and closing
        # (or quitting) never waits on the model.
        self.shutdown(0)
        super().closeEvent(event)
