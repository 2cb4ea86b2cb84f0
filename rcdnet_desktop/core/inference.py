"""InferenceEngine: device choice, prediction and heat maps for one image or many.

Typical use::

    engine = InferenceEngine()                 # bundled weights, CUDA > MPS > CPU
    pred = engine.predict(record)              # Prediction
    maps = engine.explain(record, roi=box)     # HeatMaps (both classes) + its Prediction

Images are :class:`~rcdnet_desktop.core.types.ImageRecord` objects or uint8 arrays (``(H, W)``
grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA). A region of interest is a
:class:`~rcdnet_desktop.core.types.Box` (or an ``(x, y, w, h)`` tuple) in image pixels: it is
padded by the model card's ``roi_margin`` on each side, clipped to the image, cropped and
classified; heat maps still come back at the full image's size, zero outside the box.

Throughput: :meth:`InferenceEngine.predict_many` and :meth:`InferenceEngine.explain_many` run
several images in one forward pass. To overlap decoding and preprocessing with the model, call
:meth:`InferenceEngine.prepare` on worker threads (it never touches the model) and hand the
:class:`Prepared` items to :meth:`InferenceEngine.predict_prepared` or
:meth:`InferenceEngine.explain_prepared` on the one thread that runs the model.

Thread safety: an engine is NOT thread safe. Apart from :meth:`~InferenceEngine.prepare`, call
it from one thread at a time (pytorch-grad-cam's hooks mutate the model while a map is computed).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rcdnet_desktop.core.errors import InferenceError
from rcdnet_desktop.core.explain import (
    FAST,
    GRADCAM_METHODS,
    METHOD_LABELS,
    closed_form_cams,
    gradcam_like_normalise,
    gradcam_maps,
    to_image_size,
)
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, Prediction

if TYPE_CHECKING:
    import torch

    from rcdnet_desktop.core.model import RcdNet
    from rcdnet_desktop.core.weights import ModelCard

DEVICE_ENV = "RCDNET_DEVICE"
"""Environment variable overriding the device: auto, cpu, cuda (or cuda:N) or mps."""
DEFAULT_BATCH_SIZE = 16

ImageInput = ImageRecord | np.ndarray
RoiInput = Box | tuple[int, int, int, int] | None

UNTRAINED_WARNING = ("UNTRAINED weights (model {version}): this placeholder model was never "
                     "trained on ultrasound; its output is arbitrary and must not be used")


def resolve_device(requested: str | None = None) -> tuple[torch.device, str]:
    """Pick the device: argument, else ``$RCDNET_DEVICE``, else auto (CUDA > MPS > CPU).

    Returns
    -------
    (torch.device, str)
        The device and a note for the user, empty unless the request could not be honoured
        (e.g. ``cuda`` asked for on a machine without a usable GPU, which falls back to CPU).

    Raises
    ------
    ValueError
        For a device name that is not auto, cpu, cuda, cuda:N or mps.
    """
    import torch

    req = (requested or os.environ.get(DEVICE_ENV, "") or "auto").strip().lower()
    cuda_ok = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if req == "auto":
        if cuda_ok:
            return torch.device("cuda"), ""
        if mps_ok:
            return torch.device("mps"), ""
        return torch.device("cpu"), ""
    if req == "cpu":
        return torch.device("cpu"), ""
    if req == "mps":
        if mps_ok:
            return torch.device("mps"), ""
        return torch.device("cpu"), "Apple MPS was requested but is not available: using the CPU"
    if req == "cuda" or (req.startswith("cuda:") and req[5:].isdigit()):
        index = int(req[5:]) if ":" in req else 0
        if cuda_ok and index < torch.cuda.device_count():
            return torch.device(req), ""
        return torch.device("cpu"), (f"{req} was requested but no such GPU is available: "
                                     "using the CPU")
    raise ValueError(f"unknown device {req!r}: use auto, cpu, cuda, cuda:N or mps")


def _is_device_failure(exc: BaseException) -> bool:
    """True for errors that mean the GPU failed (out of memory, driver or runtime errors)."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    accel = getattr(torch, "AcceleratorError", None)
    if accel is not None and isinstance(exc, accel):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return any(s in text for s in ("cuda", "cudnn", "cublas", "driver", "mps", "hip",
                                       "out of memory", "device-side", "accelerator"))
    return False


@dataclass(frozen=True)
class Prepared:
    """One image ready for the model: what :meth:`InferenceEngine.prepare` returns.

    Attributes
    ----------
    tensor : torch.Tensor
        ``(3, s, s)`` float32 model input on the CPU.
    image_hw : (int, int)
        Height and width of the whole frame (heat maps come back at this size).
    roi : Box or None
        The padded, clipped box that was cropped, or None for the whole image.
    frame : int
        Frame index of a multi-frame image.
    warnings : tuple of str
        Intended-use warnings for the frame (and the untrained-weights warning).
    """

    tensor: torch.Tensor
    image_hw: tuple[int, int]
    roi: Box | None
    frame: int
    warnings: tuple[str, ...]


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


def pad_roi(roi: RoiInput, image_hw: tuple[int, int], margin: float) -> Box | None:
    """Pad a box by ``margin`` times its width (height) on each side and clip it to the image.

    Raises
    ------
    InferenceError
        A box with no area, or one that lies outside the image.
    """
    if roi is None:
        return None
    try:
        x, y, w, h = (roi.as_tuple() if isinstance(roi, Box) else tuple(roi))
        x, y, w, h = float(x), float(y), float(w), float(h)
    except (TypeError, ValueError) as exc:
        raise InferenceError(f"a region of interest must be (x, y, w, h), got {roi!r}") from exc
    if not (w > 0 and h > 0 and np.isfinite([x, y, w, h]).all()):
        raise InferenceError(f"the region of interest {roi!r} has no area")
    ih, iw = image_hw
    if x >= iw or y >= ih or x + w <= 0 or y + h <= 0:
        raise InferenceError(f"the region of interest {roi!r} lies outside the {iw}x{ih} image")
    x0 = max(0, int(np.floor(x - margin * w)))
    y0 = max(0, int(np.floor(y - margin * h)))
    x1 = min(iw, int(np.ceil(x + w + margin * w)))
    y1 = min(ih, int(np.ceil(y + h + margin * h)))
    return Box(x0, y0, x1 - x0, y1 - y0)


class InferenceEngine:
    """Runs the bundled RcdNet: predictions with calibrated probabilities, and heat maps.

    Parameters
    ----------
    model_dir : str or Path, optional
        Model bundle folder (see :mod:`rcdnet_desktop.core.weights`); the default bundle when
        omitted.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. When omitted,
        ``$RCDNET_DEVICE``, else auto: CUDA if available, else Apple MPS, else the CPU.
    batch_size : int
        Largest batch the ``*_many`` and ``*_prepared`` methods send through the model at once.
    model, card : optional
        An already loaded model and its card (tests, training evaluation); ``model_dir`` is
        ignored then. The model is put in eval mode; one on a GPU is copied to the CPU first.

    Raises
    ------
    WeightsError
        The bundle is missing or does not verify. There is no fallback to random weights.

    Notes
    -----
    Not thread safe: use one engine from one thread at a time (except :meth:`prepare`).
    If the GPU fails during a call (out of memory, driver error) the call is re-run on the CPU;
    its predictions then report device ``"cpu"`` and say so in their warnings.
    """

    def __init__(self, model_dir: str | Path | None = None, device: str | None = None, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, model: RcdNet | None = None,
                 card: ModelCard | None = None) -> None:
        import torch

        from rcdnet_desktop.core.weights import load_model

        if (model is None) != (card is None):
            raise ValueError("pass both model and card, or neither")
        if model is None:
            model, card = load_model(model_dir)
        assert card is not None
        self.card: ModelCard = card
        self.batch_size = max(1, int(batch_size))
        # The CPU copy stays loaded so a GPU failure can be re-run without touching the GPU.
        on_cpu = all(p.device.type == "cpu" for p in model.parameters())
        self._cpu_model: RcdNet = (model if on_cpu else copy.deepcopy(model).cpu()).eval()
        self._device, self.device_note = resolve_device(device)
        self._model: RcdNet = self._cpu_model
        if self._device.type != "cpu":
            try:
                self._model = copy.deepcopy(self._cpu_model).to(self._device).eval()
                with torch.inference_mode():  # fail now, not on the first image
                    self._model(torch.zeros(card.input_shape, device=self._device))
            except Exception as exc:
                if not _is_device_failure(exc):
                    raise
                self.device_note = (f"{self._device} could not be used ({_first_line(exc)}): "
                                    "using the CPU")
                self._device = torch.device("cpu")
                self._model = self._cpu_model

    # --- properties ----------------------------------------------------------------------

    @property
    def device(self) -> str:
        """The device the model runs on: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``."""
        return str(self._device)

    @property
    def model(self) -> RcdNet:
        """The model on :attr:`device`, in eval mode."""
        return self._model

    @property
    def model_version(self) -> str:
        return self.card.version

    @property
    def untrained(self) -> bool:
        return bool(self.card.untrained)

    @property
    def methods(self) -> dict[str, str]:
        """Heat-map method keys accepted by :meth:`explain`, with display labels."""
        return dict(METHOD_LABELS)

    # --- preparing -----------------------------------------------------------------------

    def prepare(self, image: ImageInput, roi: RoiInput = None, frame: int = 0) -> Prepared:
        """Decode the frame, run the intended-use checks, crop the padded box and preprocess.

        The checks (:func:`~rcdnet_desktop.core.checks.check_image`) run on the whole frame and,
        when a box is given, on the box too (those warnings start with "lesion box: ").

        Safe to call from worker threads: it reads only the model card.

        Raises
        ------
        InferenceError
            Bad frame index, bad region of interest or unsupported pixel data.
        """
        from rcdnet_desktop.core.checks import check_image
        from rcdnet_desktop.core.preprocess import preprocess

        pixels = _frame_pixels(image, frame)
        if not isinstance(pixels, np.ndarray) or pixels.ndim not in (2, 3) or pixels.size == 0:
            raise InferenceError("the pixel data is not a 2-D greyscale or colour image")
        if pixels.dtype != np.uint8:
            raise InferenceError(f"expected uint8 pixels, got {pixels.dtype}")
        hw = (int(pixels.shape[0]), int(pixels.shape[1]))
        box = pad_roi(roi, hw, self.card.roi_margin)
        crop = pixels if box is None else pixels[box.y:box.y + box.h, box.x:box.x + box.w]
        try:
            tensor = preprocess(crop, self.card.preprocessing)
        except ValueError as exc:
            raise InferenceError(f"cannot preprocess the image: {exc}") from exc
        warnings = list(check_image(pixels))
        if box is not None:  # what is classified is the box: check it too
            warnings += [f"lesion box: {w}" for w in check_image(crop) if w not in warnings]
        if self.card.untrained:
            warnings.append(UNTRAINED_WARNING.format(version=self.card.version))
        return Prepared(tensor, hw, box, frame, tuple(warnings))

    # --- running -------------------------------------------------------------------------

    def _forward(self, model: RcdNet, device: torch.device, batch: torch.Tensor,
                 with_cams: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward pass on ``device``: logits ``(B, K)`` and raw CAMs ``(B, K, h, w)``."""
        import torch

        with torch.inference_mode():
            x = batch.to(device, non_blocking=True)
            feats = model.forward_features(x)
            logits = model.fc(model.dropout(feats.mean((2, 3))))
            cams = closed_form_cams(feats, model.fc.weight) if with_cams else None
            return logits.float().cpu(), (cams.float().cpu() if cams is not None else None)

    def _gradcam(self, model: RcdNet, device: torch.device, x: torch.Tensor,
                 method: str) -> np.ndarray:
        """pytorch-grad-cam maps ``(K, s, s)`` for one input on ``device``."""
        return gradcam_maps(model, x.to(device), method)

    def _with_fallback(self, fn, *args):
        """Run ``fn(model, device, *args)`` on the engine's device; on a GPU failure re-run it
        on the CPU. Returns ``(result, device_name, extra_warnings)``."""
        import torch

        if self._device.type == "cpu":
            return fn(self._model, self._device, *args), "cpu", ()
        try:
            return fn(self._model, self._device, *args), str(self._device), ()
        except Exception as exc:
            if not _is_device_failure(exc):
                raise
            if self._device.type == "cuda":
                torch.cuda.empty_cache()
            note = (f"the GPU ({self._device}) failed: {_first_line(exc)}; this result was "
                    "computed on the CPU")
            return fn(self._cpu_model, torch.device("cpu"), *args), "cpu", (note,)

    def _predictions(self, items: Sequence[Prepared], logits: torch.Tensor, device: str,
                     extra: tuple[str, ...]) -> list[Prediction]:
        import torch

        probs = torch.softmax(logits / float(self.card.temperature), dim=1).numpy()
        notes = ((self.device_note,) if self.device_note else ()) + extra
        return [Prediction(p_benign=float(p[0]), p_malignant=float(p[1]), device=device,
                           model_version=self.card.version, untrained=self.untrained,
                           roi=it.roi, frame=it.frame, warnings=it.warnings + notes)
                for it, p in zip(items, probs, strict=True)]

    def _chunks(self, items: Sequence[Prepared]):
        for i in range(0, len(items), self.batch_size):
            yield items[i:i + self.batch_size]

    def predict_prepared(self, items: Sequence[Prepared]) -> list[Prediction]:
        """Classify prepared images, up to ``batch_size`` per forward pass."""
        import torch

        out: list[Prediction] = []
        for chunk in self._chunks(list(items)):
            batch = torch.stack([it.tensor for it in chunk])
            (logits, _), dev, extra = self._with_fallback(self._forward, batch, False)
            out.extend(self._predictions(chunk, logits, dev, extra))
        return out

    def explain_prepared(self, items: Sequence[Prepared], method: str = FAST) -> list[HeatMaps]:
        """Predictions and both classes' heat maps for prepared images.

        With ``method="fast"`` the maps come from the same batched forward pass as the
        predictions. Other methods (see :data:`~rcdnet_desktop.core.explain.GRADCAM_METHODS`)
        run pytorch-grad-cam image by image.
        """
        import torch

        if method != FAST and method not in GRADCAM_METHODS:
            raise InferenceError(f"unknown heat-map method {method!r}; choose from "
                                 f"{', '.join(METHOD_LABELS)}")
        size = self.card.preprocessing.size
        out: list[HeatMaps] = []
        for chunk in self._chunks(list(items)):
            batch = torch.stack([it.tensor for it in chunk])
            (logits, cams), dev, extra = self._with_fallback(self._forward, batch,
                                                             method == FAST)
            preds = self._predictions(chunk, logits, dev, extra)
            for i, (it, pred) in enumerate(zip(chunk, preds, strict=True)):
                if method == FAST:
                    maps = gradcam_like_normalise(cams[i].numpy(), size)
                else:
                    maps, dev2, extra2 = self._with_fallback(self._gradcam, batch[i:i + 1],
                                                             method)
                    if extra2:
                        pred = _with_device(pred, dev2, extra2)
                out.append(HeatMaps(benign=to_image_size(maps[0], it.image_hw, it.roi),
                                    malignant=to_image_size(maps[1], it.image_hw, it.roi),
                                    method=method, prediction=pred))
        return out

    def predict(self, image: ImageInput, roi: RoiInput = None, frame: int = 0) -> Prediction:
        """Classify one image (or its lesion box): calibrated probabilities of both classes.

        Parameters
        ----------
        image : ImageRecord or np.ndarray
            uint8 grey, RGB or RGBA pixels, or a record (multi-frame records use ``frame``).
        roi : Box or (x, y, w, h), optional
            Lesion box in image pixels; padded by the card's ``roi_margin`` and clipped.
        frame : int
            Frame of a multi-frame image (default the first).

        Returns
        -------
        Prediction
            Probabilities ``softmax(logits / temperature)``, device, model version, untrained
            flag, the padded box used, the frame and the warnings.

        Raises
        ------
        InferenceError
            Bad frame, region of interest or pixel data.
        """
        return self.predict_prepared([self.prepare(image, roi, frame)])[0]

    def explain(self, image: ImageInput, roi: RoiInput = None, frame: int = 0,
                method: str = FAST) -> HeatMaps:
        """Prediction and heat maps of the evidence for both classes, at the image's size.

        ``method="fast"`` (default) is the closed-form Grad-CAM from the prediction's own
        forward pass; any key of :data:`~rcdnet_desktop.core.explain.GRADCAM_METHODS` runs
        pytorch-grad-cam instead. Maps are float32 in [0, 1], shaped like the frame; with a
        region of interest they are zero outside the padded box.
        """
        return self.explain_prepared([self.prepare(image, roi, frame)], method)[0]

    def predict_many(self, images: Sequence[ImageInput],
                     rois: Sequence[RoiInput] | None = None,
                     frames: Sequence[int] | None = None) -> list[Prediction]:
        """Classify several images, batching them through the model.

        Raises on the first image that cannot be prepared; to record per-image failures,
        call :meth:`prepare` per image and :meth:`predict_prepared` on the ones that worked.
        """
        return self.predict_prepared(self._prepare_all(images, rois, frames))

    def explain_many(self, images: Sequence[ImageInput],
                     rois: Sequence[RoiInput] | None = None,
                     frames: Sequence[int] | None = None, method: str = FAST) -> list[HeatMaps]:
        """:meth:`explain` for several images, batched (see :meth:`predict_many`)."""
        return self.explain_prepared(self._prepare_all(images, rois, frames), method)

    def _prepare_all(self, images, rois, frames) -> list[Prepared]:
        n = len(images)
        rois = [None] * n if rois is None else list(rois)
        frames = [0] * n if frames is None else list(frames)
        if len(rois) != n or len(frames) != n:
            raise ValueError("images, rois and frames must have the same length")
        return [self.prepare(im, r, f) for im, r, f in zip(images, rois, frames, strict=True)]


def _with_device(pred: Prediction, device: str, extra: tuple[str, ...]) -> Prediction:
    from dataclasses import replace

    return replace(pred, device=device, warnings=pred.warnings + extra)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
