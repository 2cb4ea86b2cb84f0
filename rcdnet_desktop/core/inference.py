"""The engine's former import path, kept for callers written before
:mod:`rcdnet_desktop.core.model` existed: import from :mod:`rcdnet_desktop.core.model.engine`
(or :mod:`rcdnet_desktop.core.model`) instead."""

from rcdnet_desktop.core.model.device import (
    BACKEND_ENV,
    DEVICE_ENV,
    ONNX_DEVICE,
    resolve_backend,
    resolve_device,
    torch_available,
)
from rcdnet_desktop.core.model.engine import (
    DEFAULT_BATCH_SIZE,
    NO_LESION_WARNING,
    UNTRAINED_WARNING,
    InferenceEngine,
)
from rcdnet_desktop.core.model.prepared import Prepared

__all__ = ["BACKEND_ENV", "DEFAULT_BATCH_SIZE", "DEVICE_ENV", "NO_LESION_WARNING", "ONNX_DEVICE",
           "UNTRAINED_WARNING", "InferenceEngine", "Prepared", "resolve_backend",
           "resolve_device", "torch_available"]
