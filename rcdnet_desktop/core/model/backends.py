"""What runs the networks: one small protocol, and the ONNX Runtime backend (no torch).

A backend runs the classifier's forward pass on a batch of preprocessed views
(:meth:`Backend.forward`) and the lesion localiser on one whole-image view
(:meth:`Backend.lesion_probability`), and gives the weight of the classifier's final linear
layer, which the closed-form heat maps need (:meth:`Backend.head_weight`). Two implement it:
:class:`OnnxBackend` here (the bundle's verified graphs in ONNX Runtime on the CPU, the
default) and :class:`~rcdnet_desktop.core.model.torch_backend.TorchBackend` (CUDA, MPS, the
CPU, and the heat-map methods that need gradients), which imports torch.
:func:`~rcdnet_desktop.core.model.device.place` chooses between them once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rcdnet_desktop.core.model.bundle import Bundle
from rcdnet_desktop.core.model.device import ONNX_CUDA_DEVICE, ONNX_DEVICE
from rcdnet_desktop.core.model.onnx_graphs import (
    CUDA_PROVIDER,
    NO_CUDA_PROVIDER,
    fc_weight_of,
    onnx_providers,
    session_of,
    verified_graph,
)


@dataclass(frozen=True)
class Forward:
    """One forward pass of the classifier over a batch of ``B`` views (numpy).

    Attributes
    ----------
    logits : np.ndarray
        ``(B, K)`` float32.
    features : np.ndarray or None
        The last feature map ``(B, C, h, w)`` when asked for, else None.
    guard : np.ndarray
        The input guard's pooled features ``(B, D)``.
    device : str
        Where it ran (a GPU failure re-runs it on the CPU: ``"cpu"`` then).
    notes : tuple of str
        What the user should know of this pass (the GPU that failed), else empty.
    """

    logits: np.ndarray
    features: np.ndarray | None
    guard: np.ndarray
    device: str
    notes: tuple[str, ...] = ()


class Backend(Protocol):
    """What the engine asks of whatever runs the networks."""

    @property
    def device(self) -> str:
        """Where the networks run: ``"cpu-onnx"``, or torch's ``"cpu"``, ``"cuda:1"``, ..."""

    @property
    def runs_localiser(self) -> bool:
        """Whether :meth:`lesion_probability` can be asked of this backend."""

    def forward(self, batch: np.ndarray, with_features: bool) -> Forward:
        """The classifier on ``batch`` ``(B, 3, s, s)`` float32."""

    def lesion_probability(self, whole: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The localiser's lesion probability ``(s, s)`` over one whole-image view
        ``(3, s, s)``, and notes for the user."""

    def head_weight(self) -> np.ndarray:
        """``(K, C)`` weight of the classifier's final linear layer."""


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The localiser's probability from its logit, in float64 and back to float32."""
    return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


class OnnxBackend:
    """The bundle's ONNX graphs in ONNX Runtime on the CPU; torch is never imported.

    Each graph is read and sha256-verified once
    (:func:`~rcdnet_desktop.core.model.onnx_graphs.verified_graph`); the classifier's session
    and its final linear weight come from the same verified bytes. A process given a GPU for
    ONNX Runtime (:data:`~rcdnet_desktop.core.model.onnx_graphs.ONNX_CUDA_ENV`) runs them on
    its CUDA provider instead (device ``"cuda-onnx"``), or on the CPU with :attr:`note` saying
    why when this ONNX Runtime cannot use CUDA.

    Raises
    ------
    WeightsError
        A graph the card names is missing or does not verify.
    """

    def __init__(self, bundle: Bundle, with_localiser: bool) -> None:
        card = bundle.card
        providers, self.note = onnx_providers()
        path, data = verified_graph(bundle.folder, card, "classifier")
        self._classifier = session_of(path, data, card, "classifier", providers)
        on_gpu = CUDA_PROVIDER in self._classifier.get_providers()
        if CUDA_PROVIDER in providers and not on_gpu:  # CUDA listed, but could not be loaded
            self.note = NO_CUDA_PROVIDER
        self.device = ONNX_CUDA_DEVICE if on_gpu else ONNX_DEVICE
        # The closed-form maps need the final linear layer's weight: read from the verified
        # graph itself, so the ONNX backend never needs the torch weights.
        self._fc_weight = fc_weight_of(path, data)
        self._localiser = None
        if with_localiser and bundle.has_graph("localiser"):
            path, data = verified_graph(bundle.folder, card, "localiser")
            self._localiser = session_of(path, data, card, "localiser",
                                         providers if on_gpu else None)

    @property
    def runs_localiser(self) -> bool:
        return self._localiser is not None

    def forward(self, batch: np.ndarray, with_features: bool) -> Forward:
        logits, feats, guard = self._classifier.run(None, {"image": batch})
        return Forward(np.ascontiguousarray(logits, dtype=np.float32),
                       feats if with_features else None, guard, self.device)

    def lesion_probability(self, whole: np.ndarray) -> tuple[np.ndarray, list[str]]:
        assert self._localiser is not None
        logits = self._localiser.run(None, {"image": np.ascontiguousarray(whole[None])})[0]
        return sigmoid(logits[0, 0]), []

    def head_weight(self) -> np.ndarray:
        return self._fc_weight
