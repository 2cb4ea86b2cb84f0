"""Which bundle the installed torch can make: ``cpu`` or ``cuda`` (printed when run).

Used by ``rcdnet.spec`` and ``packaging/build``. A torch wheel from PyPI for Linux depends on
``nvidia-*`` packages (CUDA libraries, about 4 GB) and cannot be imported without them, so a
CPU-only bundle needs the CPU wheel (``torch==X+cpu`` from download.pytorch.org/whl/cpu).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path


def torch_needs_cuda() -> bool:
    """True when the installed torch is a CUDA build (needs CUDA libraries to import)."""
    from packaging.requirements import Requirement

    dist = metadata.distribution("torch")
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
    """``cuda`` or ``cpu``, from the installed torch."""
    return "cuda" if torch_needs_cuda() else "cpu"


if __name__ == "__main__":
    print(flavour())
