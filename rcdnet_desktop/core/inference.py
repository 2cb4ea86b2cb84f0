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

Backends: on the CPU the engine runs the bundle's ONNX graphs (classifier and localiser) in
ONNX Runtime by default (device ``"cpu-onnx"``); the closed-form heat maps then come from the
graph's feature map and the classifier's linear weight (read from the verified graph) in
numpy, and torch is not imported at all. On CUDA/MPS, with ``backend="torch"`` or
``$RCDNET_BACKEND=torch``, or without onnxruntime, torch runs them. Heat-map methods other than
the closed form always run on the torch model, which is loaded (and torch imported) the first
time one is asked for; torch is an optional extra (``pip install 'rcdnet-desktop[torch]'``).

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

import copy
import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rcdnet_desktop.core.bands import band_for, card_bands, default_mode, suspicious_threshold
from rcdnet_desktop.core.box_views import parse_views, snap_min_iou, view_boxes
from rcdnet_desktop.core.errors import InferenceError
from rcdnet_desktop.core.explain import (
    FAST,
    GRADCAM_METHODS,
    METHOD_LABELS,
    contrastive_scores,
    decision_evidence,
    to_image_size,
)
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.preprocess import crop, pad_roi, preprocess
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, LesionFinding, Prediction

if TYPE_CHECKING:
    import torch

    from rcdnet_desktop.core.card import ModelCard
    from rcdnet_desktop.core.localiser import LesionLocaliser
    from rcdnet_desktop.core.model import RcdNet
    from rcdnet_desktop.core.site_profile import SiteProfile

DEVICE_ENV = "RCDNET_DEVICE"
"""Environment variable overriding the device: auto, cpu, cuda (or cuda:N) or mps."""
BACKEND_ENV = "RCDNET_BACKEND"
"""Environment variable choosing the backend: auto, onnx or torch."""
BACKENDS = ("auto", "onnx", "torch")
ONNX_DEVICE = "cpu-onnx"
"""What :attr:`InferenceEngine.device` reports when the networks run in ONNX Runtime."""
DEFAULT_BATCH_SIZE = 16

ImageInput = ImageRecord | np.ndarray
RoiInput = Box | tuple[int, int, int, int] | None

UNTRAINED_WARNING = ("UNTRAINED weights (model {version}): this placeholder model was never "
                     "trained on ultrasound; its output is arbitrary and must not be used")
NO_LESION_WARNING = ("no lesion found with confidence by the automatic localiser: the whole "
                     "image was classified")
TORCH_MISSING = ("{what} needs PyTorch, which is not installed. Install the optional extra "
                 "with: pip install 'rcdnet-desktop[torch]' (the default closed-form heat maps "
                 "and the CPU run without it)")


def torch_available() -> bool:
    """Whether torch can be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def _require_torch(what: str) -> None:
    """Raise :class:`InferenceError` in plain words when ``what`` needs torch and it is absent."""
    if "torch" not in sys.modules and not torch_available():
        raise InferenceError(TORCH_MISSING.format(what=what))


def _gpu_may_exist() -> bool:
    """A cheap guess, without importing torch, whether this machine might have a GPU torch can
    use: an NVIDIA or AMD driver, or Apple silicon. False means auto picks the CPU at once."""
    if sys.platform == "darwin":
        import platform

        return platform.machine() == "arm64"
    if sys.platform.startswith("win"):
        import ctypes.util

        return ctypes.util.find_library("nvcuda") is not None
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd"))


def _device_type(device) -> str:
    """``"cpu"``, ``"cuda"``, ``"mps"`` ... of a torch.device, or ``"cpu"`` for None (the ONNX
    backend, which never creates a torch device)."""
    return "cpu" if device is None else device.type


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


def resolve_backend(requested: str | None = None) -> str:
    """The backend asked for: argument, else ``$RCDNET_BACKEND``, else ``"auto"``.

    Raises
    ------
    ValueError
        For a name that is not auto, onnx or torch.
    """
    req = (requested or os.environ.get(BACKEND_ENV, "") or "auto").strip().lower()
    if req not in BACKENDS:
        raise ValueError(f"unknown backend {req!r}: use auto, onnx or torch")
    return req


def _onnxruntime_missing() -> str:
    """Why onnxruntime cannot be imported, or "" when it can."""
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means: no ONNX Runtime
        return _first_line(exc)
    return ""


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


@dataclass(frozen=True)
class _Layout:
    """Where a chunk's views sit in its forward batch (after the items' own rows).

    Attributes
    ----------
    whole : list of int
        Chunk indices of the items with a whole-image view; those views follow the items' own
        rows in this order.
    views : list of slice
        Per item, the batch rows of its box's other views (empty slices for none).
    """

    whole: list[int]
    views: list[slice]


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
        Model bundle folder (see :mod:`rcdnet_desktop.core.card`); the default bundle when
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
        from rcdnet_desktop.core.card import DEFAULT_MIN_CONFIDENCE, load_card

        if (model is None) != (card is None):
            raise ValueError("pass both model and card, or neither")
        requested_backend = resolve_backend(backend)
        bundle_dir = model_dir  # where the ONNX graphs are read from (None: no graphs)
        # The torch networks on the CPU; loaded lazily from the bundle on the ONNX backend.
        self._cpu_model: RcdNet | None = None
        self._cpu_localiser: LesionLocaliser | None = None
        self._weights_dir: str | Path | None = None  # set when the torch weights load lazily
        if model is None:
            from rcdnet_desktop.core.card import default_model_dir

            bundle_dir = model_dir if model_dir is not None else default_model_dir()
            if localiser is not None:
                raise ValueError("pass a localiser only with model and card")
            card = load_card(bundle_dir)
            self._weights_dir = bundle_dir
            self._has_localiser = bool(card.localiser)
        else:
            self._has_localiser = localiser is not None
        assert card is not None
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
        self._device = None  # a torch.device once torch runs anything; None: the CPU, no torch
        self.device_note = ""
        if model is not None or not self._cpu_without_torch(device, requested_backend):
            _require_torch("running the model on a GPU or in PyTorch")
            self._device, self.device_note = resolve_device(device)
        self._backend = self._choose_backend(requested_backend, bundle_dir)
        self._model: RcdNet | None = None
        self._localiser: LesionLocaliser | None = None
        self._localiser_device = None
        if model is not None:
            self._adopt_torch(model, localiser)
        elif self._backend == "torch":
            self._load_torch()
        if self._backend == "torch" and _device_type(self._device) != "cpu":
            self._move_to_gpu()
        self._onnx_classifier = None
        self._onnx_localiser = None
        self._fc_weight: np.ndarray | None = None
        if self._backend == "onnx":
            self._open_onnx(bundle_dir)
        self._guard = None
        if card.guard and bundle_dir is not None:
            from rcdnet_desktop.core.guard import load_guard

            self._guard = load_guard(Path(bundle_dir), card.guard)
        self._lexicon = None
        if card.lexicon and bundle_dir is not None:
            from rcdnet_desktop.core.lexicon import load_lexicon

            self._lexicon = load_lexicon(Path(bundle_dir), card.lexicon)
        self._card_guard = self._guard
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
        from dataclasses import replace

        from rcdnet_desktop.core.site_profile import check_model

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
        self._guard = self._card_guard
        if self._guard is not None and profile is not None and profile.guard_limit is not None:
            self._guard = replace(self._guard, threshold=float(profile.guard_limit))

    @property
    def operating_point(self) -> OperatingPoint:
        """The operating point results are decided at: the card's, or the site profile's."""
        return OperatingPoint.from_card(self.card).with_profile(self.profile)

    @staticmethod
    def _cpu_without_torch(device: str | None, backend: str) -> bool:
        """True when the request surely means the CPU, so no torch device is needed to tell:
        ``cpu``, or auto on a machine without a sign of a GPU (or without torch at all)."""
        if backend == "torch":
            return False
        req = (device or os.environ.get(DEVICE_ENV, "") or "auto").strip().lower()
        if req == "cpu":
            return True
        return req == "auto" and (not torch_available() or not _gpu_may_exist())

    def _adopt_torch(self, model: RcdNet, localiser: LesionLocaliser | None) -> None:
        """Keep CPU copies of the torch networks, in eval mode."""
        import torch

        on_cpu = all(p.device.type == "cpu" for p in model.parameters())
        # The CPU copy stays loaded so a GPU failure can be re-run without touching the GPU.
        self._cpu_model = (model if on_cpu else copy.deepcopy(model).cpu()).eval()
        self._model = self._cpu_model
        if localiser is not None:
            on_cpu = all(p.device.type == "cpu" for p in localiser.parameters())
            self._cpu_localiser = (localiser if on_cpu
                                   else copy.deepcopy(localiser).cpu()).eval()
            self._localiser = self._cpu_localiser
        if self._device is None:
            self._device = torch.device("cpu")
        self._localiser_device = torch.device("cpu")

    def _load_torch(self) -> None:
        """Load and verify the bundle's torch weights (imports torch), once."""
        if self._cpu_model is not None:
            return
        _require_torch("this heat-map method (or the PyTorch backend)")
        from rcdnet_desktop.core.bundle import load_localiser, load_model
        from rcdnet_desktop.core.errors import WeightsError

        model, card = load_model(self._weights_dir)
        if card != self.card:
            raise WeightsError(f"the model card in {self._weights_dir} changed after the "
                               "engine was created: create the engine again")
        self._adopt_torch(model, load_localiser(self._weights_dir, card))

    def _move_to_gpu(self) -> None:
        """Copy the torch networks to the engine's GPU; back to the CPU with a note if it fails."""
        import torch

        assert self._cpu_model is not None
        try:
            self._model = copy.deepcopy(self._cpu_model).to(self._device).eval()
            with torch.inference_mode():  # fail now, not on the first image
                self._model(torch.zeros(self.card.input_shape, device=self._device))
        except Exception as exc:
            if not _is_device_failure(exc):
                raise
            self.device_note = (f"{self._device} could not be used ({_first_line(exc)}): "
                                "using the CPU")
            self._device = torch.device("cpu")
            self._model = self._cpu_model
            return
        if self._cpu_localiser is not None:
            try:
                self._localiser = copy.deepcopy(self._cpu_localiser).to(self._device).eval()
                self._localiser_device = self._device
            except Exception as exc:
                if not _is_device_failure(exc):
                    raise
                self._localiser = self._cpu_localiser  # the classifier keeps its GPU

    def _choose_backend(self, requested: str, bundle_dir: str | Path | None) -> str:
        """``"onnx"`` or ``"torch"`` for the requested backend; may add to :attr:`device_note`."""
        has_graphs = bundle_dir is not None and bool(self.card.onnx.get("classifier"))
        on_cpu = _device_type(self._device) == "cpu"
        if requested == "torch":
            return "torch"
        if requested == "auto" and (not has_graphs or not on_cpu):
            return self._torch_backend("the model card names no ONNX graphs")
        if not has_graphs:
            raise ValueError("the ONNX backend needs the model card's ONNX graphs and the "
                             "bundle folder that holds them (model_dir)")
        missing = _onnxruntime_missing()
        if missing:
            backend = self._torch_backend(f"ONNX Runtime is not available ({missing})")
            self._add_note(f"ONNX Runtime is not available ({missing}): the model runs in "
                           "PyTorch instead")
            return backend
        if not on_cpu:
            self._add_note(f"the ONNX backend runs on the CPU: {self._device} is not used")
            import torch

            self._device = torch.device("cpu")
        return "onnx"

    def _torch_backend(self, why: str) -> str:
        """``"torch"``, creating the torch device if none was needed so far."""
        if self._device is None:
            _require_torch(f"running the model ({why})")
            self._device = resolve_device("cpu")[0]
        return "torch"

    def _add_note(self, note: str) -> None:
        self.device_note = f"{self.device_note}; {note}" if self.device_note else note

    def _open_onnx(self, bundle_dir: str | Path | None) -> None:
        """Open the ONNX sessions (sha256-verified; WeightsError when a graph does not verify)."""
        from rcdnet_desktop.core.bundle import classifier_fc_weight, load_onnx_session

        self._onnx_classifier = load_onnx_session(bundle_dir, self.card, "classifier")
        if self._has_localiser:
            if self.card.onnx.get("localiser"):
                self._onnx_localiser = load_onnx_session(bundle_dir, self.card, "localiser")
            elif self._cpu_localiser is None:  # no graph of the localiser: torch runs it
                self._load_torch()
        # The closed-form maps need the final linear layer's weight: read from the verified
        # graph itself, so the ONNX backend never needs the torch weights.
        self._fc_weight = classifier_fc_weight(bundle_dir, self.card)

    # --- properties ----------------------------------------------------------------------

    @property
    def device(self) -> str:
        """Where the model runs: ``"cpu-onnx"`` (ONNX Runtime on the CPU), or torch's device:
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``."""
        return ONNX_DEVICE if self._backend == "onnx" else str(self._device)

    @property
    def device_name(self) -> str:
        """The device in words for display when it is not torch's: ``""`` on the torch
        backend (callers name torch devices themselves)."""
        return "CPU (ONNX Runtime)" if self._backend == "onnx" else ""

    @property
    def backend(self) -> str:
        """``"onnx"`` or ``"torch"``: what runs the classifier's forward pass."""
        return self._backend

    @property
    def model(self) -> RcdNet:
        """The torch model on its device (the CPU on the ONNX backend), in eval mode.

        On the ONNX backend the first access loads the bundle's torch weights (imports torch).
        """
        self._ensure_torch()
        assert self._model is not None
        return self._model

    def _ensure_torch(self) -> None:
        """Load the torch networks now if they were left unloaded (the ONNX backend)."""
        if self._model is None:
            self._load_torch()
            if self._backend == "onnx":
                import torch

                self._device = torch.device("cpu")

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
        if self._has_localiser:
            self._ensure_torch()
        return self._localiser

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
        from rcdnet_desktop.core.checks import check_box_region, check_image, check_record, codes

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
        if box is not None and whole is None and self._guard is not None:
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
        from rcdnet_desktop.core.lesion import find_lesion

        prob, notes = self._lesion_probability(whole)
        return find_lesion(prob, hw, self._min_confidence), notes

    def _lesion_in_box(self, whole: np.ndarray, hw: tuple[int, int],
                       box: Box) -> tuple[Box | None, list[str]]:
        """The lesion region the localiser outlines around a drawn box (or None), and notes."""
        from rcdnet_desktop.core.lesion import lesion_in_box

        prob, notes = self._lesion_probability(whole)
        return lesion_in_box(prob, hw, box, self._snap_min_iou, self._min_confidence), notes

    def _lesion_probability(self, whole: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The localiser's lesion probability map over the whole-image view, and notes."""
        notes: list[str] = []
        if self._onnx_localiser is not None:
            logits = self._onnx_localiser.run(
                None, {"image": np.ascontiguousarray(whole[None])})[0]
            prob = (1.0 / (1.0 + np.exp(-logits[0, 0].astype(np.float64)))).astype(np.float32)
            return prob, notes

        import torch

        from rcdnet_desktop.core import localiser as loc

        def run(model: LesionLocaliser, device: torch.device) -> np.ndarray:
            with torch.inference_mode():
                return loc.lesion_probability(model, torch.from_numpy(whole[None]).to(device))[0]

        assert self._cpu_localiser is not None and self._localiser is not None
        if self._localiser_device.type == "cpu":
            prob = run(self._cpu_localiser, self._localiser_device)
        else:
            try:
                prob = run(self._localiser, self._localiser_device)
            except Exception as exc:
                if not _is_device_failure(exc):
                    raise
                notes.append(f"the GPU ({self._localiser_device}) failed: {_first_line(exc)}; "
                             "the lesion localiser ran on the CPU")
                prob = run(self._cpu_localiser, torch.device("cpu"))
        return prob, notes

    # --- running -------------------------------------------------------------------------

    def _forward(self, model: RcdNet, device: torch.device, batch: np.ndarray,
                 with_features: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One forward pass on ``device``: logits ``(B, K)``, the last feature map
        ``(B, C, h, w)`` (or None) and the guard's features ``(B, D)``."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(device, non_blocking=True)
            logits, feats, guard = model.forward_outputs(x)
            return (logits.float().cpu(), feats.float().cpu() if with_features else None,
                    guard.float().cpu())

    def _forward_onnx(self, batch: np.ndarray,
                      with_features: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """One run of the classifier's ONNX graph: logits ``(B, K)``, the last feature map
        (or None) and the guard's features (numpy)."""
        assert self._onnx_classifier is not None
        logits, feats, guard = self._onnx_classifier.run(None, {"image": batch})
        return (np.ascontiguousarray(logits, dtype=np.float32),
                feats if with_features else None, guard)

    def _run_forward(self, batch: np.ndarray, with_features: bool):
        """The classifier's forward pass on the engine's backend: ``((logits, features,
        guard), device, extra_warnings)``; logits numpy ``(B, K)``, the last feature map numpy
        ``(B, C, h, w)`` or None, guard features numpy ``(B, D)``."""
        if self._backend == "onnx":
            return self._forward_onnx(batch, with_features), ONNX_DEVICE, ()
        (logits, feats, guard), dev, extra = self._with_fallback(self._forward, batch,
                                                                 with_features)
        return ((logits.numpy(), feats.numpy() if feats is not None else None, guard.numpy()),
                dev, extra)

    def _head_weight(self) -> np.ndarray:
        """``(K, C)`` weight of the classifier's final linear layer, from the backend that
        runs it (the verified ONNX graph, or the torch model)."""
        if self._backend == "onnx":
            assert self._fc_weight is not None
            return self._fc_weight
        return self._model.fc.weight.detach().float().cpu().numpy()

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
            batch, layout = self._batch(chunk)
            (lg, f, _), _, _ = self._run_forward(batch, True)
            logits.append(self._combine(lg, chunk, layout)[0])
            feats.append(f[:len(chunk)])
        return np.concatenate(logits), np.concatenate(feats), self._head_weight()

    def cutoff_margin(self, logits: np.ndarray) -> np.ndarray:
        """``logit_m - logit_b`` minus the card's cut-off in logit units (``T log(t/(1-t))``)
        for logits ``(N, 2)``: >= 0 exactly where the result is suspicious."""
        lg = np.asarray(logits, dtype=np.float64)
        return lg[:, 1] - lg[:, 0] - self._cutoff_logit

    def _gradcam(self, model: RcdNet, device: torch.device, x: np.ndarray,
                 method: str) -> np.ndarray:
        """pytorch-grad-cam maps ``(K, s, s)`` for one input on ``device``."""
        import torch

        from rcdnet_desktop.core.explain import gradcam_maps

        return gradcam_maps(model, torch.from_numpy(x).to(device), method, contrast=True)

    def _with_fallback(self, fn, *args):
        """Run ``fn(model, device, *args)`` on the engine's device; on a GPU failure re-run it
        on the CPU. Returns ``(result, device_name, extra_warnings)``."""
        self._ensure_torch()
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

    def _predictions(self, items: Sequence[Prepared], logits: np.ndarray,
                     per_view: list[np.ndarray | None], device: str, extra: tuple[str, ...],
                     pooled: np.ndarray, layout: _Layout) -> list[Prediction]:
        """Predictions from the chunk's combined logits and per-view logits
        (:meth:`_combine`) and its pooled features (one row per batch entry, laid out as
        ``layout`` says): the guard judges the whole images, the lexicon describes the lesion
        boxes."""
        from rcdnet_desktop.core.checks import CHECK_CODES
        from rcdnet_desktop.core.lexicon import suggest

        guard = self._whole_rows(pooled, len(items), layout.whole)
        temperature = np.float32(self._temperature)
        probs = _softmax(logits / temperature)
        notes = ((self.device_note,) if self.device_note else ()) + extra
        distances = self._guard.distance(guard) if self._guard is not None else None
        out = []
        for i, (it, p, pv) in enumerate(zip(items, probs, per_view, strict=True)):
            warnings, checks = it.warnings, it.checks
            p_range = None
            if pv is not None:
                pm = _softmax(pv / temperature)[:, 1]
                p_range = (float(pm.min()), float(pm.max()))
            flag = self._guard.flag(float(distances[i])) if distances is not None else None
            if flag is not None:
                warnings = (flag.text, *warnings)
                checks = tuple(c for c in CHECK_CODES if c in {*checks, flag.code})
            descriptors, note = suggest(self._lexicon, pooled[i], has_box=it.roi is not None,
                                        checks=checks)
            out.append(Prediction(
                descriptors=descriptors, descriptor_note=note,
                p_benign=float(p[0]), p_malignant=float(p[1]), device=device,
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

    @staticmethod
    def _batch(chunk: Sequence[Prepared], with_views: bool = True) -> tuple[np.ndarray, _Layout]:
        """The chunk's model inputs, then the whole-image views of its items that have one,
        then (``with_views``) the other views of their lesion boxes, so every view goes
        through one forward pass; and where each sits in the batch."""
        n = len(chunk)
        whole = [i for i, it in enumerate(chunk) if it.whole is not None]
        parts = [it.tensor[None] for it in chunk] + [chunk[i].whole[None] for i in whole]
        start, views = n + len(whole), []
        for it in chunk:
            k = len(it.views) if with_views and it.views is not None else 0
            views.append(slice(start, start + k))
            start += k
            if k:
                parts.append(it.views)
        return (np.concatenate(parts).astype(np.float32, copy=False),
                _Layout(whole=whole, views=views))

    @staticmethod
    def _combine(logits: np.ndarray, chunk: Sequence[Prepared],
                 layout: _Layout) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Each item's logits: the mean over its box's views (the as-given view alone when it
        has no others), each view first averaged with the whole image's when the item is
        fused. Also each item's per-view logits ``(v, K)`` when it has several views, else
        None (their spread is the prediction's ``box_p_range``)."""
        n = len(chunk)
        whole_row = {i: n + j for j, i in enumerate(layout.whole)}
        out = logits[:n].copy()
        per_view: list[np.ndarray | None] = []
        for i, it in enumerate(chunk):
            rows = np.concatenate([logits[i:i + 1], logits[layout.views[i]]])
            if it.fuse:
                rows = (rows + logits[whole_row[i]]) / 2
            out[i] = rows.mean(axis=0)
            per_view.append(rows if len(rows) > 1 else None)
        return out, per_view

    @staticmethod
    def _whole_rows(values: np.ndarray, n: int, extra: list[int]) -> np.ndarray:
        """Rows of ``values`` (one per batch entry) for each item's whole-image view."""
        rows = np.arange(n)
        rows[extra] = n + np.arange(len(extra))
        return values[rows]

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
            batch, layout = self._batch(chunk, with_views=False)
            (_, _, pooled), _, _ = self._run_forward(batch, False)
            rows.append(self._whole_rows(pooled, len(chunk), layout.whole) if whole
                        else pooled[:len(chunk)])
        return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)

    def predict_prepared(self, items: Sequence[Prepared]) -> list[Prediction]:
        """Classify prepared images, up to ``batch_size`` per forward pass (an item's whole-image
        view and the other views of its box go through the same pass)."""
        out: list[Prediction] = []
        for chunk in self._chunks(list(items)):
            batch, layout = self._batch(chunk)
            (logits, _, pooled), dev, extra = self._run_forward(batch, False)
            fused, per_view = self._combine(logits, chunk, layout)
            out.extend(self._predictions(chunk, fused, per_view, dev, extra, pooled, layout))
        return out

    def explain_prepared(self, items: Sequence[Prepared], method: str = FAST) -> list[HeatMaps]:
        """Predictions and both classes' heat maps for prepared images.

        With ``method="fast"`` the maps come from the same batched forward pass as the
        predictions (:func:`~rcdnet_desktop.core.explain.decision_evidence`): the classified
        view's cells, relative to the card's cut-off, both maps on one scale; a fused
        prediction's maps are its box view's cells with the whole image's share of the
        decision spread evenly over them. Other methods (see
        :data:`~rcdnet_desktop.core.explain.GRADCAM_METHODS`) run pytorch-grad-cam image by
        image for the targets ``logit_m - logit_b`` and its opposite, each map normalised to
        its own maximum. A prediction averaged over views of its box (the card's
        ``box_views``) has the maps of the box as given, relative to the averaged decision.
        """
        if method != FAST and method not in GRADCAM_METHODS:
            raise InferenceError(f"unknown heat-map method {method!r}; choose from "
                                 f"{', '.join(METHOD_LABELS)}")
        if method != FAST:
            _require_torch(f"the heat-map method {METHOD_LABELS[method]!r}")
        size = self.card.preprocessing.size
        out: list[HeatMaps] = []
        for chunk in self._chunks(list(items)):
            batch, layout = self._batch(chunk)
            (logits, feats, pooled), dev, extra = self._run_forward(batch, method == FAST)
            fused, per_view = self._combine(logits, chunk, layout)
            preds = self._predictions(chunk, fused, per_view, dev, extra, pooled, layout)
            if method == FAST:
                scores = contrastive_scores(feats[:len(chunk)], self._head_weight())
                margins = self.cutoff_margin(fused)
            for i, (it, pred) in enumerate(zip(chunk, preds, strict=True)):
                if method == FAST:
                    # The as-given view stands for all the views of its box (the same lesion
                    # scaled a little): its share is the box's, as without views.
                    maps = decision_evidence(scores[i], margins[i], size,
                                             share=0.5 if it.fuse else 1.0)
                else:
                    maps, dev2, extra2 = self._with_fallback(self._gradcam, batch[i:i + 1],
                                                             method)
                    if extra2:  # the torch model fell back to the CPU
                        pred = _with_device(pred, dev2, extra2)
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
        scale (:func:`~rcdnet_desktop.core.explain.decision_evidence`); any key of
        :data:`~rcdnet_desktop.core.explain.GRADCAM_METHODS` runs pytorch-grad-cam instead.
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


def _with_device(pred: Prediction, device: str, extra: tuple[str, ...]) -> Prediction:
    from dataclasses import replace

    return replace(pred, device=device, warnings=pred.warnings + extra)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (the probabilities are reported as Python floats)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
