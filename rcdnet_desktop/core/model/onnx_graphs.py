"""The bundle's ONNX graphs: verified before they are parsed, then opened or read.

A graph's bytes are read once and their sha256 checked against the model card *before*
onnxruntime or onnx parses them (:func:`verified_graph`); a graph whose recorded weights are
not the card's is refused. The session (:func:`session_of`) and the classifier's final linear
weight (:func:`fc_weight_of`) are then made from those same bytes. The graphs are written by
the training package (:mod:`training.onnx_export`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.model.card import (
    CARD_FILE,
    GRAPH_NAMES,
    ModelCard,
    _short,
    default_model_dir,
)
from rcdnet_desktop.core.types import CLASS_NAMES

if TYPE_CHECKING:
    import onnxruntime


def verified_graph(model_dir: str | Path | None, card: ModelCard,
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


def fc_weight_of(path: Path, data: bytes) -> np.ndarray:
    """The final linear weight ``(K, C)`` (float32) of the verified classifier graph ``data``
    (read from ``path``).

    The graph's ``logits`` must come from a ``Gemm`` of the pooled features with an initializer
    as its weight (``transB=1``, ``alpha=1``), which is how :mod:`~training.onnx_export` writes
    ``RcdNet.fc``.

    Raises
    ------
    WeightsError
        The graph cannot be parsed or its ``logits`` are not computed that way.
    """
    # onnx (the graph reader, not the runtime) is imported only here: it is needed once per
    # engine, and importing it costs start-up time on every other path.
    import onnx
    from onnx import helper, numpy_helper

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


def classifier_fc_weight(model_dir: str | Path | None, card: ModelCard) -> np.ndarray:
    """The classifier's final linear weight ``(K, C)`` (float32), read from its verified ONNX
    graph (:func:`verified_graph`, then :func:`fc_weight_of`): the closed-form heat maps need
    it, and reading it from the graph keeps torch out of the ONNX backend.

    Raises
    ------
    WeightsError
        The graph does not verify, or its ``logits`` are not computed by a plain linear layer.
    """
    return fc_weight_of(*verified_graph(model_dir, card, "classifier"))


def session_of(path: Path, data: bytes, card: ModelCard, which: str,
               providers: list[str] | None = None) -> onnxruntime.InferenceSession:
    """An onnxruntime session of the verified graph ``data`` (the card's ``which``), whose
    input and output names must be the card's, its input ``(N, 3, s, s)`` with ``s`` the
    preprocessing size. ``providers``: ONNX Runtime's execution providers in order of
    preference (:func:`onnx_providers`); the CPU's alone when None.

    Raises
    ------
    WeightsError
        Onnxruntime refuses the graph, or its names or input shape differ from the card's.
    """
    # Imported here: the torch backend (CUDA, MPS) never needs ONNX Runtime.
    import onnxruntime as ort

    entry = card.onnx[which]
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: they are raised below anyway
    # No busy-waiting worker threads after a run: they would take the cores from the decoding,
    # preprocessing and GUI threads that run between two images.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    threads = onnx_threads()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
    try:
        with warnings.catch_warnings():
            # A provider listed that this onnxruntime lacks: the CPU runs the graph, which
            # the caller sees in the session's providers and says in words.
            warnings.filterwarnings("ignore", "Specified provider", UserWarning)
            session = ort.InferenceSession(data, sess_options=options,
                                           providers=providers or [CPU_PROVIDER])
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


ONNX_THREADS_ENV = "RCDNET_ONNX_THREADS"
"""Threads each ONNX Runtime session may use (unset or 0: ONNX Runtime's default, every core).
A process that runs one session per core (``rcdnet archive``'s model workers) sets it to 1."""


ONNX_CUDA_ENV = "RCDNET_ONNX_CUDA"
"""Set to 1 by a process given a GPU of its own for ONNX Runtime (``rcdnet archive --device
cuda``'s model workers, one per GPU): its sessions then run on ONNX Runtime's CUDA provider
when this ONNX Runtime has one (``onnxruntime-gpu``), the CPU taking any node CUDA cannot run."""

CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"

NO_CUDA_PROVIDER = ("a GPU was asked for, but ONNX Runtime here has no CUDA provider "
                    "(onnxruntime-gpu is not installed, or CUDA cannot be loaded): the model "
                    "ran on the CPU")


def onnx_providers() -> tuple[list[str], str]:
    """ONNX Runtime's execution providers for this process's sessions, and a note for the user
    when a GPU was asked for (:data:`ONNX_CUDA_ENV`) and cannot be used ("" otherwise)."""
    if os.environ.get(ONNX_CUDA_ENV, "") != "1":
        return [CPU_PROVIDER], ""
    import onnxruntime as ort

    if CUDA_PROVIDER in ort.get_available_providers():
        return [CUDA_PROVIDER, CPU_PROVIDER], ""
    return [CPU_PROVIDER], NO_CUDA_PROVIDER


def onnx_threads() -> int:
    """The thread count of :data:`ONNX_THREADS_ENV`, 0 when unset or not a positive number."""
    try:
        return max(0, int(os.environ.get(ONNX_THREADS_ENV, "0") or 0))
    except ValueError:
        return 0


def load_onnx_session(model_dir: str | Path | None, card: ModelCard,
                      which: str) -> onnxruntime.InferenceSession:
    """Open one of the bundle's ONNX graphs in onnxruntime on the CPU, after verifying it.

    Parameters
    ----------
    model_dir : str or Path, optional
        Bundle folder; :func:`default_model_dir` when None.
    card : ModelCard
        The bundle's card.
    which : {"classifier", "localiser"}
        The graph to open.

    Raises
    ------
    WeightsError
        The card has no such graph, the graph was exported from other weights than the card's,
        the file is missing, unreadable or its sha256 differs, onnxruntime refuses it, or its
        names or input shape differ from the card's. The message names the file and the reason.
    """
    path, data = verified_graph(model_dir, card, which)
    return session_of(path, data, card, which)
