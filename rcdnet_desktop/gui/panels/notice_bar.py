"""A dismissible notice above the image, e.g. for files that could not be read."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget


class NoticeBar(QFrame):
    """A dismissible, non-modal notice above the image (e.g. files that could not be read)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("NoticeBar { background: #fff3cd; border: 1px solid #e0c36c; }"
                           "QLabel { color: #5c4400; }")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setText("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self._lines: list[str] = []
        self.hide()

    def add(self, line: str) -> None:
        self._lines.append(line)
        shown = self._lines[-4:]
        more = len(self._lines) - len(shown)
        text = "\n".join(shown) + (f"\n(and {more} more)" if more else "")
        self.label.setText(text)
        self.show()

    def dismiss(self) -> None:
        self._lines.clear()
        self.hide()

    def lines(self) -> list[str]:
        return list(self._lines)
