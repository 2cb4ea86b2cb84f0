"""The main window's actions, menus and toolbar, built from one table of texts and shortcuts.

:func:`build_actions` makes every action, adds it to the window (so its shortcut works with the
menus hidden), fills the menus and the toolbar, and returns them in :class:`WindowActions`.

Slots never receive ``QAction.triggered``'s ``checked`` by accident: a plain action calls a
slot that takes no argument, a checkable one a slot that takes the new state, each through its
own small wrapper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMenu, QMenuBar, QStyle, QToolBar, QWidget

from rcdnet_desktop.gui.image.image_overlay import CHOICES as OVERLAY_CHOICES
from rcdnet_desktop.gui.image.image_overlay import DEFAULT_MAP as OVERLAY_DEFAULT_MAP
from rcdnet_desktop.gui.settings import DEVICE_LABELS
from rcdnet_desktop.gui.theme import THEMES
from rcdnet_desktop.gui.window.viewer_protocols import ActionState

if TYPE_CHECKING:
    from rcdnet_desktop.gui.image.image_view import CineBar, ImageView
    from rcdnet_desktop.gui.panels.heatmap_panel import HeatmapPanel
    from rcdnet_desktop.gui.settings import Settings
    from rcdnet_desktop.gui.window.viewer_controller import ViewerController

Shortcut = str | QKeySequence.StandardKey


class ActionsHost(Protocol):
    """What the actions call: the main window (a ``QMainWindow``) provides all of it.

    Named here rather than imported, so that this module does not import the window that
    builds its actions with it. What the actions read of the viewer's state they read from
    ``controller`` (at the time they are triggered) and, for their first check marks, from the
    settings passed to :func:`build_actions`.
    """

    controller: ViewerController
    view: ImageView
    heatmaps: HeatmapPanel
    cine: CineBar
    thumbs_dock: QDockWidget
    analysis_dock: QDockWidget

    def open_files_dialog(self) -> None: ...
    def open_folder_dialog(self) -> None: ...
    def export_dialog(self, fmt: str = "png") -> None: ...
    def batch_dialog(self) -> object: ...
    def pacs_query_dialog(self) -> object: ...
    def pacs_send_dialog(self) -> object: ...
    def pacs_nodes_dialog(self) -> object: ...
    def set_overlay_on(self, on: bool) -> None: ...
    def set_outline_visible(self, on: bool) -> None: ...
    def set_box_mode(self, on: bool) -> None: ...
    def set_caliper_mode(self, on: bool) -> None: ...
    def set_device(self, device: str) -> None: ...
    def set_theme(self, name: str) -> None: ...
    def set_image_overlay(self, choice: str) -> None: ...
    def show_model_card(self) -> None: ...
    def show_shortcuts(self) -> None: ...
    def show_about(self) -> None: ...
    def show_tags(self) -> None: ...
    def choose_site_profile(self) -> None: ...
    def clear_site_profile(self) -> None: ...

    # QMainWindow's own
    def addAction(self, action: QAction) -> None: ...  # noqa: N802 - Qt's name
    def addToolBar(self, title: str) -> QToolBar: ...  # noqa: N802 - Qt's name
    def menuBar(self) -> QMenuBar: ...  # noqa: N802 - Qt's name
    def style(self) -> QStyle: ...
    def close(self) -> bool: ...


@dataclass
class WindowActions:
    """Every action of the main window, with the menus and toolbar that hold them."""

    open: QAction
    open_folder: QAction
    close: QAction
    export_png: QAction
    export_pdf: QAction
    export_dcm: QAction
    batch: QAction
    pacs_query: QAction
    pacs_send: QAction
    pacs_nodes: QAction
    quit: QAction
    next: QAction
    prev: QAction
    zoom_in: QAction
    zoom_out: QAction
    fit: QAction
    actual: QAction
    overlay: QAction
    plain: QAction
    outline: QAction
    reset_wl: QAction
    play: QAction
    box: QAction
    clear_box: QAction
    card: QAction
    shortcuts: QAction
    about: QAction
    measure: QAction
    clear_measurements: QAction
    tags: QAction
    site_profile: QAction
    site_defaults: QAction
    device: dict[str, QAction]
    recent_menu: QMenu
    toolbar: QToolBar
    theme: dict[str, QAction] = field(default_factory=dict)
    image_overlay: dict[str, QAction] = field(default_factory=dict)


def _new(window: QWidget, text: str, shortcuts: Sequence[Shortcut], tip: str) -> QAction:
    a = QAction(text, window)
    if shortcuts:
        a.setShortcuts([QKeySequence(s) for s in shortcuts])
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(tip)
    window.addAction(a)  # shortcuts work even with menus hidden
    return a


def _action(window: QWidget, text: str, slot: Callable[[], object],
            shortcuts: Sequence[Shortcut] = (), tip: str = "") -> QAction:
    """A plain action: ``slot()`` with no argument, whatever ``triggered`` carries."""
    a = _new(window, text, shortcuts, tip)
    a.triggered.connect(lambda _checked=False: slot())
    return a


def _toggle(window: QWidget, text: str, slot: Callable[[bool], object],
            shortcuts: Sequence[Shortcut] = (), tip: str = "") -> QAction:
    """A checkable action: ``slot(checked)`` with the new state."""
    a = _new(window, text, shortcuts, tip)
    a.setCheckable(True)
    a.triggered.connect(lambda checked=False: slot(bool(checked)))
    return a


def build_actions(w: ActionsHost, settings: Settings) -> WindowActions:
    """Create the window's actions, menus and toolbar, checked as ``settings`` say."""
    std = QKeySequence.StandardKey
    acts = dict(
        open=_action(w, "&Open image(s)...", w.open_files_dialog, [std.Open],
                     "Open one or more image files"),
        open_folder=_action(w, "Open &folder...", w.open_folder_dialog, ["Ctrl+Shift+O"],
                            "Open every image in a folder and its sub-folders"),
        close=_action(w, "&Close image", lambda: w.controller.close_current(), ["Ctrl+W"],
                      "Close the image on display"),
        export_png=_action(w, "Export annotated &PNG...", lambda: w.export_dialog("png"),
                           ["Ctrl+E"], "Image, both heat maps and the prediction"),
        export_pdf=_action(w, "Export P&DF report...", lambda: w.export_dialog("pdf"),
                           ["Ctrl+Shift+E"], "One-page report"),
        export_dcm=_action(w, "Export &DICOM (Secondary Capture or Structured Report)...",
                           lambda: w.export_dialog("dicom"), [],
                           "DICOM sources only: for the PACS or de-identified"),
        batch=_action(w, "&Batch review of a folder...", w.batch_dialog, ["Ctrl+B"],
                      "Classify every image in a folder; table, filter and CSV export"),
        pacs_query=_action(w, "&Query/retrieve...", w.pacs_query_dialog, ["Ctrl+Shift+P"],
                           "Find studies on a PACS and open them"),
        pacs_send=_action(w, "&Send result to PACS...", w.pacs_send_dialog, [],
                          "The result on display as a DICOM SR (and Secondary Capture), filed "
                          "with the source's patient and study"),
        pacs_nodes=_action(w, "PACS &nodes...", w.pacs_nodes_dialog, [],
                           "The PACS this viewer talks to: AE titles, hosts, ports, DICOMweb"),
        quit=_action(w, "&Quit", w.close, [std.Quit]),
        next=_action(w, "&Next image", lambda: w.controller.step(1), ["PgDown", "Right"],
                     "Show the next open image"),
        prev=_action(w, "&Previous image", lambda: w.controller.step(-1), ["PgUp", "Left"],
                     "Show the previous open image"),
        zoom_in=_action(w, "Zoom &in", w.view.zoom_in, ["Ctrl++", "+", "="]),
        zoom_out=_action(w, "Zoom &out", w.view.zoom_out, ["Ctrl+-", "-"]),
        fit=_action(w, "&Fit to window", w.view.fit, ["Ctrl+0", "F"]),
        actual=_action(w, "&Actual size (100%)", w.view.actual_size, ["1"]),
        overlay=_toggle(w, "Heat map &over the image", w.set_overlay_on, ["V"],
                        "Lay a heat map over the main image (which one: View > Overlay map)"),
        plain=_toggle(w, "Show &plain image in the evidence panels", w.heatmaps.set_plain,
                      ["H"], "Hide the heat maps beside the image and show it alone there"),
        outline=_toggle(w, "Show lesion o&utline", w.set_outline_visible, ["O"],
                        "Draw the outline of the lesion found automatically over the image "
                        "(models with a lesion localiser)"),
        reset_wl=_action(w, "&Reset brightness/contrast", w.view.reset_window_level, ["R"]),
        play=_action(w, "&Play/pause cine", w.cine.toggle, ["Space"]),
        box=_toggle(w, "Draw &lesion box", w.set_box_mode, ["B"],
                    "Drag a box around the lesion: prediction and maps then use the box"),
        clear_box=_action(w, "&Clear lesion box", lambda: w.controller.clear_box(),
                          ["Shift+B", "Delete"], "Back to the whole image"),
        card=_action(w, "&Model card...", w.show_model_card, [],
                     "Training data, metrics, intended use and limits"),
        shortcuts=_action(w, "&Keyboard shortcuts...", w.show_shortcuts, [std.HelpContents, "?"]),
        about=_action(w, "&About RcdNet Desktop...", w.show_about),
        measure=_toggle(w, "&Measure distance", w.set_caliper_mode, ["M"],
                        "Drag a line on the image: its length in mm (pixels when the file "
                        "gives no scale)"),
        clear_measurements=_action(w, "C&lear measurements",
                                   lambda: w.controller.clear_measurements(), ["Shift+M"],
                                   "Remove the measurements of the image (frame) on display"),
        tags=_action(w, "DICOM &tags...", w.show_tags, ["T"],
                     "The DICOM header of the image on display, searchable"),
        site_profile=_action(w, "&Site profile...", w.choose_site_profile, [],
                             "Decide results at a site profile's cut-off, temperature and "
                             "guard limit (made by rcdnet validate --profile-out)"),
        site_defaults=_action(w, "Use the &bundled defaults", w.clear_site_profile, [],
                              "Decide results at the model card's own operating point"),
    )
    acts["outline"].setChecked(settings.show_outline)
    acts["overlay"].setChecked(settings.image_overlay != "none")
    acts["plain"].setChecked(w.heatmaps.plain.isChecked())
    w.heatmaps.plain.toggled.connect(acts["plain"].setChecked)  # the panel's own check box
    device = _choice_actions(w, DEVICE_LABELS, settings.device, w.set_device)
    theme = _choice_actions(w, THEMES, settings.theme, w.set_theme)
    saved = settings.image_overlay
    image_overlay = _choice_actions(w, OVERLAY_CHOICES,
                                    saved if saved in OVERLAY_CHOICES else OVERLAY_DEFAULT_MAP,
                                    w.set_image_overlay)
    recent_menu = _build_menus(w, acts, device, theme, image_overlay)
    toolbar = _build_toolbar(w, acts)
    return WindowActions(**acts, device=device, recent_menu=recent_menu, toolbar=toolbar,
                         theme=theme, image_overlay=image_overlay)


def _choice_actions(w: ActionsHost, texts: dict[str, str], current: str,
                    slot: Callable[[str], object]) -> dict[str, QAction]:
    """One checkable action per key of ``texts``, exclusive; each calls ``slot(key)``."""
    group = QActionGroup(w)
    out: dict[str, QAction] = {}
    for key, text in texts.items():
        a = QAction(text, w, checkable=True)
        a.setData(key)
        a.setChecked(key == current)
        a.triggered.connect(lambda _checked=False, k=key: slot(k))
        group.addAction(a)
        out[key] = a
    return out


def _build_menus(w: ActionsHost, a: dict[str, QAction], device: dict[str, QAction],
                 theme: dict[str, QAction], image_overlay: dict[str, QAction]) -> QMenu:
    """Fill the menu bar; return the (empty) recent-files menu."""
    mb = w.menuBar()
    m = mb.addMenu("&File")
    m.addActions([a["open"], a["open_folder"]])
    recent = m.addMenu("Open &recent")
    m.addAction(a["close"])
    m.addSeparator()
    m.addActions([a["export_png"], a["export_pdf"], a["export_dcm"]])
    m.addSeparator()
    m.addAction(a["batch"])
    m.addSeparator()
    m.addAction(a["quit"])
    m = mb.addMenu("&View")
    m.addActions([a["next"], a["prev"]])
    m.addSeparator()
    m.addActions([a["zoom_in"], a["zoom_out"], a["fit"], a["actual"]])
    m.addSeparator()
    m.addAction(a["overlay"])
    m.addMenu("Overlay &map").addActions(list(image_overlay.values()))
    m.addActions([a["plain"], a["outline"], a["reset_wl"], a["play"]])
    m.addSeparator()
    m.addMenu("&Theme").addActions(list(theme.values()))
    m.addActions([w.thumbs_dock.toggleViewAction(), w.analysis_dock.toggleViewAction()])
    m.addAction(a["tags"])
    m = mb.addMenu("&PACS")
    m.addActions([a["pacs_query"], a["pacs_send"]])
    m.addSeparator()
    m.addAction(a["pacs_nodes"])
    m = mb.addMenu("&Lesion box")
    m.addActions([a["box"], a["clear_box"]])
    m = mb.addMenu("M&easure")
    m.addActions([a["measure"], a["clear_measurements"]])
    m = mb.addMenu("&Model")
    m.addMenu("&Device").addActions(list(device.values()))
    m.addActions([a["site_profile"], a["site_defaults"]])
    m.addAction(a["card"])
    m = mb.addMenu("&Help")
    m.addActions([a["shortcuts"], a["card"], a["about"]])
    return recent


def _build_toolbar(w: ActionsHost, a: dict[str, QAction]) -> QToolBar:
    sp = QStyle.StandardPixmap
    icons = {"open": sp.SP_DialogOpenButton, "open_folder": sp.SP_DirOpenIcon,
             "batch": sp.SP_FileDialogDetailedView, "prev": sp.SP_ArrowBack,
             "next": sp.SP_ArrowForward, "export_png": sp.SP_DialogSaveButton,
             "clear_box": sp.SP_DialogResetButton, "card": sp.SP_FileDialogInfoView,
             "shortcuts": sp.SP_DialogHelpButton, "quit": sp.SP_DialogCloseButton}
    for name, pixmap in icons.items():
        a[name].setIcon(w.style().standardIcon(pixmap))
    short = {"open": "Open", "open_folder": "Folder", "batch": "Batch review",
             "prev": "Previous", "next": "Next", "fit": "Fit", "box": "Lesion box",
             "clear_box": "Clear box", "outline": "Outline", "overlay": "Overlay",
             "measure": "Measure",
             "export_png": "Export PNG", "export_pdf": "PDF"}
    for name, text in short.items():
        a[name].setIconText(text)
    tb = w.addToolBar("Main")
    tb.setObjectName("main_toolbar")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    groups = (("open", "open_folder", "batch"), ("prev", "next", "fit"),
              ("box", "clear_box", "measure", "outline", "overlay"),
              ("export_png", "export_pdf"))
    for i, group in enumerate(groups):
        if i:
            tb.addSeparator()
        tb.addActions([a[name] for name in group])
    return tb


def apply_action_state(acts: WindowActions, state: ActionState) -> None:
    """Enable the actions that can act on what is open now."""
    acts.export_png.setEnabled(state.has_maps)
    acts.export_pdf.setEnabled(state.has_maps)
    acts.export_dcm.setEnabled(state.has_maps and state.is_dicom)
    acts.pacs_send.setEnabled(state.has_maps and state.is_dicom)
    acts.box.setEnabled(state.has_image)
    acts.outline.setEnabled(state.has_localiser)
    acts.clear_box.setEnabled(state.has_box)
    acts.measure.setEnabled(state.has_image)
    acts.clear_measurements.setEnabled(state.has_measurements)
    acts.close.setEnabled(state.has_document)
    acts.next.setEnabled(state.document_count > 1)
    acts.prev.setEnabled(state.document_count > 1)


def fill_recent_menu(menu: QMenu, recent: Sequence[str], open_path: Callable[[str], object],
                     clear: Callable[[], object]) -> None:
    """The recent files and folders, newest first, and "Clear list".

    The old entries are deleted later, not at once: this runs from one of their own
    ``triggered`` signals, and deleting the sender inside its signal would crash.
    """
    for old in menu.actions():
        menu.removeAction(old)
        old.deleteLater()
    for p in recent:
        a = menu.addAction(p)
        a.triggered.connect(lambda _checked=False, path=p: open_path(path))
    if recent:
        menu.addSeparator()
        menu.addAction("Clear list").triggered.connect(lambda _checked=False: clear())
    menu.setEnabled(bool(recent))


def shortcut_list(window: QWidget) -> list[tuple[str, str]]:
    """(keys, action) for the help dialog, from the window's actions themselves."""
    out = []
    for a in window.actions():
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts()]
        keys = [k for k in keys if k]
        if keys:
            out.append((" or ".join(keys), a.text().replace("&", "").rstrip(".")))
    return out
