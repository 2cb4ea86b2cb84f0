"""The main window's actions, menus and toolbar, built from one table of texts and shortcuts.

A mixin of :class:`~rcdnet_desktop.gui.main_window.MainWindow`: the actions call the window's
own slots, and every action is added to the window so its shortcut works with menus hidden.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QStyle

from rcdnet_desktop.gui.settings import DEVICE_LABELS, DEVICES


class WindowActions:
    """Builds ``self.act_*``, the menus, the device choice and the toolbar of the window."""

    def _action(self, text: str, slot, shortcuts=(), tip: str = "", checkable: bool = False
                ) -> QAction:
        a = QAction(text, self)
        if shortcuts:
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work even with menus hidden
        return a

    def _build_actions(self) -> None:
        A = self._action  # noqa: N806
        self.act_open = A("&Open image(s)...", self.open_files_dialog,
                          [QKeySequence.StandardKey.Open], "Open one or more image files")
        self.act_open_folder = A("Open &folder...", self.open_folder_dialog, ["Ctrl+Shift+O"],
                                 "Open every image in a folder and its sub-folders")
        self.act_close = A("&Close image", self.close_current, ["Ctrl+W"],
                           "Close the image on display")
        self.act_export_png = A("Export annotated &PNG...", lambda: self.export_dialog("png"),
                                ["Ctrl+E"], "Image, both heat maps and the prediction")
        self.act_export_pdf = A("Export P&DF report...", lambda: self.export_dialog("pdf"),
                                ["Ctrl+Shift+E"], "One-page report")
        self.act_export_dcm = A("Export DICOM &Secondary Capture...",
                                lambda: self.export_dialog("dicom"), [],
                                "DICOM sources only: same study, new series")
        # A lambda: triggered(bool) would otherwise arrive as batch_dialog's folder.
        self.act_batch = A("&Batch review of a folder...", lambda: self.batch_dialog(), ["Ctrl+B"],
                           "Classify every image in a folder; table, filter and CSV export")
        self.act_quit = A("&Quit", self.close, [QKeySequence.StandardKey.Quit])

        self.act_next = A("&Next image", lambda: self.step(1), ["PgDown", "Right"],
                          "Show the next open image")
        self.act_prev = A("&Previous image", lambda: self.step(-1), ["PgUp", "Left"],
                          "Show the previous open image")
        self.act_zoom_in = A("Zoom &in", self.view.zoom_in, ["Ctrl++", "+", "="])
        self.act_zoom_out = A("Zoom &out", self.view.zoom_out, ["Ctrl+-", "-"])
        self.act_fit = A("&Fit to window", self.view.fit, ["Ctrl+0", "F"])
        self.act_actual = A("&Actual size (100%)", self.view.actual_size, ["1"])
        self.act_overlay = A("Toggle heat-map &overlay", self.heatmaps.toggle_plain, ["H"],
                             "Switch the evidence panels between heat maps and plain image")
        self.act_outline = A("Show lesion o&utline", self.set_outline_visible, ["O"],
                             "Draw the outline of the lesion found automatically over the image "
                             "(models with a lesion localiser)", checkable=True)
        self.act_outline.setChecked(self.settings.show_outline)
        self.view.set_outline_visible(self.act_outline.isChecked())
        self.act_reset_wl = A("&Reset brightness/contrast", self.view.reset_window_level, ["R"])
        self.act_play = A("&Play/pause cine", self.cine.toggle, ["Space"])
        self.act_box = A("Draw &lesion box", self.set_box_mode, ["B"],
                         "Drag a box around the lesion: prediction and maps then use the box",
                         checkable=True)
        self.act_clear_box = A("&Clear lesion box", self.clear_box, ["Shift+B", "Delete"],
                               "Back to the whole image")
        self.act_card = A("&Model card...", self.show_model_card, [],
                          "Training data, metrics, intended use and limits")
        self.act_shortcuts = A("&Keyboard shortcuts...", self.show_shortcuts,
                               [QKeySequence.StandardKey.HelpContents, "?"])
        self.act_about = A("&About RcdNet Desktop...", self.show_about)

        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addActions([self.act_open, self.act_open_folder])
        self.recent_menu = m.addMenu("Open &recent")
        m.addAction(self.act_close)
        m.addSeparator()
        m.addActions([self.act_export_png, self.act_export_pdf, self.act_export_dcm])
        m.addSeparator()
        m.addAction(self.act_batch)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&View")
        m.addActions([self.act_next, self.act_prev])
        m.addSeparator()
        m.addActions([self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_actual])
        m.addSeparator()
        m.addActions([self.act_overlay, self.act_outline, self.act_reset_wl, self.act_play])
        m.addSeparator()
        m.addActions([self.thumbs_dock.toggleViewAction(), self.analysis_dock.toggleViewAction()])
        m = mb.addMenu("&Lesion box")
        m.addActions([self.act_box, self.act_clear_box])
        m = mb.addMenu("&Model")
        dm = m.addMenu("&Device")
        self.device_group = QActionGroup(self)
        self.device_actions: dict[str, QAction] = {}
        for dev in DEVICES:
            a = QAction(DEVICE_LABELS[dev], self, checkable=True)
            a.setData(dev)
            a.setChecked(dev == self.settings.device)
            a.triggered.connect(lambda _c=False, d=dev: self.set_device(d))
            self.device_group.addAction(a)
            dm.addAction(a)
            self.device_actions[dev] = a
        m.addAction(self.act_card)
        m = mb.addMenu("&Help")
        m.addActions([self.act_shortcuts, self.act_card, self.act_about])

        sp = QStyle.StandardPixmap
        icons = {
            self.act_open: sp.SP_DialogOpenButton, self.act_open_folder: sp.SP_DirOpenIcon,
            self.act_batch: sp.SP_FileDialogDetailedView, self.act_prev: sp.SP_ArrowBack,
            self.act_next: sp.SP_ArrowForward, self.act_export_png: sp.SP_DialogSaveButton,
            self.act_clear_box: sp.SP_DialogResetButton, self.act_card: sp.SP_FileDialogInfoView,
            self.act_shortcuts: sp.SP_DialogHelpButton, self.act_quit: sp.SP_DialogCloseButton,
        }
        for action, pixmap in icons.items():
            action.setIcon(self.style().standardIcon(pixmap))
        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        short = {self.act_open: "Open", self.act_open_folder: "Folder",
                 self.act_batch: "Batch review", self.act_prev: "Previous",
                 self.act_next: "Next", self.act_fit: "Fit", self.act_box: "Lesion box",
                 self.act_clear_box: "Clear box", self.act_outline: "Outline",
                 self.act_overlay: "Overlay",
                 self.act_export_png: "Export PNG", self.act_export_pdf: "PDF"}
        for action, text in short.items():
            action.setIconText(text)
        tb.addActions([self.act_open, self.act_open_folder, self.act_batch])
        tb.addSeparator()
        tb.addActions([self.act_prev, self.act_next, self.act_fit])
        tb.addSeparator()
        tb.addActions([self.act_box, self.act_clear_box, self.act_outline, self.act_overlay])
        tb.addSeparator()
        tb.addActions([self.act_export_png, self.act_export_pdf])
        self._update_actions()
        self._rebuild_recent()

    def shortcut_list(self) -> list[tuple[str, str]]:
        """(keys, action) for the help dialog, from the actions themselves."""
        out = []
        for a in self.actions():
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts()]
            keys = [k for k in keys if k]
            if keys:
                out.append((" or ".join(keys), a.text().replace("&", "").rstrip(".")))
        return out
