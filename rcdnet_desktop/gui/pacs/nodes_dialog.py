"""PACS > PACS nodes...: add, change, remove and test the PACS the viewer talks to.

A node is a DICOM node (its AE title, host and port, this app's own AE title, C-GET or C-MOVE
with the storage port, DICOM TLS) or a DICOMweb service (a URL, a login: user and password, or
a token). Either may name the CA bundle its server's certificate must chain to, and this
computer's certificate and key. "Test connection" runs a C-ECHO (or a one-result QIDO-RS
search) off the GUI thread and says how it went.

A password or token typed here is kept in memory for the session, or put in the system keyring
when "Remember in the system keyring" is ticked; it is never saved with the nodes.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.pacs import PacsError, PacsNode
from rcdnet_desktop.core.pacs.credentials import (
    keyring_available,
    remember_for_session,
    save_to_keyring,
)
from rcdnet_desktop.gui.pacs.jobs import PacsJob
from rcdnet_desktop.gui.pacs.login import logged_in
from rcdnet_desktop.gui.pacs.nodes import pacs_nodes, save_pacs_nodes
from rcdnet_desktop.gui.settings import Settings

TRANSPORT_LABELS = {"dimse": "DICOM (C-FIND, C-GET/C-MOVE, C-STORE)",
                    "dicomweb": "DICOMweb (QIDO-RS, WADO-RS, STOW-RS)"}
AUTH_LABELS = {"": "None", "basic": "User name and password", "bearer": "Token (bearer)"}


class FileField(QWidget):
    """A path with a Browse... button."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("PEM file")
        self.browse = QPushButton("Browse...", self)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        self.browse.clicked.connect(lambda: self._choose(caption))

    def _choose(self, caption: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, caption, self.edit.text(),
                                              "PEM files (*.pem *.crt *.cer *.key);;All files (*)")
        if path:
            self.edit.setText(path)

    def text(self) -> str:
        return self.edit.text()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's spelling
        self.edit.setText(text)


class PacsNodesDialog(QDialog):
    """The list of nodes on the left, the chosen node's fields on the right."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS nodes")
        self.settings = settings
        self.nodes: list[PacsNode] = pacs_nodes(settings)
        self.job: PacsJob | None = None
        self._row = -1

        self.list = QListWidget(self)
        self.add_button = QPushButton("Add", self)
        self.remove_button = QPushButton("Remove", self)
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        left.addLayout(row)

        self.name = QLineEdit(self)
        self.transport = QComboBox(self)
        for key, label in TRANSPORT_LABELS.items():
            self.transport.addItem(label, key)
        self.ae_title = QLineEdit(self)
        self.host = QLineEdit(self)
        self.port = QSpinBox(self)
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.calling = QLineEdit("RCDNET", self)
        self.url = QLineEdit(self)
        self.url.setPlaceholderText("https://pacs.example.org/dicom-web")
        self.retrieve = QComboBox(self)
        self.retrieve.addItem("C-GET (over the query's connection)", "get")
        self.retrieve.addItem("C-MOVE (to this app's storage port)", "move")
        self.storage_port = QSpinBox(self)
        self.storage_port.setRange(1, 65535)
        self.storage_port.setValue(11112)
        self.timeout = QDoubleSpinBox(self)
        self.timeout.setRange(1, 600)
        self.timeout.setValue(30)
        self.timeout.setSuffix(" s")
        self.tls = QCheckBox("DICOM over TLS (certificate and host name verified)", self)
        self.ca_file = FileField("CA bundle", self)
        self.ca_file.edit.setPlaceholderText("the system's trusted certificates")
        self.cert_file = FileField("This computer's certificate", self)
        self.cert_file.edit.setPlaceholderText("none (only for servers that ask for one)")
        self.key_file = FileField("Its key", self)
        self.auth = QComboBox(self)
        for key, label in AUTH_LABELS.items():
            self.auth.addItem(label, key)
        self.user = QLineEdit(self)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("empty: from the keyring, or asked when needed")
        self.remember = QCheckBox("Remember in the system keyring", self)
        if not keyring_available():
            self.remember.setEnabled(False)
            self.remember.setToolTip("No system keyring is available on this computer: the "
                                      "password is kept only until the viewer closes")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Kind", self.transport)
        form.addRow("PACS AE title", self.ae_title)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("Own AE title", self.calling)
        form.addRow("Retrieve by", self.retrieve)
        form.addRow("Storage port", self.storage_port)
        form.addRow("DICOMweb URL", self.url)
        form.addRow("Security", self.tls)
        form.addRow("CA bundle", self.ca_file)
        form.addRow("Own certificate", self.cert_file)
        form.addRow("Own key", self.key_file)
        form.addRow("Log in with", self.auth)
        form.addRow("User", self.user)
        form.addRow("Password / token", self.password)
        form.addRow("", self.remember)
        form.addRow("Timeout", self.timeout)
        self.form = form
        self.test_button = QPushButton("Test connection", self)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.test_button)
        right.addWidget(self.status)
        right.addStretch(1)

        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addLayout(right, 2)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel, parent=self)
        outer = QVBoxLayout(self)
        outer.addLayout(body)
        outer.addWidget(self.buttons)

        self.list.currentRowChanged.connect(self._select)
        self.add_button.clicked.connect(self.add_node)
        self.remove_button.clicked.connect(self.remove_node)
        self.transport.currentIndexChanged.connect(self._show_fields)
        self.retrieve.currentIndexChanged.connect(self._show_fields)
        self.auth.currentIndexChanged.connect(self._show_fields)
        self.test_button.clicked.connect(self.test_connection)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._fill_list()
        if self.nodes:
            self.list.setCurrentRow(0)
        self._enable()

    # --- list ------------------------------------------------------------------------------

    def _fill_list(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems([n.name for n in self.nodes])
        self.list.blockSignals(False)

    def _enable(self) -> None:
        has = 0 <= self._row < len(self.nodes)
        for w in (self.name, self.transport, self.ae_title, self.host, self.port, self.calling,
                  self.url, self.retrieve, self.storage_port, self.timeout, self.test_button,
                  self.remove_button, self.tls, self.ca_file, self.cert_file, self.key_file,
                  self.auth, self.user, self.password):
            w.setEnabled(has)
        self._show_fields()

    def _show_fields(self) -> None:
        web = self.transport.currentData() == "dicomweb"
        for w in (self.ae_title, self.host, self.port, self.calling, self.retrieve):
            self.form.setRowVisible(w, not web)
        self.form.setRowVisible(self.storage_port,
                                not web and self.retrieve.currentData() == "move")
        self.form.setRowVisible(self.url, web)
        self.form.setRowVisible(self.tls, not web)
        login = web and bool(self.auth.currentData())
        self.form.setRowVisible(self.auth, web)
        self.form.setRowVisible(self.user, web and self.auth.currentData() == "basic")
        self.form.setRowVisible(self.password, login)
        self.form.setRowVisible(self.remember, login)

    def _select(self, row: int) -> None:
        self._store_form()
        self._row = row
        if 0 <= row < len(self.nodes):
            self._load_form(self.nodes[row])
        self.status.clear()
        self._enable()

    def add_node(self) -> None:
        self._store_form()
        names = {n.name for n in self.nodes}
        n = 1
        while f"PACS {n}" in names:
            n += 1
        self.nodes.append(PacsNode(name=f"PACS {n}", ae_title="PACS", host="localhost"))
        self._row = -1
        self._fill_list()
        self.list.setCurrentRow(len(self.nodes) - 1)

    def remove_node(self) -> None:
        if 0 <= self._row < len(self.nodes):
            del self.nodes[self._row]
            self._row = -1
            self._fill_list()
            self.list.setCurrentRow(min(len(self.nodes) - 1, self.list.count() - 1))
            self._enable()

    # --- form --------------------------------------------------------------------------------

    def _load_form(self, node: PacsNode) -> None:
        self.name.setText(node.name)
        self.transport.setCurrentIndex(self.transport.findData(node.transport))
        self.ae_title.setText(node.ae_title)
        self.host.setText(node.host)
        self.port.setValue(int(node.port))
        self.calling.setText(node.calling_ae_title)
        self.url.setText(node.url)
        self.retrieve.setCurrentIndex(self.retrieve.findData(node.retrieve))
        self.storage_port.setValue(int(node.storage_port))
        self.timeout.setValue(float(node.timeout))
        self.tls.setChecked(node.tls)
        self.ca_file.setText(node.ca_file)
        self.cert_file.setText(node.cert_file)
        self.key_file.setText(node.key_file)
        self.auth.setCurrentIndex(max(self.auth.findData(
            node.auth or ("basic" if node.user else "")), 0))
        self.user.setText(node.user)
        self.password.setText(node.secret.reveal() if node.secret else "")

    def form_node(self) -> PacsNode:
        """The node as the form shows it (not checked), holding a typed password in memory."""
        web = self.transport.currentData() == "dicomweb"
        base = self.nodes[self._row] if 0 <= self._row < len(self.nodes) else PacsNode(name="")
        auth = self.auth.currentData() if web else ""
        return replace(base, name=self.name.text(), ae_title=self.ae_title.text(),
                       host=self.host.text(), port=self.port.value(),
                       calling_ae_title=self.calling.text(), url=self.url.text() if web else "",
                       retrieve=self.retrieve.currentData(),
                       storage_port=self.storage_port.value(), timeout=self.timeout.value(),
                       tls=self.tls.isChecked() and not web, ca_file=self.ca_file.text(),
                       cert_file=self.cert_file.text(), key_file=self.key_file.text(),
                       auth=auth, user=self.user.text() if auth == "basic" else "",
                       ).with_secret(self.password.text() if auth else None)

    def _store_form(self) -> None:
        if 0 <= self._row < len(self.nodes):
            self.nodes[self._row] = self.form_node()
            item = self.list.item(self._row)
            if item is not None:
                item.setText(self.nodes[self._row].name)

    # --- test and save -----------------------------------------------------------------------

    def test_connection(self) -> None:
        from rcdnet_desktop.core.pacs import echo

        try:
            node = self.form_node().checked()
        except PacsError as exc:
            self.status.setText(f"Not a usable node: {exc.reason}")
            return
        self.status.setText(f"Testing {node.label}...")
        self.test_button.setEnabled(False)
        self.job = PacsJob(lambda _cancel, _progress: logged_in(node, lambda: echo(node)),
                           self, "echo")
        self.job.done.connect(lambda s: self._tested(f"Connected: {node.label} answered in "
                                                     f"{s * 1000:.0f} ms."))
        self.job.failed.connect(lambda m: self._tested(f"Failed: {m}"))
        self.job.start()

    def _tested(self, text: str) -> None:
        self.status.setText(text)
        self.test_button.setEnabled(True)

    def accept(self) -> None:
        self._store_form()
        checked, problems, names = [], [], set()
        for node in self.nodes:
            try:
                node = node.checked()
            except PacsError as exc:
                problems.append(f"{node.name or 'a node'}: {exc.reason}")
                continue
            if node.name.lower() in names:
                problems.append(f"two nodes are called {node.name}")
            names.add(node.name.lower())
            checked.append(node)
        if problems:
            self.status.setText("Not saved: " + "; ".join(problems))
            return
        kept_in_keyring = True
        for node in checked:
            if node.secret:
                remember_for_session(node, node.secret)
                if self.remember.isChecked():
                    kept_in_keyring &= save_to_keyring(node, node.secret)
        if not kept_in_keyring:
            self.status.setText("The system keyring refused the password: it is kept only "
                                "until the viewer closes.")
        save_pacs_nodes(self.settings, checked)  # never the secrets (PacsNode.to_dict)
        super().accept()

    def done(self, result: int) -> None:  # noqa: D401 - Qt override
        if self.job is not None:
            self.job.cancel()
            self.job.wait(5)
        super().done(result)
