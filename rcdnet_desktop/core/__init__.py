"""Everything that is not Qt: readers, preprocessing, model, inference, explanation, export.

This package must never import PySide6 (a test enforces it), so it can run headless.

It is built in layers; a module imports only from its own layer or from the layers below it
(``tests/test_layering.py`` holds the code to this, imports inside functions included):

1. ``base``: the modules directly in this package not named below: the typed results, a
   clip's summary and a batch's item, the result vocabulary, preprocessing, the intended-use
   checks, the guard and lexicon heads, measurements, atomic writing, ...;
2. ``io`` (:mod:`~rcdnet_desktop.core.io`): the readers;
3. ``model`` (:mod:`~rcdnet_desktop.core.model`): the bundle, the backends, the runtime that
   chooses them, heat maps, the engine (and
   the former paths of its modules, :mod:`~rcdnet_desktop.core.inference`,
   :mod:`~rcdnet_desktop.core.bundle` and :mod:`~rcdnet_desktop.core.card`);
4. ``export`` (:mod:`~rcdnet_desktop.core.export`): PNG, PDF, DICOM SC and SR, CSV;
5. ``pacs`` (:mod:`~rcdnet_desktop.core.pacs`): DICOM networking;
6. ``review``: what runs the engine over many images or frames and what is shown with a result
   (:mod:`~rcdnet_desktop.core.batch`, :mod:`~rcdnet_desktop.core.cine`,
   :mod:`~rcdnet_desktop.core.context`);
7. ``validation`` (:mod:`~rcdnet_desktop.core.validation`): a site's validation report.
"""

LAYERS = ("base", "io", "model", "export", "pacs", "review", "validation")
"""The layers above, lowest first; a sub-package is the layer of its name."""

PLACED = {"inference": "model", "bundle": "model", "card": "model",
          "batch": "review", "cine": "review", "context": "review"}
"""Modules directly in this package that are not in ``base``, with their layer."""
