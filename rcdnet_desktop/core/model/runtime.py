"""What runs an engine's networks, chosen once with the device: :class:`Runtime`.

:func:`~rcdnet_desktop.core.model.device.place` picks the backend and the device together; the
runtime then holds the backend that runs the classifier (ONNX Runtime or torch), the one that
runs the localiser (the same one, or torch when the bundle has no graph of the localiser), and
the torch networks, which on the ONNX backend are loaded (and torch imported) only the first
time something needs them: a pytorch-grad-cam heat map, or the engine's ``model``. Every note
about where the model runs, and why it is not where it was asked to run, is kept in
:attr:`Runtime.note`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rcdnet_desktop.core.model.backends import Backend, OnnxBackend
from rcdnet_desktop.core.model.bundle import Bundle
from rcdnet_desktop.core.model.device import place, require_torch

if TYPE_CHECKING:
    from rcdnet_desktop.core.model.localiser import LesionLocaliser
    from rcdnet_desktop.core.model.network import RcdNet
    from rcdnet_desktop.core.model.torch_backend import TorchBackend


class Runtime:
    """The backends of one engine.

    Parameters
    ----------
    bundle : Bundle
        The opened bundle: its card, and the folder its graphs and weights are read from.
    device, backend : str, optional
        As :class:`~rcdnet_desktop.core.model.engine.InferenceEngine` takes them.
    has_localiser : bool
        Whether the engine finds lesion boxes (the bundle's localiser, or one handed over).
    model, localiser : optional
        Torch networks handed over (tests, training evaluation) instead of the bundle's.

    Raises
    ------
    WeightsError, ValueError, InferenceError
        As :func:`~rcdnet_desktop.core.model.device.place` and the backends raise them.
    """

    def __init__(self, bundle: Bundle, device: str | None, backend: str | None, *,
                 has_localiser: bool, model: RcdNet | None = None,
                 localiser: LesionLocaliser | None = None) -> None:
        where = place(device, backend, has_graphs=bundle.has_graph("classifier"),
                      torch_given=model is not None)
        self._bundle = bundle
        self.name: str = where.backend
        self.note: str = where.note
        self._torch: TorchBackend | None = None
        gpu = where.device if where.backend == "torch" else None
        if model is not None:
            self._torch = self._make_torch(model, localiser, gpu)
        elif where.backend == "torch":
            self._torch = self._make_torch(*self._networks(), gpu)
        self.classifier: Backend = (self.torch() if self.name == "torch"
                                    else self._onnx(bundle, has_localiser))
        # Without a graph of the localiser, torch runs it.
        self.localiser: Backend = (self.torch() if has_localiser
                                   and not self.classifier.runs_localiser else self.classifier)

    def _onnx(self, bundle: Bundle, has_localiser: bool) -> OnnxBackend:
        """The ONNX backend; says so when a GPU asked of ONNX Runtime cannot be used."""
        backend = OnnxBackend(bundle, has_localiser)
        self._add_note(backend.note)
        return backend

    def _add_note(self, note: str) -> None:
        if note:
            self.note = f"{self.note}; {note}" if self.note else note

    def torch(self) -> TorchBackend:
        """The torch networks: the backend itself, or (ONNX backend) loaded from the bundle on
        the CPU the first time they are needed (imports torch)."""
        if self._torch is None:
            self._torch = self._make_torch(*self._networks(), None)
        return self._torch

    def _networks(self) -> tuple[RcdNet, LesionLocaliser | None]:
        """The bundle's torch networks (imports torch), or an error in plain words without it."""
        require_torch("this heat-map method (or the PyTorch backend)")
        return self._bundle.networks()

    def _make_torch(self, model: RcdNet, localiser: LesionLocaliser | None,
                    gpu: Any) -> TorchBackend:
        """The torch backend on ``gpu`` (None: the CPU); says so when the GPU could not be used."""
        # Imported here, not at the top: this module imports torch, which the default ONNX
        # path never needs (the torch-free tests hold the engine to it).
        from rcdnet_desktop.core.model.torch_backend import CPU, TorchBackend

        backend = TorchBackend(model, localiser, gpu or CPU, self._bundle.card.input_shape)
        self._add_note(backend.note)
        return backend
