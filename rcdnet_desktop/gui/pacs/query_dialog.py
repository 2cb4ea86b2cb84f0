"""PACS > Query/retrieve...: find a patient's studies and open them in the viewer.

The search form (patient ID or name, study dates, modality -- US by default --, accession
number) runs a C-FIND or QIDO-RS search on the chosen node; the answers are listed by patient,
newest study first. "Retrieve and open" brings the chosen studies (all of a patient's when a
patient is chosen) into the local cache and hands the files to the viewer's normal open path
(:meth:`MainWindow.open_paths`), grouped by patient and study. Every network call runs off the
GUI thread (:class:`~rcdnet_desktop.gui.pacs.jobs.PacsJob`) with a progress bar and Cancel;
failures are shown in words under the list, and what was retrieved before one is kept and
opened.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.pacs import Match, PacsCache, PacsNode, Query, RetrieveResult
from rcdnet_desktop.gui.pacs.jobs import JobDialog, PacsJob
from rcdnet_desktop.gui.pacs.login import logged_in, ready_node
from rcdnet_desktop.gui.pacs.nodes import last_node, pacs_cache_dir, pacs_nodes, set_last_node
from rcdnet_desktop.gui.settings import Settings

COLUMNS = ("Patient / study", "ID / date", "Description", "Modality", "Images", "Accession")


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


class PacsQueryDialog(JobDialog):
    """Search a PACS and retrieve studies. ``open_requested(list of paths)`` when files came."""

    open_requested = Signal(list)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Query/retrieve from PACS")
        self.resize(900, 560)
        self.settings = settings
        self.job: PacsJob | None = None
        self.last_result: RetrieveResult | None = None

        self.node = QComboBox(self)
        self.nodes_button = QPushButton("Nodes...", self)
        top = QHBoxLayout()
        top.addWidget(QLabel("PACS", self))
        top.addWidget(self.node, 1)
        top.addWidget(self.nodes_button)

        self.patient_id = QLineEdit(self)
        self.patient_name = QLineEdit(self)
        self.patient_name.setPlaceholderText("from its start, any case (SMI finds SMITH^JOHN)")
        self.date_from = QLineEdit(self)
        self.date_to = QLineEdit(self)
        for w in (self.date_from, self.date_to):
            w.setPlaceholderText("YYYY-MM-DD")
        self.modality = QLineEdit("US", self)
        self.accession = QLineEdit(self)
        form = QFormLayout()
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to", self))
        dates.addWidget(self.date_to)
        form.addRow("Study date", dates)
        form.addRow("Modality", self.modality)
        form.addRow("Accession number", self.accession)
        self.search_button = QPushButton("&Search", self)
        self.search_button.setDefault(True)

        self.results = QTreeWidget(self)
        self.results.setHeaderLabels(list(COLUMNS))
        self.results.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.results.setColumnWidth(0, 240)
        self.results.setColumnWidth(1, 120)
        self.results.setColumnWidth(2, 200)
        self.retrieve_button = QPushButton("&Retrieve and open", self)
        self.retrieve_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QPushButton("Close", self)

        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.retrieve_button)
        bottom.addWidget(self.close_button)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(form)
        lay.addWidget(self.search_button, 0, Qt.AlignmentFlag.AlignRight)
        lay.addWidget(self.results, 1)
        lay.addWidget(self.status)
        lay.addLayout(bottom)

        self.nodes_button.clicked.connect(self.edit_nodes)
        self.search_button.clicked.connect(self.search)
        for w in (self.patient_id, self.patient_name, self.date_from, self.date_to,
                  self.modality, self.accession):
            w.returnPressed.connect(self.search)
        self.results.itemSelectionChanged.connect(self._selection_changed)
        # Enter or a double-click on a patient or a study retrieves it
        self.results.itemActivated.connect(lambda *_: self.retrieve())
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self.fill_nodes()
        self.patient_id.setFocus()

    # --- nodes -------------------------------------------------------------------------------

    def fill_nodes(self) -> None:
        self.nodes = pacs_nodes(self.settings)
        self.node.clear()
        for n in self.nodes:
            self.node.addItem(n.label, n.name)
        index = self.node.findData(last_node(self.settings))
        self.node.setCurrentIndex(max(index, 0))
        if not self.nodes:
            self.show_status("No PACS is configured yet: add one with Nodes...")
        self._enable()

    def current_node(self) -> PacsNode | None:
        i = self.node.currentIndex()
        return self.nodes[i] if 0 <= i < len(self.nodes) else None

    def edit_nodes(self) -> None:
        from rcdnet_desktop.gui.pacs.nodes_dialog import PacsNodesDialog

        if PacsNodesDialog(self.settings, self).exec():
            self.fill_nodes()

    def _logged_in(self, node: PacsNode) -> PacsNode | None:
        """The node with its password or token (asked when none is found); None, said in the
        status line, when the user cancelled the question."""
        ready = ready_node(self, node)
        if ready is None:
            self.show_status(f"Not logged in to {node.label}: nothing was asked of it.")
        return ready

    # --- search ------------------------------------------------------------------------------

    def query(self) -> Query:
        return Query(level="study", patient_id=self.patient_id.text(),
                     patient_name=self.patient_name.text(), date_from=self.date_from.text(),
                     date_to=self.date_to.text(), modality=self.modality.text(),
                     accession_number=self.accession.text())

    def search(self) -> None:
        from rcdnet_desktop.core.pacs import find

        node = self.current_node()
        if node is None or self.busy:
            return
        try:
            query = self.query().checked()
        except ValueError as exc:
            self.show_status(f"Cannot search: {exc}.", error=True)
            return
        set_last_node(self.settings, node.name)
        node = self._logged_in(node)
        if node is None:
            return
        self.results.clear()
        self._start(PacsJob(lambda cancel, _p: logged_in(
            node, lambda: find(node, query, cancel=cancel)), self, "find"),
            f"Searching {node.label}...")
        self.job.done.connect(self._found)

    def _found(self, matches: list[Match]) -> None:
        self._finish()
        groups: dict[tuple[str, str], list[Match]] = {}
        for m in matches:
            groups.setdefault((m.patient_id, m.patient_name), []).append(m)
        for (patient_id, name), studies in groups.items():
            parent = QTreeWidgetItem([name.replace("^", " ") or "(no name)", patient_id,
                                      "", "", "", ""])
            parent.setData(0, Qt.ItemDataRole.UserRole, studies)  # a patient: all its studies
            self.results.addTopLevelItem(parent)
            for m in studies:
                images = "" if m.instances is None else str(m.instances)
                child = QTreeWidgetItem(["Study",
                                         _date(m.study_date), m.study_description,
                                         m.modalities, images, m.accession_number])
                child.setData(0, Qt.ItemDataRole.UserRole, [m])
                parent.addChild(child)
        self.results.expandAll()
        n, p = len(matches), len(groups)
        self.show_status(f"{n} stud{'y' if n == 1 else 'ies'} of {p} patient"
                         f"{'' if p == 1 else 's'} found." if n else
                         "Nothing found: widen the search (dates, modality).")

    def selected_studies(self) -> list[Match]:
        out: dict[str, Match] = {}
        for item in self.results.selectedItems():
            for m in item.data(0, Qt.ItemDataRole.UserRole) or []:
                out.setdefault(m.study_uid, m)
        return list(out.values())

    # --- retrieve ----------------------------------------------------------------------------

    def retrieve(self) -> None:
        from rcdnet_desktop.core.pacs import retrieve

        node, studies = self.current_node(), self.selected_studies()
        if node is None or not studies or self.busy:
            return
        node = self._logged_in(node)
        if node is None:
            return
        cache = PacsCache(pacs_cache_dir(self.settings) or None)
        self._start(PacsJob(lambda cancel, progress: logged_in(node, lambda: retrieve(
            node, studies, cache, progress=progress, cancel=cancel)), self, "retrieve"),
            f"Retrieving {len(studies)} stud{'y' if len(studies) == 1 else 'ies'} from "
            f"{node.label}...")
        expected = [m.instances for m in studies]
        if None not in expected:
            self.progress.setRange(0, max(1, sum(expected)))
        self.job.progress.connect(self._progress)
        self.job.done.connect(self._retrieved)

    def _progress(self, p) -> None:
        if p.expected:
            self.progress.setRange(0, p.expected)
            self.progress.setValue(min(p.received, p.expected))
        self.status.setText(f"{p.received} image(s) received"
                            + (f" of {p.expected}" if p.expected else "")
                            + (f", {p.failed} failed" if p.failed else ""))

    def _retrieved(self, result: RetrieveResult) -> None:
        self._finish()
        self.last_result = result
        self.show_status(result.summary() + ("" if result.instances else "."),
                         error=not result.complete)
        if result.files:
            self.open_requested.emit([str(p) for p in result.files])

    # --- the job -----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.busy

    def _start(self, job: PacsJob, text: str) -> None:
        self.job = job
        job.failed.connect(self._failed)
        job.cancelled.connect(self._cancelled)
        self.show_status(text)
        self.progress.setRange(0, 0)  # busy until counts are known
        self.progress.setVisible(True)
        self._enable()
        job.start()
        self._enable()

    def _finish(self) -> None:
        self.progress.setVisible(False)
        self._enable()

    def _failed(self, message: str) -> None:
        self._finish()
        self.show_status(message, error=True)

    def _cancelled(self) -> None:
        self._finish()
        self.show_status("Cancelled.")

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.show_status("Cancelling...")

    def _selection_changed(self) -> None:
        self._enable()

    def _enable(self) -> None:
        busy = self.busy
        has_node = self.current_node() is not None
        self.search_button.setEnabled(has_node and not busy)
        self.retrieve_button.setEnabled(has_node and not busy and bool(self.selected_studies()))
        self.cancel_button.setEnabled(busy)
        self.node.setEnabled(not busy)

