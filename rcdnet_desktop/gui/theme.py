"""The viewer's colours: a dark theme (the default: reading rooms are dark) and a light one.

Both use Qt's Fusion style, the dark one with a dark palette. Widgets that colour their own text
(the likelihood headline, warning banners, failed rows) take the colour from :func:`colour`,
which picks the variant that reads on the theme in use; they repaint when the window switches
the theme.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = {"dark": "&Dark", "light": "&Light"}
"""Theme key -> menu text."""
DEFAULT_THEME = "dark"

# Semantic colours, (on dark, on light): each reads on its own background (WCAG AA for text).
COLOURS: dict[str, tuple[str, str]] = {
    # The result's tones (rcdnet_desktop.core.result.tone):
    "alert": ("#ff7b72", "#b71c1c"),  # suspicious: at or above the cut-off: red
    "neutral": ("#e6e6e6", "#303030"),  # below the cut-off, outside the BI-RADS 3 range
    "reassuring": ("#8fd694", "#1b5e20"),  # the BI-RADS 3 range (<= 2%) only: green
    "outside": ("#ffb74d", "#a84300"),  # outside intended use: orange
    "muted": ("#a8a8a8", "#5f5f5f"),  # the class label, waiting texts
    "failed": ("#ff8a80", "#b3261e"),  # unreadable files, failed rows
}


def _dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(30, 30, 30), QColor(45, 45, 45), QColor(230, 230, 230)
    disabled = QColor(128, 128, 128)
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    for r, c in ((role.Window, window), (role.WindowText, text), (role.Base, base),
                 (role.AlternateBase, QColor(38, 38, 38)), (role.ToolTipBase, QColor(60, 60, 60)),
                 (role.ToolTipText, text), (role.PlaceholderText, disabled), (role.Text, text),
                 (role.Button, window), (role.ButtonText, text), (role.BrightText, QColor("red")),
                 (role.Light, QColor(70, 70, 70)), (role.Midlight, QColor(58, 58, 58)),
                 (role.Mid, QColor(100, 100, 100)), (role.Dark, QColor(25, 25, 25)),
                 (role.Shadow, QColor(0, 0, 0)), (role.Link, QColor(100, 170, 255)),
                 (role.Highlight, QColor(42, 110, 187)),
                 (role.HighlightedText, QColor(255, 255, 255))):
        p.setColor(r, c)
    for r in (role.WindowText, role.Text, role.ButtonText, role.HighlightedText):
        p.setColor(group.Disabled, r, disabled)
    return p


def apply_theme(name: str) -> str:
    """Switch the application to theme ``name`` (unknown names: the default); return it."""
    name = name if name in THEMES else DEFAULT_THEME
    app = QApplication.instance()
    if app is None:
        return name
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    app.setPalette(_dark_palette() if name == "dark" else app.style().standardPalette())
    # A widget with its own style sheet keeps the palette it was polished with: set its sheet
    # again so its text takes the new theme's colours.
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if sheet:
            widget.setStyleSheet(sheet)
    return name


def is_dark() -> bool:
    """Whether the application's window colour is dark (whatever set it)."""
    return QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def colour(kind: str) -> str:
    """The colour of ``kind`` (a key of :data:`COLOURS`) that reads on the theme in use."""
    dark, light = COLOURS[kind]
    return dark if is_dark() else light
