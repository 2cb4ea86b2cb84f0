"""One image ready for the model (:class:`Prepared`): what the engine's ``prepare`` returns and
its ``*_prepared`` methods take."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rcdnet_desktop.core.types import Box, LesionFinding


@dataclass(frozen=True)
class Prepared:
    """One image ready for the model: what :meth:`~rcdnet_desktop.core.model.engine.
    InferenceEngine.prepare` returns.

    Attributes
    ----------
    tensor : np.ndarray
        ``(3, s, s)`` float32 model input (:func:`~rcdnet_desktop.core.preprocess.preprocess`).
    image_hw : (int, int)
        Height and width of the whole frame (heat maps come back at this size).
    roi : Box or None
        The padded, clipped box that was cropped, or None for the whole image.
    frame : int
        Frame index of a multi-frame image.
    warnings : tuple of str
        Intended-use warnings for the frame (and the untrained-weights warning).
    box : Box or None
        The lesion box as given or found, unpadded, or None.
    box_source : str
        ``"user"``, ``"auto"`` or ``"none"``.
    finding : LesionFinding or None
        The localiser's finding when ``box_source`` is ``"auto"``.
    whole : np.ndarray or None
        The whole-image view ``(3, s, s)`` when ``tensor`` is a box view and the whole image
        is needed too (fusion, or the input guard), else None.
    fuse : bool
        Average the logits of ``tensor`` and ``whole`` (fusion of an automatic box).
    checks : tuple of str
        Codes of the intended-use flags found so far (:data:`~rcdnet_desktop.core.checks.
        CHECK_CODES`); the input guard's is added after the forward pass.
    views : np.ndarray or None
        ``(k, 3, s, s)``: the other views of the lesion box (the card's ``box_views``, each
        padded, cropped and preprocessed like ``tensor``), whose logits are averaged with
        ``tensor``'s; None when the box is classified alone or there is no box.
    classified : Box or None
        The box classified, unpadded: ``box``, or (the card's ``box_views.snap_min_iou``) the
        lesion region the localiser outlines around a user's box; ``roi`` is it padded.
    """

    tensor: np.ndarray
    image_hw: tuple[int, int]
    roi: Box | None
    frame: int
    warnings: tuple[str, ...]
    box: Box | None = None
    box_source: str = "none"
    finding: LesionFinding | None = None
    whole: np.ndarray | None = None
    fuse: bool = False
    checks: tuple[str, ...] = ()
    views: np.ndarray | None = None
    classified: Box | None = None
