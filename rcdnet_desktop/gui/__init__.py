"""The PySide6 desktop viewer. Nothing here is imported by ``rcdnet_desktop.core``.

Start it with the ``rcdnet-viewer`` script (:func:`rcdnet_desktop.gui.app.main`).
"""
