"""The torch backend: the networks in PyTorch on a GPU or the CPU, with the CPU as fallback.

It keeps a CPU copy of each network, so that when the GPU fails during a call (out of memory,
a driver error) the call is re-run on the CPU and its result says so. It also runs the
heat-map methods that need gradients (pytorch-grad-cam). Importing this module imports torch:
the engine imports it only when a torch network is needed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rcdnet_desktop.core.model.backends import Forward
from rcdnet_desktop.core.model.device import first_line, is_device_failure
from rcdnet_desktop.core.model.explain import gradcam_maps
from rcdnet_desktop.core.model.localiser import LesionLocaliser, lesion_probability
from rcdnet_desktop.core.model.network import RcdNet

CPU = torch.device("cpu")


def _cpu_copy(module: torch.nn.Module) -> torch.nn.Module:
    on_cpu = all(p.device.type == "cpu" for p in module.parameters())
    return (module if on_cpu else copy.deepcopy(module).cpu()).eval()


class TorchBackend:
    """The classifier (and the localiser, when there is one) in torch on ``device``.

    Parameters
    ----------
    model, localiser : RcdNet, LesionLocaliser or None
        The networks, on any device; CPU copies are kept, in eval mode.
    device : torch.device
        Where to run them. Copying them to a GPU is tried at once (with one forward pass);
        when it fails they stay on the CPU and :attr:`note` says why.
    input_shape : list of int
        The card's input shape, for the trial pass on the GPU.
    """

    def __init__(self, model: RcdNet, localiser: LesionLocaliser | None, device: torch.device,
                 input_shape: list[int]) -> None:
        # The CPU copies stay loaded so a GPU failure can be re-run without touching the GPU.
        self.cpu_model: RcdNet = _cpu_copy(model)
        self.cpu_localiser: LesionLocaliser | None = (
            _cpu_copy(localiser) if localiser is not None else None)
        self.model, self.localiser = self.cpu_model, self.cpu_localiser
        self.torch_device, self.localiser_device = device, CPU
        self.note = ""
        if device.type != "cpu":
            self._move_to_gpu(input_shape)

    def _move_to_gpu(self, input_shape: list[int]) -> None:
        """Copy the networks to the GPU; back to the CPU with a note if that fails."""
        device = self.torch_device
        try:
            self.model = copy.deepcopy(self.cpu_model).to(device).eval()
            with torch.inference_mode():  # fail now, not on the first image
                self.model(torch.zeros(input_shape, device=device))
        except Exception as exc:
            if not is_device_failure(exc):
                raise
            self.note = f"{device} could not be used ({first_line(exc)}): using the CPU"
            self.torch_device, self.model = CPU, self.cpu_model
            return
        if self.cpu_localiser is not None:
            try:
                self.localiser = copy.deepcopy(self.cpu_localiser).to(device).eval()
                self.localiser_device = device
            except Exception as exc:
                if not is_device_failure(exc):
                    raise
                self.localiser = self.cpu_localiser  # the classifier keeps its GPU

    @property
    def device(self) -> str:
        return str(self.torch_device)

    @property
    def runs_localiser(self) -> bool:
        return self.cpu_localiser is not None

    def forward(self, batch: np.ndarray, with_features: bool) -> Forward:
        (logits, feats, guard), device, notes = self._with_fallback(self._forward, batch,
                                                                    with_features)
        return Forward(logits.numpy(), feats.numpy() if feats is not None else None,
                       guard.numpy(), device, notes)

    def _forward(self, model: RcdNet, device: torch.device, batch: np.ndarray,
                 with_features: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One forward pass on ``device``: logits ``(B, K)``, the last feature map
        ``(B, C, h, w)`` (or None) and the guard's features ``(B, D)``."""
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(device, non_blocking=True)
            logits, feats, guard = model.forward_outputs(x)
            return (logits.float().cpu(), feats.float().cpu() if with_features else None,
                    guard.float().cpu())

    def gradcam(self, x: np.ndarray, method: str) -> tuple[np.ndarray, str, tuple[str, ...]]:
        """pytorch-grad-cam maps ``(K, s, s)`` of one input ``(1, 3, s, s)``, where they were
        computed and notes (the GPU that failed)."""
        return self._with_fallback(self._gradcam, x, method)

    def _gradcam(self, model: RcdNet, device: torch.device, x: np.ndarray,
                 method: str) -> np.ndarray:
        return gradcam_maps(model, torch.from_numpy(x).to(device), method, contrast=True)

    def _with_fallback(self, fn: Callable[..., Any], *args: Any):
        """Run ``fn(model, device, *args)`` on the backend's device; on a GPU failure re-run it
        on the CPU. Returns ``(result, device_name, notes)``."""
        device = self.torch_device
        if device.type == "cpu":
            return fn(self.cpu_model, device, *args), "cpu", ()
        try:
            return fn(self.model, device, *args), str(device), ()
        except Exception as exc:
            if not is_device_failure(exc):
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            note = (f"the GPU ({device}) failed: {first_line(exc)}; this result was "
                    "computed on the CPU")
            return fn(self.cpu_model, CPU, *args), "cpu", (note,)

    def lesion_probability(self, whole: np.ndarray) -> tuple[np.ndarray, list[str]]:
        assert self.cpu_localiser is not None and self.localiser is not None

        def run(model: LesionLocaliser, device: torch.device) -> np.ndarray:
            with torch.inference_mode():
                return lesion_probability(model, torch.from_numpy(whole[None]).to(device))[0]

        if self.localiser_device.type == "cpu":
            return run(self.cpu_localiser, self.localiser_device), []
        try:
            return run(self.localiser, self.localiser_device), []
        except Exception as exc:
            if not is_device_failure(exc):
                raise
            note = (f"the GPU ({self.localiser_device}) failed: {first_line(exc)}; "
                    "the lesion localiser ran on the CPU")
            return run(self.cpu_localiser, CPU), [note]

    def head_weight(self) -> np.ndarray:
        return self.model.fc.weight.detach().float().cpu().numpy()
