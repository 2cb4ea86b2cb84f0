"""The list of open images: a thumbnail, the file name and the prediction with its likelihood
band (or why the file failed), under patient and study headings
(:mod:`~rcdnet_desktop.gui.list_headings`)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QWidget,
)

from rcdnet_desktop.core.types import Prediction
from rcdnet_desktop.gui.grouping import Section
from rcdnet_desktop.gui.list_headings import ListHeadings
from rcdnet_desktop.gui.loader import THUMB_SIZE
from rcdnet_desktop.gui.qimage import to_pixmap
from rcdnet_desktop.gui.wording import list_text

DOC_ROLE = Qt.ItemDataRole.UserRole + 1
NOT_CLASSIFIED = "not yet classified"


def _placeholder_icon(text: str, colour: QColor) -> QIcon:
    pm = QPixmap(THUMB_SIZE, THUMB_SIZE)
    pm.fill(QColor(40, 40, 40))
    p = QPainter(pm)
    p.setPen(colour)
    p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
    p.end()
    return QIcon(pm)


class ThumbnailList(QListWidget):
    """Open images, in the order they were opened.

    Signals
    -------
    document_activated(int)
        The user selected the image with this document id.
    """

    document_activated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(False)
        self.setWordWrap(True)
        # Rows laid out again when the list's width changes: a patient heading wrapped at the
        # old width would otherwise be cut short ("OB · ID …") at the new one.
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSpacing(2)
        self.setMinimumWidth(200)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.currentItemChanged.connect(self._on_current)
        self._items: dict[int, QListWidgetItem] = {}
        self._names: dict[int, str] = {}
        self.headings = ListHeadings(self)

    def add_document(self, doc_id: int, name: str, tooltip: str) -> None:
        item = QListWidgetItem(_placeholder_icon("loading", QColor(180, 180, 180)),
                               f"{name}\nloading...")
        item.setData(DOC_ROLE, doc_id)
        item.setToolTip(tooltip)
        self.headings.append(item)
        self._items[doc_id] = item
        self._names[doc_id] = name

    def remove_document(self, doc_id: int) -> None:
        item = self._items.pop(doc_id, None)
        self._names.pop(doc_id, None)
        if item is not None:
            self.headings.take(item)

    def arrange(self, sections: list[Section]) -> None:
        """Order the images under their patient and study headings."""
        self.headings.arrange(sections, self._items)

    def set_thumbnail(self, doc_id: int, thumb: np.ndarray) -> None:
        item = self._items.get(doc_id)
        if item is not None:
            item.setIcon(QIcon(to_pixmap(thumb)))
            item.setText(f"{self._names[doc_id]}\n{NOT_CLASSIFIED}")

    def set_failed(self, doc_id: int, reason: str) -> None:
        item = self._items.get(doc_id)
        if item is None:
            return
        item.setIcon(_placeholder_icon("cannot\nread", QColor(255, 120, 100)))
        item.setText(f"{self._names[doc_id]}\nunreadable: {reason}")
        item.setForeground(QBrush(QColor(200, 60, 40)))
        item.setToolTip(f"{item.toolTip()}\n\nCannot be read: {reason}")

    def set_prediction(self, doc_id: int, p: Prediction | None) -> None:
        """The image's result, or "not yet classified" (None)."""
        item = self._items.get(doc_id)
        if item is not None:
            words = list_text(p) if p is not None else NOT_CLASSIFIED
            item.setText(f"{self._names[doc_id]}\n{words}")

    def set_waiting(self, doc_id: int, text: str) -> None:
        """No result yet for the image on display: the panel's words, e.g. "Classifying..."."""
        item = self._items.get(doc_id)
        if item is not None:
            item.setText(f"{self._names[doc_id]}\n{text}")

    def item_text(self, doc_id: int) -> str:
        item = self._items.get(doc_id)
        return item.text() if item is not None else ""

    def select_document(self, doc_id: int) -> None:
        item = self._items.get(doc_id)
        if item is not None and self.currentItem() is not item:
            self.setCurrentItem(item)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        headings = getattr(self, "headings", None)  # None while the list is being built
        if headings is not None and event.type() in (QEvent.Type.PaletteChange,
                                                     QEvent.Type.StyleChange):
            headings.recolour()
        super().changeEvent(event)

    def document_ids(self) -> list[int]:
        """The images in list order (headings left out)."""
        ids = (self.item(i).data(DOC_ROLE) for i in range(self.count()))
        return [i for i in ids if i is not None]

    def _on_current(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None and current.data(DOC_ROLE) is not None:
            self.document_activated.emit(int(current.data(DOC_ROLE)))
