"""Patient and study headings in the image list, and the list's order under them.

:class:`ListHeadings` keeps a list widget's rows in the order of the viewer's
:class:`~rcdnet_desktop.gui.session.grouping.Section` list: a heading row per patient (bold) and per
study (indented), the images under them. Headings cannot be selected. Re-arranging moves only
the rows that changed place (one image read is one move), and the selection stays where it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPalette
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from rcdnet_desktop.core.context import SEPARATOR
from rcdnet_desktop.gui.session.grouping import Section

HEADING_ROLE = Qt.ItemDataRole.UserRole + 2  # the section's key, on a heading row
LEVEL_ROLE = Qt.ItemDataRole.UserRole + 3  # 0 a patient, 1 a study
STUDY_INDENT = "    "


class ListHeadings:
    """The rows of ``widget`` in order, with heading rows for the sections."""

    def __init__(self, widget: QListWidget) -> None:
        self._widget = widget
        self._rows: list[QListWidgetItem] = []  # mirrors the widget's rows, in order
        self._headings: dict[tuple, QListWidgetItem] = {}

    def append(self, item: QListWidgetItem) -> None:
        self._widget.addItem(item)
        self._rows.append(item)

    def take(self, item: QListWidgetItem) -> None:
        j = self._row(item)
        if j >= 0:
            self._widget.takeItem(j)
            self._rows.pop(j)

    def _row(self, item: QListWidgetItem) -> int:
        return next((j for j, r in enumerate(self._rows) if r is item), -1)

    def titles(self) -> list[str]:
        """The headings' words in order, studies indented (patients on one line)."""
        return [STUDY_INDENT * int(r.data(LEVEL_ROLE)) + r.toolTip() for r in self._rows
                if r.data(HEADING_ROLE) is not None]

    def arrange(self, sections: Sequence[Section],
                items: Mapping[int, QListWidgetItem]) -> None:
        """Put the rows in the order of ``sections``; ``items`` are the image rows by id."""
        wanted: list[QListWidgetItem] = []
        headings: dict[tuple, QListWidgetItem] = {}
        for section in sections:
            key = (section.level, section.key or (section.title,))
            heading = self._headings.get(key) or _heading(section.level, key,
                                                          self._widget.palette())
            heading.setText(_shown(section))
            heading.setToolTip(section.title)
            headings[key] = heading
            wanted.append(heading)
            wanted.extend(items[i] for i in section.doc_ids if i in items)
        w = self._widget
        current = w.currentItem()
        w.blockSignals(True)
        try:
            for key, old in self._headings.items():
                if key not in headings:
                    self.take(old)
            self._headings = headings
            for i, item in enumerate(wanted):
                if i < len(self._rows) and self._rows[i] is item:
                    continue
                j = self._row(item)
                if j >= 0:
                    w.takeItem(j)
                    self._rows.pop(j)
                w.insertItem(i, item)
                self._rows.insert(i, item)
            if current is not None and self._row(current) >= 0:
                w.setCurrentItem(current)
        finally:
            w.blockSignals(False)

    def recolour(self) -> None:
        """Colour the headings from the list's palette again (the theme changed)."""
        palette = self._widget.palette()
        for (level, _), heading in self._headings.items():
            _colour(heading, level, palette)


def _shown(section: Section) -> str:
    """A heading as the list shows it: a patient's name and ID on lines of their own (a long
    ID is one word, which a narrow list would otherwise cut short), a study indented."""
    if section.level == 0:
        return section.title.replace(SEPARATOR, "\n")
    return STUDY_INDENT * section.level + section.title


def _heading(level: int, key: tuple, palette: QPalette) -> QListWidgetItem:
    item = QListWidgetItem()
    item.setData(HEADING_ROLE, repr(key))
    item.setData(LEVEL_ROLE, level)
    item.setFlags(Qt.ItemFlag.NoItemFlags)  # a heading is not an image: never selected
    font = QFont()
    font.setBold(level == 0)
    if level == 0:
        font.setPointSizeF(font.pointSizeF() * 1.05)
    item.setFont(font)
    _colour(item, level, palette)
    return item


def _colour(item: QListWidgetItem, level: int, palette: QPalette) -> None:
    """Headings in the list's own text colour (a heading has no flags, so the style would
    grey it out as disabled); a patient's on a band of the highlight colour."""
    item.setForeground(QBrush(palette.color(QPalette.ColorRole.Text)))
    if level == 0:
        band = QColor(palette.color(QPalette.ColorRole.Highlight))
        band.setAlpha(60)
        item.setBackground(QBrush(band))
