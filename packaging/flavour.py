"""Which bundle the installed packages make: ``cpu`` or ``cuda`` (printed when run).

Used by ``rcdnet.spec`` and ``packaging/build``; reads package metadata only and never imports
torch. The CPU bundle runs the ONNX graphs on ONNX Runtime and holds no torch at all, so a venv
without torch (or with a CPU-only torch, which the CPU bundle leaves out) gives ``cpu``. A torch
wheel from PyPI for Linux depends on ``nvidia-*`` packages (CUDA libraries, about 4 GB) and
gives ``cuda``: that bundle keeps torch, its CUDA libraries and pytorch-grad-cam.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path


def torch_version() -> str | None:
    """The installed torch's version, or None when torch is not installed."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def torch_needs_cuda() -> bool:
    """True when the installed torch is a CUDA build (needs CUDA libraries to import)."""
    from packaging.requirements import Requirement

    try:
        dist = metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        return False
    if "+cpu" in dist.version:
        return False
    for text in dist.requires or []:
        req = Requirement(text)
        if req.name.startswith("nvidia-") and (req.marker is None or req.marker.evaluate()):
            return True
    # Wheels from download.pytorch.org/whl/cuXXX carry their CUDA libraries inside torch/lib.
    lib = Path(str(dist.locate_file("torch"))) / "lib"
    return any(lib.glob("libtorch_cuda*")) or any(lib.glob("torch_cuda*.dll"))


def flavour() -> str:
    """``cuda`` when a CUDA torch is installed, else ``cpu`` (ONNX Runtime, no torch)."""
    return "cuda" if torch_needs_cuda() else "cpu"


if __name__ == "__main__":
    print(flavour())
