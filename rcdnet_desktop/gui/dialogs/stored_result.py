"""The window that shows a stored result in words: a Structured Report opened in the viewer.

Renders :meth:`rcdnet_desktop.core.io.sr_document.SrDocument.lines` (the core reads the
report; nothing is decided here). Non-modal: the image it refers to stays in view, with the
stored lesion box and calipers drawn on it by the viewer.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.io.sr_document import SrDocument

NO_IMAGE = ("The image this report refers to is not open and not in the report's folder: "
            "the stored result is shown in words only.")


class StoredResultDialog(QDialog):
    """The stored result of the report on display, in words."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StoredResultDialog")
        self.setModal(False)
        self.setWindowTitle("Stored result")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.hide)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(520, 360)

    def show_document(self, name: str, note: str, document: SrDocument,
                      has_image: bool) -> None:
        """Show ``document`` (read from file ``name``); ``note`` says why it is not
        classified."""
        self.setWindowTitle(f"Stored result - {name}")
        lines = [note[:1].upper() + note[1:] + "."]
        if not has_image:
            lines.append(NO_IMAGE)
        self.note.setText("\n".join(lines))
        self.text.setPlainText("\n".join(document.lines()))
        self.show()

    def shown_text(self) -> str:
        return self.text.toPlainText()
