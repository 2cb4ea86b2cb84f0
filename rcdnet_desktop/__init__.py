"""RcdNet Desktop: breast ultrasound decision support with benign/malignant heat maps.

The application is built in layers; a module imports only from its own layer or from the layers
below it, and no modules import each other in a circle (``tests/test_layering.py`` holds the
code to this, counting the imports inside functions as well as those at the top):

1. ``core`` (:mod:`rcdnet_desktop.core`): everything that is not Qt, itself in layers
   (``rcdnet_desktop.core.LAYERS``);
2. ``archive`` (:mod:`rcdnet_desktop.archive`): the review of ``rcdnet classify`` on Ray, over a
   whole archive (imported only by ``rcdnet archive``, with the ``[cluster]`` extra);
3. ``cli``: the modules directly in this package, the ``rcdnet`` commands;
4. ``gui`` (:mod:`rcdnet_desktop.gui`): the viewer, itself in layers
   (``rcdnet_desktop.gui.LAYERS``).

This file (the version) is below them all.
"""

__version__ = "0.1.0"

LAYERS = ("core", "archive", "cli", "gui")
"""The layers above, lowest first."""
