"""The PySide6 desktop viewer. Nothing here is imported by ``rcdnet_desktop.core``.

Start it with the ``rcdnet-viewer`` script (:func:`rcdnet_desktop.gui.app.main`).

The viewer is grouped by what it shows, in layers; a module imports only from its own layer
or from the layers below it (``tests/test_layering.py`` holds the code to this, counting the
imports inside functions and under ``TYPE_CHECKING`` too, and allows no import circle):

1. ``shared``: the modules directly in this package (:mod:`~rcdnet_desktop.gui.theme`,
   :mod:`~rcdnet_desktop.gui.wording`, :mod:`~rcdnet_desktop.gui.settings`,
   :mod:`~rcdnet_desktop.gui.qimage`), which import nothing else of the viewer;
2. :mod:`~rcdnet_desktop.gui.session`: what the viewer holds and runs, without widgets;
3. :mod:`~rcdnet_desktop.gui.panels`: the panels around the image;
4. :mod:`~rcdnet_desktop.gui.image`: the central image view and what is drawn on it;
5. :mod:`~rcdnet_desktop.gui.cine`: cine clips (sweep and timeline);
6. :mod:`~rcdnet_desktop.gui.batch`: batch review of a folder;
7. :mod:`~rcdnet_desktop.gui.dialogs`: the Help dialogs, the export dialog, stored results;
8. :mod:`~rcdnet_desktop.gui.pacs`: query/retrieve, send, the PACS nodes;
9. :mod:`~rcdnet_desktop.gui.window`: the main window, its controller and its actions;
10. ``app``: :mod:`~rcdnet_desktop.gui.app`, the entry point.
"""

LAYERS = ("shared", "session", "panels", "image", "cine", "batch", "dialogs", "pacs", "window",
          "app")
"""The layers above, lowest first."""
