"""Persistent viewer settings (QSettings): layout, last folder, display and model choices."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from rcdnet_desktop.core.model.device import DEVICES

ORGANISATION = "RcdNet"
APPLICATION = "RcdNet Desktop"
MAX_RECENT = 10
DEVICE_LABELS = {"auto": "Automatic (GPU if available)", "cpu": "CPU", "cuda": "GPU (CUDA)",
                 "mps": "GPU (Apple MPS)"}


class Settings:
    """Typed access to the viewer's QSettings.

    Parameters
    ----------
    qsettings : QSettings, optional
        Defaults to the user's settings for this application; tests pass one backed by a
        temporary INI file.
    """

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings(ORGANISATION, APPLICATION)

    def _get(self, key: str, default, kind=None):
        value = self.q.value(key, default)
        if kind is None or value is None:
            return value
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    # --- window ------------------------------------------------------------------------------

    def window_geometry(self) -> QByteArray | None:
        v = self.q.value("window/geometry")
        return v if isinstance(v, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        v = self.q.value("window/state")
        return v if isinstance(v, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    # --- folders and recent files ------------------------------------------------------------

    @property
    def last_folder(self) -> str:
        return str(self._get("paths/last_folder", "", str) or "")

    @last_folder.setter
    def last_folder(self, folder: str | Path) -> None:
        self.q.setValue("paths/last_folder", str(folder))

    @property
    def export_folder(self) -> str:
        return str(self._get("paths/export_folder", "", str) or "")

    @export_folder.setter
    def export_folder(self, folder: str | Path) -> None:
        self.q.setValue("paths/export_folder", str(folder))

    def recent_files(self) -> list[str]:
        v = self.q.value("paths/recent", [])
        if isinstance(v, str):
            v = [v] if v else []
        return [str(x) for x in (v or [])][:MAX_RECENT]

    def add_recent(self, path: str | Path) -> list[str]:
        p = str(path)
        items = [x for x in self.recent_files() if x != p]
        items.insert(0, p)
        items = items[:MAX_RECENT]
        self.q.setValue("paths/recent", items)
        return items

    def clear_recent(self) -> None:
        self.q.setValue("paths/recent", [])

    # --- display -----------------------------------------------------------------------------

    @property
    def opacity(self) -> float:
        return min(max(float(self._get("display/opacity", 0.45, float)), 0.0), 1.0)

    @opacity.setter
    def opacity(self, value: float) -> None:
        self.q.setValue("display/opacity", float(value))

    @property
    def colormap(self) -> str:
        return str(self._get("display/colormap", "jet", str))

    @colormap.setter
    def colormap(self, value: str) -> None:
        self.q.setValue("display/colormap", str(value))

    @property
    def show_outline(self) -> bool:
        """Draw the outline of the automatically found lesion over the image."""
        return bool(self._get("display/show_outline", False, bool))

    @show_outline.setter
    def show_outline(self, value: bool) -> None:
        self.q.setValue("display/show_outline", bool(value))

    @property
    def theme(self) -> str:
        """"dark" (the default) or "light"."""
        v = str(self._get("display/theme", "dark", str))
        return v if v in ("dark", "light") else "dark"

    @theme.setter
    def theme(self, value: str) -> None:
        self.q.setValue("display/theme", str(value))

    @property
    def image_overlay(self) -> str:
        """Which heat map is laid over the main image: "none", "benign" or "malignant"."""
        v = str(self._get("display/image_overlay", "none", str))
        return v if v in ("none", "benign", "malignant") else "none"

    @image_overlay.setter
    def image_overlay(self, value: str) -> None:
        self.q.setValue("display/image_overlay", str(value))

    @property
    def cam_method(self) -> str:
        return str(self._get("model/cam_method", "", str) or "")

    @cam_method.setter
    def cam_method(self, value: str) -> None:
        self.q.setValue("model/cam_method", str(value))

    @property
    def device(self) -> str:
        v = str(self._get("model/device", "auto", str))
        return v if v in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self.q.setValue("model/device", value if value in DEVICES else "auto")

    @property
    def site_profile(self) -> str:
        """The site profile file in use ("" for the bundled model card's operating point)."""
        return str(self._get("model/site_profile", "", str) or "")

    @site_profile.setter
    def site_profile(self, path: str | Path) -> None:
        self.q.setValue("model/site_profile", str(path))

    def sync(self) -> None:
        self.q.sync()
