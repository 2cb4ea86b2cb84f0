"""Export the bundled networks to ONNX graphs that run without torch (training side only).

Two graphs, both float32 with a fixed ``s x s`` input and a dynamic batch dimension:

classifier (:func:`export_classifier`)
    input ``image`` ``(N, 3, s, s)`` (the output of
    :func:`~rcdnet_desktop.core.preprocess.preprocess`); outputs ``logits`` ``(N, 2)`` and
    ``features`` ``(N, C, h, w)``, the last feature map (``RcdNet.forward_features``), so the
    closed-form Grad-CAM of :mod:`~rcdnet_desktop.core.model.explain` needs only the graph and the
    ``fc`` weights (``cam_k = ReLU(sum_c W_kc / (h w) * features_c)``); ``guard_features``
    ``(N, 320)``, what the input guard (:mod:`~rcdnet_desktop.core.guard`) measures
    (``RcdNet.forward_outputs``).
localiser (:func:`export_localiser`)
    input ``image`` ``(N, 3, s, s)``; output ``lesion_logits`` ``(N, 1, s, s)``.

The graphs are traced with torch's TorchScript-based exporter (``dynamo=False``) at the fixed
opset :data:`OPSET`, from a copy of the model in eval mode (dropout off, batch-norm statistics
frozen) on the CPU; the model given is not modified. Export is byte-deterministic: the same
weights give the same bytes (there are no timestamps in an ONNX file), so the sha256 in the
model card identifies the graph.

torch is imported inside the functions; exporting needs the ``onnx`` package, running the graphs
needs ``onnxruntime`` (see :func:`rcdnet_desktop.core.model.onnx_graphs.load_onnx_session`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rcdnet_desktop.core.atomic import replace_file
from rcdnet_desktop.core.model.card import CLASSIFIER_OUTPUTS, INPUT_NAME, LOCALISER_OUTPUTS

if TYPE_CHECKING:
    import torch

    from rcdnet_desktop.core.model.localiser import LesionLocaliser
    from rcdnet_desktop.core.model.network import RcdNet

OPSET = 17
"""ONNX opset of every exported graph."""


def _export(module: torch.nn.Module, size: int, outputs: tuple[str, ...]) -> bytes:
    import io
    import warnings

    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The tracer warns that the "same" padding is computed from the (fixed) input size and
        # that the TorchScript exporter is deprecated; both are expected here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.zeros(1, 3, size, size),), buf,
            dynamo=False, opset_version=OPSET, do_constant_folding=True,
            input_names=[INPUT_NAME], output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *outputs)},
        )
    return buf.getvalue()


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model).cpu().float().eval()


def classifier_onnx_bytes(model: RcdNet, size: int) -> bytes:
    """The classifier graph (input ``image``; outputs :data:`CLASSIFIER_OUTPUTS`) as bytes."""
    import torch

    class _AllOutputs(torch.nn.Module):
        def __init__(self, net: RcdNet) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            return self.net.forward_outputs(x)

    return _export(_AllOutputs(_frozen_copy(model)).eval(), int(size), CLASSIFIER_OUTPUTS)


def localiser_onnx_bytes(model: LesionLocaliser, size: int) -> bytes:
    """The localiser graph (input ``image``; output ``lesion_logits``) as bytes."""
    return _export(_frozen_copy(model), int(size), LOCALISER_OUTPUTS)


def export_classifier(model: RcdNet, path: str | Path, size: int) -> bytes:
    """Write the classifier graph to ``path`` atomically; returns the bytes written.

    Parameters
    ----------
    model : RcdNet
        Any device and mode; a CPU copy in eval mode is exported.
    path : str or Path
        Destination ``.onnx`` file (replaced if it exists).
    size : int
        Input side ``s`` (the preprocessing size).
    """
    data = classifier_onnx_bytes(model, size)
    replace_file(Path(path), data)
    return data


def export_localiser(model: LesionLocaliser, path: str | Path, size: int) -> bytes:
    """Write the localiser graph to ``path`` atomically; returns the bytes written."""
    data = localiser_onnx_bytes(model, size)
    replace_file(Path(path), data)
    return data
