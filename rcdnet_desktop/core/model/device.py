"""Where the model runs: the device, the backend, and what to say when a request can't be met.

The one place for the device names (:data:`DEVICES`), the environment variables that override
them (:data:`DEVICE_ENV`, :data:`BACKEND_ENV`) and the rule that picks a backend for a device
(:func:`place`). The CLI's ``--device`` and the viewer's device menu offer :data:`DEVICES`.

No torch at import: torch is imported only when a torch device has to be made, so the default
path (ONNX Runtime on the CPU) never imports it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rcdnet_desktop.core.errors import InferenceError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
"""The devices a user can ask for (``cuda:N`` is accepted too where a name is typed)."""
DEVICE_ENV = "RCDNET_DEVICE"
"""Environment variable overriding the device: auto, cpu, cuda (or cuda:N) or mps."""
BACKEND_ENV = "RCDNET_BACKEND"
"""Environment variable choosing the backend: auto, onnx or torch."""
BACKENDS = ("auto", "onnx", "torch")
ONNX_DEVICE = "cpu-onnx"
"""The device reported when the networks run in ONNX Runtime."""
ONNX_CUDA_DEVICE = "cuda-onnx"
"""The device reported when the networks run in ONNX Runtime's CUDA provider (a process given
a GPU for it: :data:`~rcdnet_desktop.core.model.onnx_graphs.ONNX_CUDA_ENV`)."""
TORCH_MISSING = ("{what} needs PyTorch, which is not installed. Install the optional extra "
                 "with: pip install 'rcdnet-desktop[torch]' (the default closed-form heat maps "
                 "and the CPU run without it)")


def torch_available() -> bool:
    """Whether torch can be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def require_torch(what: str) -> None:
    """Raise :class:`InferenceError` in plain words when ``what`` needs torch and it is absent."""
    if "torch" not in sys.modules and not torch_available():
        raise InferenceError(TORCH_MISSING.format(what=what))


def onnxruntime_missing() -> str:
    """Why onnxruntime cannot be imported, or "" when it can."""
    try:
        import onnxruntime  # noqa: F401 - the import is the test
    except Exception as exc:  # noqa: BLE001 - any import failure means: no ONNX Runtime
        return first_line(exc)
    return ""


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none), cut short."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _gpu_may_exist() -> bool:
    """A cheap guess, without importing torch, whether this machine might have a GPU torch can
    use: an NVIDIA or AMD driver, or Apple silicon. False means auto picks the CPU at once."""
    if sys.platform == "darwin":
        import platform  # only asked on macOS

        return platform.machine() == "arm64"
    if sys.platform.startswith("win"):
        import ctypes.util  # only asked on Windows

        return ctypes.util.find_library("nvcuda") is not None
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd"))


def _requested_device(requested: str | None) -> str:
    return (requested or os.environ.get(DEVICE_ENV, "") or "auto").strip().lower()


def resolve_device(requested: str | None = None) -> tuple[torch.device, str]:
    """Pick the torch device: argument, else ``$RCDNET_DEVICE``, else auto (CUDA > MPS > CPU).

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
    import torch  # only when a torch device is needed: the ONNX path stays torch-free

    req = _requested_device(requested)
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


def is_device_failure(exc: BaseException) -> bool:
    """True for errors that mean the GPU failed (out of memory, driver or runtime errors)."""
    import torch  # only asked after a torch backend failed: torch is loaded by then

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
class Placement:
    """Where an engine runs, chosen once by :func:`place`.

    Attributes
    ----------
    backend : str
        ``"onnx"`` (ONNX Runtime, always on the CPU) or ``"torch"``.
    device : torch.device or None
        The torch device of the torch backend; None on the ONNX backend.
    note : str
        Why the place differs from the one asked for, for the user; "" when it does not.
    """

    backend: str
    device: Any
    note: str = ""


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def place(device: str | None, backend: str | None, *, has_graphs: bool,
          torch_given: bool = False) -> Placement:
    """Choose the backend and the device together, once.

    Auto runs the bundle's ONNX graphs in ONNX Runtime when the engine runs on the CPU, the
    bundle has graphs (``has_graphs``) and onnxruntime can be imported; torch otherwise (CUDA,
    MPS). ``"onnx"`` always runs on the CPU. Without onnxruntime the model runs in torch and the
    note says so. A torch device is made (and torch imported) only when the request does not
    surely mean the CPU: ``torch_given`` (torch networks handed over), the torch backend, or
    a device other than ``cpu`` on a machine that may have a GPU.

    Raises
    ------
    ValueError
        An unknown device or backend, or ``backend="onnx"`` without graphs.
    InferenceError
        Torch is needed and not installed.
    """
    requested = resolve_backend(backend)
    req = _requested_device(device)
    surely_cpu = requested != "torch" and (
        req == "cpu" or (req == "auto" and (not torch_available() or not _gpu_may_exist())))
    torch_device, note = None, ""
    if torch_given or not surely_cpu:
        require_torch("running the model on a GPU or in PyTorch")
        torch_device, note = resolve_device(device)
    on_cpu = torch_device is None or torch_device.type == "cpu"

    def torch_backend(why: str, *more: str) -> Placement:
        if torch_device is None:
            require_torch(f"running the model ({why})")
            return Placement("torch", resolve_device("cpu")[0], _join(note, *more))
        return Placement("torch", torch_device, _join(note, *more))

    if requested == "torch":
        return torch_backend("the PyTorch backend was asked for")
    if requested == "auto" and (not has_graphs or not on_cpu):
        return torch_backend("the model card names no ONNX graphs")
    if not has_graphs:
        raise ValueError("the ONNX backend needs the model card's ONNX graphs and the "
                         "bundle folder that holds them (model_dir)")
    missing = onnxruntime_missing()
    if missing:
        return torch_backend(f"ONNX Runtime is not available ({missing})",
                             f"ONNX Runtime is not available ({missing}): the model runs in "
                             "PyTorch instead")
    if not on_cpu:
        note = _join(note, f"the ONNX backend runs on the CPU: {torch_device} is not used")
    return Placement("onnx", None, note)
