"""Verifying and loading the files of a model bundle (see :mod:`.card`).

:func:`load_model` treats the weights file as untrusted input: it checks the sha256 recorded in
the card *before* unpickling anything, loads with ``torch.load(weights_only=True)``, matches keys
and shapes strictly and runs a dummy forward pass of the declared input shape. Every failure
raises :class:`~rcdnet_desktop.core.errors.WeightsError`; there is no fallback to random weights.
:func:`load_localiser` loads the optional localiser with the same checks, and
:func:`load_onnx_session` opens an ONNX graph in onnxruntime only after its sha256 matched; it
refuses a graph whose recorded weights are not the card's.

The application only reads bundles: they are written by the training package
(:mod:`training.bundle_write`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.types import CLASS_NAMES

if TYPE_CHECKING:
    import onnxruntime
    import torch

    from rcdnet_desktop.core.localiser import LesionLocaliser
    from rcdnet_desktop.core.model import RcdNet

from rcdnet_desktop.core.card import (
    CARD_FILE,
    GRAPH_NAMES,
    ModelCard,
    _short,
    default_model_dir,
    sha256_file,
)


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
    ``alpha=1``), which is how :mod:`~training.onnx_export` writes ``RcdNet.fc``.

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


ONNX_THREADS_ENV = "RCDNET_ONNX_THREADS"
"""Threads each ONNX Runtime session may use (unset or 0: ONNX Runtime's default, every core).
A process that runs one session per core (``rcdnet archive``'s model workers) sets it to 1."""


def onnx_threads() -> int:
    """The thread count of :data:`ONNX_THREADS_ENV`, 0 when unset or not a positive number."""
    try:
        return max(0, int(os.environ.get(ONNX_THREADS_ENV, "0") or 0))
    except ValueError:
        return 0


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
    threads = onnx_threads()
    if threads:
        options.intra_op_num_threads = threads
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
