"""InferenceEngine: prepare, localise, fuse, predict and explain, for one image or many.

Typical use::

    engine = InferenceEngine()                 # bundled weights, CUDA > MPS > CPU
    pred = engine.predict(record)              # Prediction
    maps = engine.explain(record, roi=box)     # HeatMaps (both classes) + its Prediction

Images are :class:`~rcdnet_desktop.core.types.ImageRecord` objects or uint8 arrays (``(H, W)``
grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA). A region of interest is a
:class:`~rcdnet_desktop.core.types.Box` (or an ``(x, y, w, h)`` tuple) in image pixels: it is
padded by the model card's ``roi_margin`` on each side, clipped to the image, cropped and
classified; heat maps still come back at the full image's size, zero outside the box.

Automatic lesion box: when the bundle has a lesion localiser (the model card's ``localiser``
section) and no box is given, :meth:`InferenceEngine.prepare` runs the localiser on the whole
frame and classifies the lesion box it finds (``box_source="auto"``); when it finds none with
the card's ``min_confidence``, the whole image is classified and the result says so in its
warnings. A box given by the user always wins, and ``auto_box=False`` turns the localiser off.
With the card's ``operating_point.default_mode == "fusion"`` an automatic box's prediction
averages the logits of the box view and the whole-image view (one forward batch); its heat maps
are the box view's, with the whole image's share of the decision spread evenly over the box.
Every prediction carries its likelihood band and suspicious flag under the card's operating
point (:mod:`~rcdnet_desktop.core.bands`), or under a site profile's temperature, cut-off and
guard limit (:meth:`InferenceEngine.use_profile`, :mod:`~rcdnet_desktop.core.site_profile`).

Box views: with the card's ``box_views`` section, a lesion box (the user's or the automatic
one) is classified through a small fixed set of views of it, scaled and shifted a little, and
their logits are averaged in the same forward batch, so the probability depends less on exactly
how the box was drawn (:mod:`~rcdnet_desktop.core.box_views`). The prediction keeps the box as
given (``box``, ``roi``), its heat maps are the as-given view's, and ``box_p_range`` holds the
views' probability range.

Backends (:mod:`~rcdnet_desktop.core.model.backends`, chosen once with the device by
:class:`~rcdnet_desktop.core.model.runtime.Runtime`): on the CPU the engine runs the bundle's ONNX
graphs (classifier and localiser) in ONNX Runtime by default (device ``"cpu-onnx"``); the
closed-form heat maps then come from the graph's feature map and the classifier's linear weight
(read from the verified graph) in numpy, and torch is not imported at all. On CUDA/MPS, with
``backend="torch"`` or ``$RCDNET_BACKEND=torch``, or without onnxruntime, torch runs them
(:mod:`~rcdnet_desktop.core.model.torch_backend`). Heat-map methods other than the closed form
always run on the torch model, which is loaded (and torch imported) the first time one is asked
for; torch is an optional extra (``pip install 'rcdnet-desktop[torch]'``). The bundle is opened
and verified once (:class:`~rcdnet_desktop.core.model.bundle.Bundle`).

Throughput: :meth:`InferenceEngine.predict_many` and :meth:`InferenceEngine.explain_many` run
several images in one forward pass. To overlap decoding and preprocessing with the model, call
:meth:`InferenceEngine.prepare` on worker threads (it never touches the model) and hand the
:class:`Prepared` items to :meth:`InferenceEngine.predict_prepared` or
:meth:`InferenceEngine.explain_prepared` on the one thread that runs the model.

Thread safety: an engine is NOT thread safe. Apart from :meth:`~InferenceEngine.prepare`, call
it from one thread at a time (pytorch-grad-cam's hooks mutate the model while a map is computed).
:meth:`~InferenceEngine.prepare` never touches the classifier; the localiser it may run is its
own network, only read (eval mode, under ``torch.inference_mode`` on the torch backend),
never hooked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rcdnet_desktop.core.bands import band_for, card_bands, default_mode, suspicious_threshold
from rcdnet_desktop.core.box_views import parse_views, snap_min_iou, view_boxes
from rcdnet_desktop.core.checks import (
    CHECK_CODES,
    check_box_region,
    check_image,
    check_record,
    codes,
)
from rcdnet_desktop.core.errors import InferenceError
from rcdnet_desktop.core.lesion import find_lesion, lesion_in_box
from rcdnet_desktop.core.lexicon import suggest
from rcdnet_desktop.core.model.backends import Forward
from rcdnet_desktop.core.model.bundle import Bundle
from rcdnet_desktop.core.model.card import DEFAULT_MIN_CONFIDENCE, ModelCard
from rcdnet_desktop.core.model.device import ONNX_CUDA_DEVICE, require_torch
from rcdnet_desktop.core.model.explain import (
    FAST,
    GRADCAM_METHODS,
    METHOD_LABELS,
    contrastive_scores,
    decision_evidence,
    to_image_size,
)
from rcdnet_desktop.core.model.fuse import Layout, batch_views, combine, softmax, whole_rows
from rcdnet_desktop.core.model.prepared import Prepared
from rcdnet_desktop.core.model.runtime import Runtime
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.preprocess import crop, pad_roi, preprocess
from rcdnet_desktop.core.site_profile import SiteProfile, check_model
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, LesionFinding, Prediction

if TYPE_CHECKING:
    from rcdnet_desktop.core.model.localiser import LesionLocaliser
    from rcdnet_desktop.core.model.network import RcdNet

DEFAULT_BATCH_SIZE = 16

ImageInput = ImageRecord | np.ndarray
RoiInput = Box | tuple[int, int, int, int] | None

UNTRAINED_WARNING = ("UNTRAINED weights (model {version}): this placeholder model was never "
                     "trained on ultrasound; its output is arbitrary and must not be used")
NO_LESION_WARNING = ("no lesion found with confidence by the automatic localiser: the whole "
                     "image was classified")


def _frame_pixels(image: ImageInput, frame: int) -> np.ndarray:
    if isinstance(image, ImageRecord):
        try:
            return image.frame(frame)
        except IndexError as exc:
            raise InferenceError(str(exc)) from exc
    if isinstance(image, np.ndarray):
        if frame != 0:
            raise InferenceError(f"frame {frame} asked of a single-frame array")
        return image
    raise InferenceError(f"cannot classify a {type(image).__name__}: expected an ImageRecord "
                         "or a numpy array")


class InferenceEngine:
    """Runs the bundled RcdNet: predictions with calibrated probabilities, and heat maps.

    Parameters
    ----------
    model_dir : str or Path, optional
        Model bundle folder (see :mod:`rcdnet_desktop.core.model.card`); the default bundle when
        omitted.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. When omitted,
        ``$RCDNET_DEVICE``, else auto: CUDA if available, else Apple MPS, else the CPU.
    batch_size : int
        Largest batch the ``*_many`` and ``*_prepared`` methods send through the model at once.
    model, card : optional
        An already loaded model and its card (tests, training evaluation); ``model_dir`` is
        ignored then. The model is put in eval mode; one on a GPU is copied to the CPU first.
    localiser : LesionLocaliser, optional
        With ``model`` and ``card``: the lesion localiser to use (none when omitted). Without
        them, the bundle's localiser is loaded when its card names one.
    backend : str, optional
        ``"auto"``, ``"onnx"`` or ``"torch"``; when omitted, ``$RCDNET_BACKEND``, else auto.
        Auto runs the bundle's ONNX graphs in ONNX Runtime when the engine runs on the CPU,
        the card names graphs and onnxruntime can be imported; torch otherwise (CUDA, MPS).
        ``"onnx"`` always runs on the CPU. Without onnxruntime the engine runs torch and says
        so in :attr:`device_note`. Graphs are read from the bundle folder: an engine given
        ``model`` and ``card`` has graphs only when ``model_dir`` is given too. On the ONNX
        backend the bundle's torch weights are not loaded (nor torch imported) until a
        heat-map method other than the closed form, or :attr:`model`, is asked for.
    box_views : bool
        Average the logits of the card's views of a lesion box (:mod:`~rcdnet_desktop.core.
        box_views`; default). False classifies the box alone (how the card's views were
        chosen and measured against).

    Raises
    ------
    WeightsError
        The bundle, the localiser its card names, or (on the ONNX backend) an ONNX graph the
        card names, is missing or does not verify. There is no fallback to random weights and
        no silent switch to the other backend.
    ValueError
        An unknown device or backend, or ``backend="onnx"`` for a card without graphs.

    Notes
    -----
    Not thread safe: use one engine from one thread at a time (except :meth:`prepare`).
    If the GPU fails during a call (out of memory, driver error) the call is re-run on the CPU;
    its predictions then report device ``"cpu"`` and say so in their warnings.
    """

    def __init__(self, model_dir: str | Path | None = None, device: str | None = None, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, model: RcdNet | None = None,
                 card: ModelCard | None = None,
                 localiser: LesionLocaliser | None = None,
                 backend: str | None = None, box_views: bool = True,
                 profile: SiteProfile | None = None) -> None:
        if (model is None) != (card is None):
            raise ValueError("pass both model and card, or neither")
        if model is None and localiser is not None:
            raise ValueError("pass a localiser only with model and card")
        # Handed networks read the guard, lexicon and graphs from model_dir only when given.
        self.bundle = Bundle.open(model_dir) if card is None else Bundle(card, model_dir)
        card = self.bundle.card
        self.card: ModelCard = card
        self.batch_size = max(1, int(batch_size))
        self._bands = card_bands(card)
        self._fusion = default_mode(card) == "fusion"
        # The views of a box besides the box as given (the first): averaged with it.
        self._box_views = parse_views(card.box_views)[1:] if box_views else ()
        # Classify the lesion a user's box was drawn around rather than its edges.
        self._snap_min_iou = snap_min_iou(card.box_views) if box_views else None
        self._min_confidence = float(card.localiser.get("min_confidence",
                                                        DEFAULT_MIN_CONFIDENCE))
        self._has_localiser = bool(card.localiser) if model is None else localiser is not None
        self._runtime = Runtime(self.bundle, device, backend, has_localiser=self._has_localiser,
                                model=model, localiser=localiser)
        self.profile: SiteProfile | None = None
        self.use_profile(profile)

    def use_profile(self, profile: SiteProfile | None) -> None:
        """Apply a site profile (:mod:`~rcdnet_desktop.core.site_profile`), or None for the
        card's operating point: the profile's temperature, suspicious cut-off and guard limit,
        where it gives them, replace the card's for every later prediction and heat map.

        Raises
        ------
        ProfileError
            The profile was made for another model (version or classifier weights).
        """
        if profile is not None:
            check_model(profile, self.card)
        self.profile = profile
        self._temperature = float(profile.temperature if profile and profile.temperature
                                  else self.card.temperature)
        self._threshold = (profile.cutoff if profile and profile.cutoff is not None
                           else suspicious_threshold(self.card))
        # The cut-off as a logit difference: suspicious <=> logit_m - logit_b >= this.
        self._cutoff_logit = self._temperature * float(
            np.log(self._threshold / (1.0 - self._threshold)))
        self._guard = self.bundle.guard
        if self._guard is not None and profile is not None and profile.guard_limit is not None:
            self._guard = replace(self._guard, threshold=float(profile.guard_limit))

    @property
    def operating_point(self) -> OperatingPoint:
        """The operating point results are decided at: the card's, or the site profile's."""
        return OperatingPoint.from_card(self.card).with_profile(self.profile)

    # --- properties ----------------------------------------------------------------------

    @property
    def device_note(self) -> str:
        """Where the model runs when it is not where it was asked to run, and why, in words
        (a GPU that could not be used, ONNX Runtime missing); "" when it is."""
        return self._runtime.note

    @property
    def device(self) -> str:
        """Where the model runs: ``"cpu-onnx"`` (ONNX Runtime on the CPU), or torch's device:
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``."""
        return self._runtime.classifier.device

    @property
    def device_name(self) -> str:
        """The device in words for display when it is not torch's: ``""`` on the torch
        backend (callers name torch devices themselves)."""
        if self._runtime.name != "onnx":
            return ""
        return "GPU (ONNX Runtime)" if self.device == ONNX_CUDA_DEVICE else "CPU (ONNX Runtime)"

    @property
    def backend(self) -> str:
        """``"onnx"`` or ``"torch"``: what runs the classifier's forward pass."""
        return self._runtime.name

    @property
    def model(self) -> RcdNet:
        """The torch model on its device (the CPU on the ONNX backend), in eval mode.

        On the ONNX backend the first access loads the bundle's torch weights (imports torch).
        """
        return self._runtime.torch().model

    @property
    def model_version(self) -> str:
        return self.card.version

    @property
    def untrained(self) -> bool:
        return bool(self.card.untrained)

    @property
    def localiser(self) -> LesionLocaliser | None:
        """The torch lesion localiser (on its device, in eval mode), or None when there is none.

        On the ONNX backend the first access loads the torch weights; to ask only whether the
        engine has a localiser, use :attr:`has_localiser`.
        """
        return self._runtime.torch().localiser if self._has_localiser else None

    @property
    def has_localiser(self) -> bool:
        """Whether the engine finds lesion boxes automatically (the bundle has a localiser)."""
        return self._has_localiser

    @property
    def fusion(self) -> bool:
        """Whether automatic boxes are fused with the whole image (card's default_mode)."""
        return self._fusion

    @property
    def methods(self) -> dict[str, str]:
        """Heat-map method keys accepted by :meth:`explain`, with display labels."""
        return dict(METHOD_LABELS)

    # --- preparing -----------------------------------------------------------------------

    def prepare(self, image: ImageInput, roi: RoiInput = None, frame: int = 0,
                auto_box: bool = True) -> Prepared:
        """Decode the frame, run the intended-use checks, choose the box, crop it and preprocess.

        The box: ``roi`` when given (``box_source="user"``); otherwise, with ``auto_box`` and a
        lesion localiser, the lesion box the localiser finds on the whole frame
        (``box_source="auto"``), or the whole image with a warning when it finds none with the
        card's ``min_confidence``; otherwise the whole image (``box_source="none"``). The box
        is padded by the card's ``roi_margin`` and clipped before it is cropped; so is each of
        the card's other views of it (``box_views``), whose logits are averaged with its own.
        With the card's ``box_views.snap_min_iou`` and a localiser, a user's box is replaced
        for classification by the lesion region the localiser outlines around it, when their
        boxes overlap that much (the result's ``box`` stays the user's; its ``roi`` shows what
        was classified).

        The checks (:func:`~rcdnet_desktop.core.checks.check_image`) run on the whole frame and,
        when a box is used, on the box too (those warnings start with "lesion box: ").

        Safe to call from worker threads: it reads the model card and, for an automatic box,
        runs the lesion localiser, which is only read (eval mode, under
        ``torch.inference_mode``; no hooks) and is not the classifier that the engine's other
        methods run.

        Raises
        ------
        InferenceError
            Bad frame index, bad region of interest or unsupported pixel data.
        """
        pixels = _frame_pixels(image, frame)
        if not isinstance(pixels, np.ndarray) or pixels.ndim not in (2, 3) or pixels.size == 0:
            raise InferenceError("the pixel data is not a 2-D greyscale or colour image")
        if pixels.dtype != np.uint8:
            raise InferenceError(f"expected uint8 pixels, got {pixels.dtype}")
        hw = (int(pixels.shape[0]), int(pixels.shape[1]))

        def view(crop: np.ndarray) -> np.ndarray:
            try:
                return preprocess(crop, self.card.preprocessing)
            except ValueError as exc:
                raise InferenceError(f"cannot preprocess the image: {exc}") from exc

        given: Box | None = None
        finding: LesionFinding | None = None
        whole: np.ndarray | None = None
        notes: list[str] = []
        lesion: Box | None = None  # the box classified (unpadded), when not the given one
        if roi is not None:
            source = "user"
            box = pad_roi(roi, hw, self.card.roi_margin)  # validates the box first
            given = roi if isinstance(roi, Box) else Box(*(int(v) for v in roi))
            if self._snap_min_iou is not None and self._has_localiser:
                whole = view(pixels)
                lesion, notes = self._lesion_in_box(whole, hw, given)
                if lesion is not None:
                    box = pad_roi(lesion, hw, self.card.roi_margin)
        elif auto_box and self._has_localiser:
            whole = view(pixels)
            finding, notes = self._localise(whole, hw)
            if finding is not None:
                source, given = "auto", finding.box
                box = pad_roi(given, hw, self.card.roi_margin)
            else:
                source, box = "none", None
                notes.insert(0, NO_LESION_WARNING)
        else:
            source, box = "none", None
        region = crop(pixels, box)
        tensor = whole if box is None and whole is not None else view(region)
        flags = (check_record(image) if isinstance(image, ImageRecord) else ()) \
            + check_image(pixels)
        warnings = [f.text for f in flags]
        if box is not None:  # what is classified is the box: check it too (words only)
            warnings += [f"lesion box: {f.text}" for f in check_box_region(region)
                         if f.text not in warnings]
        warnings += notes
        if isinstance(image, ImageRecord):
            warnings += image.notes  # what the reader assumed (e.g. greyscale, no encoding given)
        if self.card.untrained:
            warnings.append(UNTRAINED_WARNING.format(version=self.card.version))
        fuse = source == "auto" and self._fusion
        if box is not None and whole is None and self.bundle.guard is not None:
            whole = view(pixels)  # the guard judges the whole image
        classified = lesion or given
        views = None
        if classified is not None and self._box_views:
            views = np.stack([view(crop(pixels, pad_roi(b, hw, self.card.roi_margin)))
                              for b in view_boxes(classified, self._box_views, hw)])
        return Prepared(tensor, hw, box, frame, tuple(warnings), box=given, box_source=source,
                        finding=finding, whole=whole if box is not None else None, fuse=fuse,
                        checks=codes(flags), views=views, classified=classified)

    def _localise(self, whole: np.ndarray,
                  hw: tuple[int, int]) -> tuple[LesionFinding | None, list[str]]:
        """Run the localiser on the whole-image view: its finding (or None) and notes."""
        prob, notes = self._runtime.localiser.lesion_probability(whole)
        return find_lesion(prob, hw, self._min_confidence), notes

    def _lesion_in_box(self, whole: np.ndarray, hw: tuple[int, int],
                       box: Box) -> tuple[Box | None, list[str]]:
        """The lesion region the localiser outlines around a drawn box (or None), and notes."""
        prob, notes = self._runtime.localiser.lesion_probability(whole)
        return lesion_in_box(prob, hw, box, self._snap_min_iou, self._min_confidence), notes

    # --- running -------------------------------------------------------------------------

    def last_features(self, items: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
        """What the closed-form heat maps are made of, for measuring them.

        Returns
        -------
        (np.ndarray, np.ndarray, np.ndarray)
            The items' logits ``(N, K)`` (averaged over the views of the box and fused where
            the item is, before the temperature), their own views' last feature maps
            ``(N, C, h, w)``, and the final linear layer's weight ``(K, C)``.
        """
        logits, feats = [], []
        for chunk in self._chunks(list(items)):
            batch, layout = batch_views(chunk)
            fwd = self._runtime.classifier.forward(batch, True)
            logits.append(combine(fwd.logits, chunk, layout)[0])
            feats.append(fwd.features[:len(chunk)])
        return np.concatenate(logits), np.concatenate(feats), self._runtime.classifier.head_weight()

    def cutoff_margin(self, logits: np.ndarray) -> np.ndarray:
        """``logit_m - logit_b`` minus the card's cut-off in logit units (``T log(t/(1-t))``)
        for logits ``(N, 2)``: >= 0 exactly where the result is suspicious."""
        lg = np.asarray(logits, dtype=np.float64)
        return lg[:, 1] - lg[:, 0] - self._cutoff_logit

    def _predictions(self, items: Sequence[Prepared], logits: np.ndarray,
                     per_view: list[np.ndarray | None], fwd: Forward,
                     layout: Layout) -> list[Prediction]:
        """Predictions from the chunk's combined logits and per-view logits
        (:func:`~rcdnet_desktop.core.model.fuse.combine`) and its forward pass (one row per
        batch entry, laid out as ``layout`` says): the guard judges the whole images, the
        lexicon describes the lesion boxes."""
        pooled = fwd.guard
        guard = whole_rows(pooled, len(items), layout.whole)
        temperature = np.float32(self._temperature)
        probs = softmax(logits / temperature)
        notes = ((self.device_note,) if self.device_note else ()) + fwd.notes
        distances = self._guard.distance(guard) if self._guard is not None else None
        out = []
        for i, (it, p, pv) in enumerate(zip(items, probs, per_view, strict=True)):
            warnings, checks = it.warnings, it.checks
            p_range = None
            if pv is not None:
                pm = softmax(pv / temperature)[:, 1]
                p_range = (float(pm.min()), float(pm.max()))
            flag = self._guard.flag(float(distances[i])) if distances is not None else None
            if flag is not None:
                warnings = (flag.text, *warnings)
                checks = tuple(c for c in CHECK_CODES if c in {*checks, flag.code})
            descriptors, note = suggest(self.bundle.lexicon, pooled[i], has_box=it.roi is not None,
                                        checks=checks)
            out.append(Prediction(
                descriptors=descriptors, descriptor_note=note,
                p_benign=float(p[0]), p_malignant=float(p[1]), device=fwd.device,
                model_version=self.card.version, untrained=self.untrained, roi=it.roi,
                frame=it.frame, warnings=warnings + notes, box=it.box,
                box_source=it.box_source, finding=it.finding, fused=it.fuse,
                band=band_for(float(p[1]), bands=self._bands),
                suspicious=bool(p[1] >= self._threshold), threshold=self._threshold,
                checks=checks, box_p_range=p_range,
                lesion_region=it.classified if it.classified != it.box else None,
                logits=(float(logits[i, 0]), float(logits[i, 1])),
                guard_distance=float(distances[i]) if distances is not None else None))
        return out

    def _chunks(self, items: Sequence[Prepared]):
        for i in range(0, len(items), self.batch_size):
            yield items[i:i + self.batch_size]

    def guard_features(self, items: Sequence[Prepared]) -> np.ndarray:
        """The input guard's features ``(N, D)`` of each item's whole-image view (what
        :mod:`~rcdnet_desktop.core.guard` measures; the training package fits the guard on
        them)."""
        return self._pooled_features(items, whole=True)

    def box_features(self, items: Sequence[Prepared]) -> np.ndarray:
        """The same pooled features ``(N, D)`` of each item's own view: the padded lesion box
        that was classified (what :mod:`~rcdnet_desktop.core.lexicon` describes; the training
        package fits the lexicon on them)."""
        return self._pooled_features(items, whole=False)

    def _pooled_features(self, items: Sequence[Prepared], whole: bool) -> np.ndarray:
        rows = []
        for chunk in self._chunks(list(items)):
            batch, layout = batch_views(chunk, with_views=False)
            pooled = self._runtime.classifier.forward(batch, False).guard
            rows.append(whole_rows(pooled, len(chunk), layout.whole) if whole
                        else pooled[:len(chunk)])
        return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)

    def predict_prepared(self, items: Sequence[Prepared]) -> list[Prediction]:
        """Classify prepared images, up to ``batch_size`` per forward pass (an item's whole-image
        view and the other views of its box go through the same pass)."""
        out: list[Prediction] = []
        for chunk in self._chunks(list(items)):
            batch, layout = batch_views(chunk)
            fwd = self._runtime.classifier.forward(batch, False)
            fused, per_view = combine(fwd.logits, chunk, layout)
            out.extend(self._predictions(chunk, fused, per_view, fwd, layout))
        return out

    def explain_prepared(self, items: Sequence[Prepared], method: str = FAST) -> list[HeatMaps]:
        """Predictions and both classes' heat maps for prepared images.

        With ``method="fast"`` the maps come from the same batched forward pass as the
        predictions (:func:`~rcdnet_desktop.core.model.explain.decision_evidence`): the classified
        view's cells, relative to the card's cut-off, both maps on one scale; a fused
        prediction's maps are its box view's cells with the whole image's share of the
        decision spread evenly over them. Other methods (see
        :data:`~rcdnet_desktop.core.model.explain.GRADCAM_METHODS`) run pytorch-grad-cam image by
        image for the targets ``logit_m - logit_b`` and its opposite, each map normalised to
        its own maximum. A prediction averaged over views of its box (the card's
        ``box_views``) has the maps of the box as given, relative to the averaged decision.
        """
        if method != FAST and method not in GRADCAM_METHODS:
            raise InferenceError(f"unknown heat-map method {method!r}; choose from "
                                 f"{', '.join(METHOD_LABELS)}")
        if method != FAST:
            require_torch(f"the heat-map method {METHOD_LABELS[method]!r}")
        size = self.card.preprocessing.size
        out: list[HeatMaps] = []
        for chunk in self._chunks(list(items)):
            batch, layout = batch_views(chunk)
            fwd = self._runtime.classifier.forward(batch, method == FAST)
            fused, per_view = combine(fwd.logits, chunk, layout)
            preds = self._predictions(chunk, fused, per_view, fwd, layout)
            if method == FAST:
                scores = contrastive_scores(fwd.features[:len(chunk)],
                                            self._runtime.classifier.head_weight())
                margins = self.cutoff_margin(fused)
            for i, (it, pred) in enumerate(zip(chunk, preds, strict=True)):
                if method == FAST:
                    # The as-given view stands for all the views of its box (the same lesion
                    # scaled a little): its share is the box's, as without views.
                    maps = decision_evidence(scores[i], margins[i], size,
                                             share=0.5 if it.fuse else 1.0)
                else:
                    maps, dev2, extra2 = self._runtime.torch().gradcam(batch[i:i + 1], method)
                    if extra2:  # the torch model fell back to the CPU
                        pred = replace(pred, device=dev2, warnings=pred.warnings + extra2)
                out.append(HeatMaps(benign=to_image_size(maps[0], it.image_hw, it.roi),
                                    malignant=to_image_size(maps[1], it.image_hw, it.roi),
                                    method=method, prediction=pred))
        return out

    def predict(self, image: ImageInput, roi: RoiInput = None, frame: int = 0,
                auto_box: bool = True) -> Prediction:
        """Classify one image (or its lesion box): calibrated probabilities of both classes.

        Parameters
        ----------
        image : ImageRecord or np.ndarray
            uint8 grey, RGB or RGBA pixels, or a record (multi-frame records use ``frame``).
        roi : Box or (x, y, w, h), optional
            Lesion box in image pixels; padded by the card's ``roi_margin`` and clipped.
        frame : int
            Frame of a multi-frame image (default the first).
        auto_box : bool
            Without ``roi``, let the lesion localiser (when the bundle has one) find the box.

        Returns
        -------
        Prediction
            Probabilities ``softmax(logits / temperature)``, device, model version, untrained
            flag, the padded box used, the box as given or found and its source, the frame,
            the likelihood band, the suspicious flag and the warnings.

        Raises
        ------
        InferenceError
            Bad frame, region of interest or pixel data.
        """
        return self.predict_prepared([self.prepare(image, roi, frame, auto_box)])[0]

    def explain(self, image: ImageInput, roi: RoiInput = None, frame: int = 0,
                method: str = FAST, auto_box: bool = True) -> HeatMaps:
        """Prediction and heat maps of the evidence for both classes, at the image's size.

        ``method="fast"`` (default) is the closed-form contrastive Grad-CAM from the
        prediction's own forward pass, relative to the card's cut-off and with both maps on one
        scale (:func:`~rcdnet_desktop.core.model.explain.decision_evidence`); any key of
        :data:`~rcdnet_desktop.core.model.explain.GRADCAM_METHODS` runs pytorch-grad-cam instead.
        Maps are float32 in [0, 1], shaped like the frame; with a region of interest (given or
        automatic) they are zero outside the padded box.
        """
        return self.explain_prepared([self.prepare(image, roi, frame, auto_box)], method)[0]

    def predict_many(self, images: Sequence[ImageInput],
                     rois: Sequence[RoiInput] | None = None,
                     frames: Sequence[int] | None = None,
                     auto_box: bool = True) -> list[Prediction]:
        """Classify several images, batching them through the model.

        Raises on the first image that cannot be prepared; to record per-image failures,
        call :meth:`prepare` per image and :meth:`predict_prepared` on the ones that worked.
        """
        return self.predict_prepared(self._prepare_all(images, rois, frames, auto_box))

    def explain_many(self, images: Sequence[ImageInput],
                     rois: Sequence[RoiInput] | None = None,
                     frames: Sequence[int] | None = None, method: str = FAST,
                     auto_box: bool = True) -> list[HeatMaps]:
        """:meth:`explain` for several images, batched (see :meth:`predict_many`)."""
        return self.explain_prepared(self._prepare_all(images, rois, frames, auto_box), method)

    def _prepare_all(self, images, rois, frames, auto_box: bool = True) -> list[Prepared]:
        n = len(images)
        rois = [None] * n if rois is None else list(rois)
        frames = [0] * n if frames is None else list(frames)
        if len(rois) != n or len(frames) != n:
            raise ValueError("images, rois and frames must have the same length")
        return [self.prepare(im, r, f, auto_box)
                for im, r, f in zip(images, rois, frames, strict=True)]
