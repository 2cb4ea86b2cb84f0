"""The model card: what a bundle holds, how it was made and measured, and how to read it.

A model bundle is a folder holding:

``model_card.json``
    The :class:`ModelCard`: architecture, classes, preprocessing constants, the weights file's
    name, dtype and sha256, calibration temperature, region-of-interest margin, operating point,
    training data, metrics, intended use and limits.
``rcdnet_weights.pt``, ``localiser_weights.pt`` (names recorded in the card)
    Plain ``state_dict`` files of :class:`~rcdnet_desktop.core.model.network.RcdNet` and the
    optional :class:`~rcdnet_desktop.core.model.localiser.LesionLocaliser`, saved with
    ``torch.save`` (float16 by default, cast back to float32 on loading).
``rcdnet.onnx``, ``localiser.onnx`` (optional; named in the card's ``onnx`` section)
    The same networks as ONNX graphs (:mod:`training.onnx_export`), each recorded
    with its sha256 and the sha256 of the weights it was exported from.

This module reads and validates the card alone (no torch, no weights opened);
:mod:`rcdnet_desktop.core.model.bundle` verifies and loads the files the card names.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rcdnet_desktop.core.bands import MODES, parse_bands
from rcdnet_desktop.core.box_views import validate_section as validate_box_views
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.guard import validate_section
from rcdnet_desktop.core.lexicon import validate_section as validate_lexicon
from rcdnet_desktop.core.model.backbones import BACKBONES
from rcdnet_desktop.core.npzfile import is_sha256 as _is_sha256
from rcdnet_desktop.core.preprocess import DEFAULT_ROI_MARGIN, PreprocessConfig
from rcdnet_desktop.core.resources import resources_dir
from rcdnet_desktop.core.types import CLASS_NAMES

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
CARD_SCHEMA = 1
_WEIGHT_DTYPES = ("float16", "float32")
_LOCALISER_KEYS = ("file", "sha256", "dtype", "architecture", "input_size", "min_confidence",
                   "metrics")
ONNX_FILES = {"classifier": "rcdnet.onnx", "localiser": "localiser.onnx"}
"""Default file names of the ONNX graphs inside a bundle folder, by the card's ``onnx`` key."""
INPUT_NAME = "image"
CLASSIFIER_OUTPUTS = ("logits", "features", "guard_features")
LOCALISER_OUTPUTS = ("lesion_logits",)
GRAPH_NAMES = {"classifier": ([INPUT_NAME], list(CLASSIFIER_OUTPUTS)),
               "localiser": ([INPUT_NAME], list(LOCALISER_OUTPUTS))}
"""Input and output names of each graph, by the key it has in the model card's ``onnx``
(the graphs are exported by :mod:`training.onnx_export`)."""
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
        Keyword arguments of :class:`~rcdnet_desktop.core.model.network.RcdNet` (``use_dsc``,
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
        ONNX graphs of the networks (:mod:`training.onnx_export`); empty when the
        bundle has none. ``{"classifier": {...}, "localiser": {...}}``, either optional (a
        localiser graph needs a ``localiser`` section), each ``{"file": name inside the bundle
        folder, "sha256": hex digest of the graph, "opset": ONNX opset, "inputs": ["image"],
        "outputs": ["logits", "features", "guard_features"] (classifier) or
        ["lesion_logits"] (localiser), "weights_sha256": sha256 of the weights file it was
        exported from}``. Written by :func:`training.bundle_write.save_onnx`.
    guard : dict
        The input guard's learned part (:mod:`~rcdnet_desktop.core.guard`); empty when the
        bundle has none. ``{"file", "sha256", "features", "transform", "dim", "shrinkage",
        "threshold", "quantile", "fitted_on", "metrics", "weights_sha256"}``.
    lexicon : dict
        The lexicon heads (:mod:`~rcdnet_desktop.core.lexicon`); empty when the bundle has
        none. ``{"file", "sha256", "features", "view", "transform", "dim", "descriptors": [{
        "name", "classes", "shown", ...measured agreement}], "rule": when a descriptor is
        shown, "fitted_on", "metrics", "notes": what they are and are not, "weights_sha256"}``.
    box_views : dict
        The views of a lesion box whose logits are averaged (:mod:`~rcdnet_desktop.core.
        box_views`); empty to classify the box alone. ``{"views": [[scale, dx, dy], ...] (the
        first is [1, 0, 0], the box as given), ...free-form keys: how the set was chosen and
        what it measured}``.
    self_test : dict
        What ``rcdnet self-test`` expects of this bundle; empty when nothing is recorded.
        ``{"samples": {sample file name: P(malignant) on the whole image}, "tolerance": allowed
        absolute difference, "min_separation": smallest P(malignant) of the malignant samples
        minus the largest of the benign ones, "weights_sha256": the weights they were measured
        with}``, written at bundle time.
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
    roi_margin: float = DEFAULT_ROI_MARGIN
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
    guard: dict[str, Any] = field(default_factory=dict)
    lexicon: dict[str, Any] = field(default_factory=dict)
    box_views: dict[str, Any] = field(default_factory=dict)
    self_test: dict[str, Any] = field(default_factory=dict)
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
        if arch.get("backbone") not in BACKBONES:
            raise bad(f"architecture.backbone must be one of {list(BACKBONES)}, "
                      f"got {arch.get('backbone')!r}")
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
        validate_section(self.guard, bad)
        validate_lexicon(self.lexicon, bad)
        validate_box_views(self.box_views, bad)
        for key in ("guard", "lexicon"):
            section = getattr(self, key)
            if section and section.get("weights_sha256") != self.weights.get("sha256"):
                raise bad(f"{key}.weights_sha256 must be the weights' sha256 (the {key} was "
                          "fitted on other weights)")
        self._validate_self_test(bad)

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

    def _validate_self_test(self, bad) -> None:
        st = self.self_test
        if not isinstance(st, dict):
            raise bad("self_test must be an object (empty when nothing is recorded)")
        if not st:
            return
        samples = st.get("samples")
        if not isinstance(samples, dict) or not samples or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                and 0.0 <= v <= 1.0 for k, v in samples.items()):
            raise bad("self_test.samples must map sample file names to probabilities in [0, 1]")
        if st.get("weights_sha256") != self.weights.get("sha256"):
            raise bad("self_test.weights_sha256 must be the weights' sha256")
        for key in ("tolerance", "min_separation"):
            v = st.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1.0 <= v <= 1.0:
                raise bad(f"self_test.{key} must be a number between -1 and 1, got {v!r}")

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
        return dict(self.architecture)




def default_model_dir() -> Path:
    """The bundle folder the application uses.

    ``$RCDNET_MODEL_DIR`` when set, else ``model`` in the bundled resources
    (:func:`~rcdnet_desktop.core.resources.resources_dir`: ``resources/`` beside the package in
    the source tree, under ``sys._MEIPASS`` in a PyInstaller build).
    """
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


def load_card(model_dir: str | Path | None = None) -> ModelCard:
    """Read and validate a bundle's model card alone (no torch; weights are not opened).

    Raises
    ------
    WeightsError
        The card is missing, unreadable or invalid.
    """
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    return ModelCard.read(model_dir / CARD_FILE)


