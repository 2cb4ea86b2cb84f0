"""Local validation: how the model does on a hospital's own labelled cases (``rcdnet validate``).

No Qt and no torch here. The cases (:mod:`.cases`: class folders or a CSV, patients, masks) go
through the same review as ``rcdnet classify`` (:func:`rcdnet_desktop.core.batch.review`); each
result becomes an :class:`~.outcomes.Outcome` (with the automatic box against the lesion mask,
:mod:`.localisation`); :mod:`.figures` computes every figure with patient-resampled intervals
(:mod:`rcdnet_desktop.core.metrics`); :mod:`.summary` says what they mean in plain words,
:mod:`.plots` draws the ROC curve and the calibration plot, and :mod:`.report` writes the HTML,
the PDF and the JSON of the figures.
"""
