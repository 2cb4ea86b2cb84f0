"""The list of open images: the file name, a thumbnail and the prediction with its likelihood
band (or why the file failed), under patient and study headings
(:mod:`~rcdnet_desktop.gui.panels.list_headings`).

The file name runs across the whole row, above the thumbnail, and wraps (anywhere, names have
no spaces) rather than being cut: at 1280 x 720 the list is about 200 px wide, and beside a
96 px thumbnail a name like ``busi_malignant_sample.png`` would read "busi_...png".
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QIcon,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from rcdnet_desktop.core.types import Prediction
from rcdnet_desktop.gui.panels.list_headings import ListHeadings
from rcdnet_desktop.gui.qimage import to_pixmap
from rcdnet_desktop.gui.session.grouping import Section
from rcdnet_desktop.gui.session.loader import THUMB_SIZE
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


_PAD = 4  # pixels around and between the name, the thumbnail and the result
_NAME_LINES = 3  # at most; a longer name is cut in the middle on the last line
_TEXT_FLAGS = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
                  | Qt.TextFlag.TextWordWrap)


class _ImageRowDelegate(QStyledItemDelegate):
    """Draws an image's row: its name over the full width, then the thumbnail with the result
    beside it. Headings keep the default drawing."""

    def __init__(self, view: QListWidget) -> None:
        super().__init__(view)
        self._view = view

    def _width(self, option: QStyleOptionViewItem) -> int:
        return max(self._view.viewport().width() - 2 * self._view.spacing(), 60)

    @staticmethod
    def _name_font(font: QFont) -> QFont:
        bold = QFont(font)
        bold.setBold(True)
        return bold

    @staticmethod
    def _name_layout(fm: QFontMetrics, name: str, width: int) -> tuple[str, int, int, bool]:
        """The name wrapped to ``width``: its text, drawing flags, height (at most
        :data:`_NAME_LINES` lines) and whether it had to be cut to fit.

        It wraps after "_", "-" or a space, or before the suffix's "." (zero-width spaces mark
        those places); a part still wider than the row wraps anywhere.
        """
        text = "".join(c + "\u200b" if c in "_- " else c for c in name)
        dot = text.rfind(".")
        if dot > 0:
            text = text[:dot] + "\u200b" + text[dot:]
        area = QRect(0, 0, width, 10_000)
        flags = int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap)
        rect = fm.boundingRect(area, flags, text)
        if rect.width() > width:
            flags = int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWrapAnywhere)
            rect = fm.boundingRect(area, flags, text)
        most = _NAME_LINES * fm.lineSpacing()
        return text, flags, min(rect.height(), most), rect.height() > most

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        if index.data(DOC_ROLE) is None:
            return super().sizeHint(option, index)
        name, _, rest = str(index.data(Qt.ItemDataRole.DisplayRole) or "").partition("\n")
        fm = option.fontMetrics
        width = self._width(option)
        text_w = width - THUMB_SIZE - 3 * _PAD
        rest_h = fm.boundingRect(QRect(0, 0, text_w, 10_000), _TEXT_FLAGS, rest).height()
        name_fm = QFontMetrics(self._name_font(option.font))
        name_h = self._name_layout(name_fm, name, width - 2 * _PAD)[2]
        height = name_h + max(THUMB_SIZE, rest_h)
        return QSize(width, height + 3 * _PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex) -> None:
        if index.data(DOC_ROLE) is None:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        # (the option's text has its line breaks turned into line separators: take the item's)
        name, _, rest = str(index.data(Qt.ItemDataRole.DisplayRole) or "").partition("\n")
        icon = QIcon(opt.icon)
        widget = opt.widget
        style = widget.style() if widget is not None else self._view.style()
        opt.text, opt.icon = "", QIcon()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        colour = opt.palette.color(QPalette.ColorRole.HighlightedText if selected
                                   else QPalette.ColorRole.Text)
        brush = index.data(Qt.ItemDataRole.ForegroundRole)
        if brush is not None and not selected:
            colour = QBrush(brush).color()
        r = opt.rect.adjusted(_PAD, _PAD, -_PAD, -_PAD)
        name_font = self._name_font(opt.font)
        name_fm = QFontMetrics(name_font)
        text, flags, name_h, cut = self._name_layout(name_fm, name, r.width())
        if cut:  # a very long name: its middle goes, its start and suffix stay
            text = name_fm.elidedText(name, Qt.TextElideMode.ElideMiddle,
                                      (r.width() - name_fm.averageCharWidth()) * _NAME_LINES)
            flags = int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWrapAnywhere)
        painter.save()
        painter.setPen(colour)
        painter.setFont(name_font)
        painter.drawText(QRect(r.left(), r.top(), r.width(), name_h), flags, text)
        painter.setFont(opt.font)
        top = r.top() + name_h + _PAD
        icon.paint(painter, QRect(r.left(), top, THUMB_SIZE, THUMB_SIZE))
        text_rect = QRect(r.left() + THUMB_SIZE + _PAD, top,
                          r.width() - THUMB_SIZE - _PAD, r.bottom() - top)
        painter.drawText(text_rect, _TEXT_FLAGS, rest)
        painter.restore()


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
        self.setItemDelegate(_ImageRowDelegate(self))
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
