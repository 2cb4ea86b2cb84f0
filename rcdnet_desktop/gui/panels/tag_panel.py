"""The DICOM tag panel: the header of the image on display as a searchable table.

A window beside the viewer (View > DICOM tags). Columns: tag, keyword, VR, value; sequence items
nest under their sequence. The header is read from the file when the panel is shown, and again
when another image comes on display while it is open (:mod:`rcdnet_desktop.core.io.dicom_tags`:
no pixel data, long values abbreviated). Plain image files have no header and the panel says so.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.errors import UnreadableImageError
from rcdnet_desktop.core.io.dicom_tags import TagRow

COLUMNS = ("Tag", "Keyword", "VR", "Value")
NO_IMAGE = "No image read: no header to show."
PLAIN_FILE = "{name} is a plain image file: it has no DICOM header."


class DicomTagsDialog(QDialog):
    """The DICOM header of one file; :meth:`set_source` follows the image on display."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DICOM tags")
        self.setModal(False)
        self.resize(760, 640)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search tag, keyword or value (e.g. 0010, Patient, US)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setColumnWidth(0, 170)
        self.tree.setColumnWidth(1, 230)
        self.tree.setColumnWidth(2, 40)
        lay = QVBoxLayout(self)
        lay.addWidget(self.search)
        lay.addWidget(self.note)
        lay.addWidget(self.tree, 1)
        self._source: tuple[Path | None, bool] = (None, False)
        self._shown: tuple[Path | None, bool] | None = None

    def set_source(self, path: Path | None, is_dicom: bool) -> None:
        """The file whose header to show (None: no image); read now if the panel is open."""
        self._source = (path, is_dicom)
        if self.isVisible():
            self._load()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._load()

    def _load(self) -> None:
        if self._shown == self._source:
            return
        self._shown = self._source
        path, is_dicom = self._source
        self.tree.clear()
        if path is None:
            self.setWindowTitle("DICOM tags")
            self._say(NO_IMAGE)
            return
        self.setWindowTitle(f"DICOM tags - {path.name}")
        if not is_dicom:
            self._say(PLAIN_FILE.format(name=path.name))
            return
        # The readers (pydicom: ~0.2 s) load when the tags are first shown, not with the window.
        from rcdnet_desktop.core.io.dicom_tags import header_rows

        try:
            rows = header_rows(path)
        except UnreadableImageError as exc:
            self._say(f"Cannot read the header of {path.name}: {exc.reason}")
            return
        self._fill(rows)
        self._say(f"{path.name}: {len(rows)} elements. Pixel data is not shown.")
        self._filter(self.search.text())

    def _say(self, text: str) -> None:
        self.note.setText(text)

    def _fill(self, rows: list[TagRow]) -> None:
        parents: list[QTreeWidgetItem] = []
        for row in rows:
            del parents[row.depth:]
            item = QTreeWidgetItem([row.tag, row.keyword, row.vr, row.value])
            item.setToolTip(3, row.value)
            if parents:
                parents[-1].addChild(item)
            else:
                self.tree.addTopLevelItem(item)
            parents.append(item)
        self.tree.expandAll()

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            _show_matches(self.tree.topLevelItem(i), needle)

    # --- what a test (or a screen reader) reads --------------------------------------------------

    def note_text(self) -> str:
        return self.note.text()

    def visible_rows(self) -> list[tuple[str, str, str, str]]:
        """(tag, keyword, VR, value) of every row not hidden by the search, in order."""
        out: list[tuple[str, str, str, str]] = []

        def walk(item: QTreeWidgetItem) -> None:
            if item.isHidden():
                return
            out.append(tuple(item.text(c) for c in range(len(COLUMNS))))  # type: ignore[arg-type]
            for k in range(item.childCount()):
                walk(item.child(k))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return out


def _show_matches(item: QTreeWidgetItem, needle: str, parent_matches: bool = False) -> bool:
    """Show ``item`` when it, an item inside it, or the sequence around it matches."""
    mine = not needle or any(needle in item.text(c).lower() for c in range(len(COLUMNS)))
    inner = False
    for k in range(item.childCount()):
        inner = _show_matches(item.child(k), needle, parent_matches or mine) or inner
    visible = mine or inner or parent_matches
    item.setHidden(not visible)
    return mine or inner


__all__ = ["DicomTagsDialog"]
