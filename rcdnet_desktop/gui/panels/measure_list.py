"""The list of caliper measurements under the image: "1: 12.3 mm", one entry each.

Shown while the frame on display has measurements or the caliper is on (so the image does not
move when the first line is drawn). Select an entry to highlight its line; Delete (or the
context menu) removes it, "Clear measurements" removes them all. Lengths in pixels say why:
the file gives no scale, or the line leaves the calibrated region.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListView, QListWidget, QMenu, QWidget

from rcdnet_desktop.core.measure import NO_SCALE, Measured

DELETE_KEYS = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
TITLE = "Measurements:"
TITLE_EMPTY = "Measurements: drag a line across the image"
TITLE_PIXELS = "Measurements in image pixels (the file gives no scale):"


class _Entries(QListWidget):
    """The entries; takes Delete for itself while it has the keyboard."""

    delete_pressed = Signal()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.key() in DELETE_KEYS and self.currentRow() >= 0:
            event.accept()  # the window's Delete (clear the lesion box) is not meant here
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in DELETE_KEYS and self.currentRow() >= 0:
            self.delete_pressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class MeasurementList(QWidget):
    """The measurements of the frame on display.

    Signals
    -------
    delete_requested(int)
        Remove measurement ``index`` (0-based).
    clear_requested()
        Remove every measurement of the frame.
    selected(int)
        The entry chosen (-1 for none), to highlight its line.
    """

    delete_requested = Signal(int)
    clear_requested = Signal()
    selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(TITLE, self)
        self.title.setWordWrap(True)  # a long title must not widen the window
        self._active = False
        self.entries = _Entries(self)
        self.entries.setFlow(QListView.Flow.LeftToRight)
        self.entries.setWrapping(True)
        self.entries.setSpacing(2)
        self.entries.setFixedHeight(30)
        self.entries.setToolTip("Caliper measurements (M to measure). Select one and press "
                                "Delete to remove it, or right-click.")
        self.entries.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.entries.customContextMenuRequested.connect(self._menu)
        self.entries.delete_pressed.connect(
            lambda: self.delete_requested.emit(self.entries.currentRow()))
        self.entries.currentRowChanged.connect(self.selected.emit)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        lay.addWidget(self.title)
        lay.addWidget(self.entries, 1)
        self.setFixedHeight(36)
        self.hide()

    def set_measurements(self, measured: Sequence[Measured]) -> None:
        row = self.entries.currentRow()
        self.entries.blockSignals(True)
        self.entries.clear()
        self.entries.addItems([m.label for m in measured])
        if measured and row >= 0:
            self.entries.setCurrentRow(min(row, len(measured) - 1))
        self.entries.blockSignals(False)
        no_scale = any(m.length.reason == NO_SCALE for m in measured)
        self.title.setText(TITLE_PIXELS if no_scale else TITLE if measured else TITLE_EMPTY)
        self.entries.setVisible(bool(measured))
        self._update_visible()
        self.selected.emit(self.entries.currentRow())

    def set_active(self, on: bool) -> None:
        """The caliper is on: stay in view even before the first measurement."""
        self._active = bool(on)
        self._update_visible()

    def _update_visible(self) -> None:
        self.setVisible(self._active or self.entries.count() > 0)

    def labels(self) -> list[str]:
        return [self.entries.item(i).text() for i in range(self.entries.count())]

    def _menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        item = self.entries.itemAt(pos)
        if item is not None:
            row = self.entries.row(item)
            menu.addAction(f"Delete measurement {item.text()}",
                           lambda: self.delete_requested.emit(row))
        menu.addAction("Clear measurements", self.clear_requested.emit)
        menu.popup(self.entries.viewport().mapToGlobal(pos))
