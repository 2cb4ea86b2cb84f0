"""One local Ray with 2 CPUs per test module that asks for it (``ray_local``), stopped at the
module's end; the Orthanc of tests/pacs for the DICOMweb source. Tests that need Ray are
skipped, saying why, when the extra ``[cluster]`` is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli_helpers import speckle_png
from tests.conftest import SAMPLES
from tests.pacs.conftest import orthanc, pydicom_data_file, web_node  # noqa: F401

RAY_CPUS = 2


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with 2 CPUs for the module; shut down after its last test."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install "
                                            "'rcdnet-desktop[cluster]')")
    from rcdnet_desktop.archive.cluster import start, stop

    if ray.is_initialized():  # pragma: no cover - a test left one running
        stop()
    try:
        start(None, RAY_CPUS)
    except Exception:  # Ray gives its node 30 s to start, which a saturated machine can miss
        stop()
        start(None, RAY_CPUS)
    try:
        yield ray
    finally:
        stop()


def image_folder(folder: Path, speckles: int = 6) -> Path:
    """Distinct images: speckle PNGs, the two bundled samples, a DICOM ultrasound image from
    pydicom-data in a sub-folder, and one file that is no image at all."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(speckles):
        speckle_png(folder / f"speckle_{i}.png", seed=i)
    for sample in sorted(SAMPLES.glob("*.png")):
        shutil.copy(sample, folder / sample.name)
    (folder / "study").mkdir(exist_ok=True)
    shutil.copy(pydicom_data_file("US1_UNCR.dcm"), folder / "study" / "US1_UNCR.dcm")
    (folder / "broken.png").write_bytes(b"this is not a PNG")
    return folder
