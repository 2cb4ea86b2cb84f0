"""The viewer's site profile: chosen in the Model menu, kept in the settings, applied to every
engine the viewer loads.

The bundled model card's operating point is the default. "Site profile..." chooses a file made
by ``rcdnet validate --profile-out`` (:mod:`rcdnet_desktop.core.site_profile`); it is read and
verified at once against the model running, kept in :class:`~rcdnet_desktop.gui.settings.
Settings` and the model is loaded again under it, so every result on screen is decided at the
profile's cut-off. "Use the bundled defaults" goes back to the card's. A saved profile that no
longer verifies (changed, or another model) is not used: the viewer says why and runs on the
defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from rcdnet_desktop.core.site_profile import ProfileError, read_profile
from rcdnet_desktop.gui.settings import Settings

PROFILE_FILTER = "Site profiles (*.json);;All files (*)"


class SiteChoice:
    """The site profile of the viewer's settings, applied to each engine as it is created."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.problem = ""  # why the saved profile was not used, for the window to say

    def factory(self, make: Callable[[str], Any]) -> Callable[[str], Any]:
        """``make`` (device -> engine), with the saved site profile applied to each engine it
        creates (on the loading thread, before the engine is used)."""
        def create(device: str) -> Any:
            engine = make(device)
            self.problem = ""
            path = self.settings.site_profile
            if not hasattr(engine, "use_profile"):
                return engine
            if not path:
                if getattr(engine, "profile", None) is not None:
                    engine.use_profile(None)
                return engine
            try:
                engine.use_profile(read_profile(path, engine.card))
            except ProfileError as exc:
                self.problem = f"{exc} The bundled defaults are used."
            return engine
        return create

    def choose(self, parent: QWidget, card: Any, reload: Callable[[], None]) -> bool:
        """Ask for a profile file, verify it against ``card`` (the model running, if any), keep
        it and ``reload`` the model; False when nothing was chosen or it was refused."""
        path, _ = QFileDialog.getOpenFileName(parent, "Site profile",
                                              self.settings.last_folder, PROFILE_FILTER)
        if not path:
            return False
        try:
            read_profile(path, card)
        except ProfileError as exc:
            QMessageBox.warning(parent, "Site profile not used", str(exc))
            return False
        self.settings.site_profile = path
        reload()
        return True

    def clear(self, reload: Callable[[], None]) -> None:
        """Back to the bundled model card's operating point."""
        if self.settings.site_profile:
            self.settings.site_profile = ""
            reload()


__all__ = ["PROFILE_FILTER", "SiteChoice"]
