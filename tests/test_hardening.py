"""Huge images: refused from their header, without allocating the pixels, also in the batch.

tests/core/test_io.py and test_io_dicom.py already refuse a PNG and a DICOM whose header claims
20000 x 20000 pixels, measuring Python-level allocations with tracemalloc. tracemalloc does
not see memory that Pillow, pylibjpeg or OpenJPEG allocate in C, so the checks here read the
files in a child process whose address space is capped a few hundred MiB above what it uses
after importing the reader: a decoder that tried to allocate a 20000 x 20000 frame would fail
there with "not enough memory" instead of the header's "too large". They also cover what the
core tests do not: JPEG headers, DICOM files whose compressed frame (JPEG, JPEG 2000) claims a
larger image than the DICOM header does, and the batch path.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop.core.batch import review

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate, generate_frames  # noqa: E402
from pydicom.uid import (  # noqa: E402
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    UltrasoundImageStorage,
    generate_uid,
)

REPO = Path(__file__).resolve().parents[1]
HEADROOM_MIB = 300  # a 20000 x 20000 grey frame needs 381 MiB, an RGB one 1144 MiB
posix_only = pytest.mark.skipif(
    sys.platform != "linux", reason="address-space cap (RLIMIT_AS) as Linux applies it"
)


# ----------------------------------------------------------------------------------------------
# files with lying headers
# ----------------------------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A PNG (RGB) whose IHDR claims width x height, with a tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int, rgb: bool = False) -> bytes:
    """A small valid baseline JPEG whose SOF0 then claims width x height."""
    rng = np.random.default_rng(5)
    arr = rng.integers(0, 255, (64, 64, 3) if rgb else (64, 64), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")  # FFC0, length (2), precision (1), height (2), width (2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def us_dataset(arr: np.ndarray) -> Dataset:
    """An uncompressed ultrasound data set holding ``arr`` (grey, or RGB when 3-D)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "US"
    ds.set_pixel_data(arr, "MONOCHROME2" if arr.ndim == 2 else "RGB", 8)
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def dicom_claiming(path: Path, rows: int, cols: int) -> Path:
    """Native DICOM whose Rows/Columns claim rows x cols over 64 x 64 pixels of data."""
    ds = us_dataset(np.zeros((64, 64), np.uint8))
    ds.Rows, ds.Columns = rows, cols
    return _save(ds, path)


def dicom_jpeg_frame_claiming(path: Path, width: int, height: int) -> Path:
    """64 x 64 DICOM (JPEG baseline) whose JPEG frame claims width x height."""
    ds = us_dataset(np.zeros((64, 64), np.uint8))
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([jpeg_claiming(width, height)])
    ds["PixelData"].VR = "OB"
    return _save(ds, path)


def dicom_j2k_frame_claiming(path: Path, size: int) -> Path:
    """64 x 64 DICOM (JPEG 2000) whose codestream's SIZ claims size x size pixels and tiles."""
    ds = us_dataset(np.zeros((64, 64), np.uint8))
    ds.set_pixel_data(
        np.random.default_rng(2).integers(0, 255, (64, 64), np.uint8), "MONOCHROME2", 8
    )
    ds.compress(JPEG2000Lossless)
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    siz = frame.index(b"\xff\x51")  # FF51 Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz
    frame[siz + 6 : siz + 14] = struct.pack(">II", size, size)
    frame[siz + 22 : siz + 30] = struct.pack(">II", size, size)
    ds.PixelData = encapsulate([bytes(frame)])
    return _save(ds, path)


# ----------------------------------------------------------------------------------------------
# reading under an address-space cap
# ----------------------------------------------------------------------------------------------

_CHILD = r"""
import json, resource, sys, time
from rcdnet_desktop.core.errors import UnreadableImageError
from rcdnet_desktop.core.io import read_image
import pydicom.pixels, PIL.Image  # everything the reader imports lazily, before the cap
try:
    import libjpeg, openjpeg  # noqa: F401
except ImportError:
    pass

def vm_bytes(field="VmSize:"):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) * 1024

headroom, absolute = int(sys.argv[1]), sys.argv[2] == "absolute"
cap = (0 if absolute else vm_bytes()) + headroom * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
for path in sys.argv[3:]:
    t0 = time.perf_counter()
    try:
        rec = read_image(path)
        out = {"result": "read", "shape": list(rec.pixels.shape), "notes": list(rec.notes)}
    except UnreadableImageError as exc:
        out = {"result": "refused", "reason": exc.reason, "message": str(exc)}
    except BaseException as exc:
        out = {"result": type(exc).__name__, "reason": str(exc)[:300]}
    # VmHWM, not ru_maxrss: the latter can keep the forking parent's peak across exec.
    out.update(path=path, seconds=round(time.perf_counter() - t0, 2),
               peak_rss_mib=vm_bytes("VmHWM:") // 2**20)
    print(json.dumps(out), flush=True)
"""


def read_capped(paths: list[Path], timeout: float = 60) -> dict[str, dict]:
    """read_image each path in a child whose address space is capped; name -> outcome."""
    return run_capped(paths, timeout)[0]


def run_capped(paths: list[Path], timeout: float = 60, headroom_mib: int = HEADROOM_MIB,
               absolute: bool = False) -> tuple[dict[str, dict], str]:
    """read_image each path in a child whose address space is capped: name -> outcome (result,
    reason, message, notes, seconds, peak_rss_mib), and what the child wrote to stderr.

    The cap is ``headroom_mib`` above what the child uses after its imports, or, with
    ``absolute``, ``headroom_mib`` in all.
    """
    env = dict(
        os.environ,
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(headroom_mib), "absolute" if absolute else "relative",
         *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(paths), f"child exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    return {Path(r["path"]).name: r for r in rows}, proc.stderr


@posix_only
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_huge_headers_refused_without_allocating_even_in_c(tmp_path):
    files = {
        "png_20000.png": png_claiming(20000, 20000),
        "png_12000x9000.png": png_claiming(12000, 9000),  # under Pillow's limit, over ours
        "jpeg_20000.jpg": jpeg_claiming(20000, 20000),
        "jpeg_rgb_12000x9000.jpg": jpeg_claiming(12000, 9000, rgb=True),
        "jpeg_65535.jpg": jpeg_claiming(65535, 65535),  # the largest a JPEG header can say
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    paths.append(dicom_claiming(tmp_path / "dicom_20000.dcm", 20000, 20000))
    paths.append(dicom_claiming(tmp_path / "dicom_65535.dcm", 65535, 65535))

    got = read_capped(paths)
    for p in paths:
        r = got[p.name]
        assert r["result"] == "refused", r
        assert "too large" in r["reason"] and "megapixels" in r["reason"], r
        assert r["peak_rss_mib"] < 400, r  # a decode would take GBs: refused before decoding


@posix_only
def test_compressed_frame_larger_than_its_header_is_refused_cheaply(tmp_path):
    """The decoders allocate what the compressed frame claims, not what Rows/Columns say.

    Before core.io checked the frame's own SOF / SIZ size, a 64 x 64 DICOM whose frame claimed
    20000 x 20000 was decoded at 400 MP (25-40 s, about 2 GB) before failing, and one claiming
    9000 x 9000 (under the pixel budget) at 81 MP (8 s, 440 MB).
    """
    pytest.importorskip("openjpeg")
    cases = {
        dicom_jpeg_frame_claiming(tmp_path / "jpeg_frame_20000.dcm", 20000, 20000): "20000",
        dicom_j2k_frame_claiming(tmp_path / "j2k_frame_20000.dcm", 20000): "20000",
        dicom_jpeg_frame_claiming(tmp_path / "jpeg_frame_9000.dcm", 9000, 9000): "9000",
        dicom_j2k_frame_claiming(tmp_path / "j2k_frame_9000.dcm", 9000): "9000",
    }
    got = read_capped(list(cases))
    for p, size in cases.items():
        r = got[p.name]
        assert r["result"] == "refused", r
        # Refused for its size, saying so; not a decoder giving up under the cap (the JPEG
        # decoder then says "Out of free memory", OpenJPEG "failed to create the input stream").
        assert size in r["reason"], r
        assert r["peak_rss_mib"] < 400, r  # a decode would take GBs: refused before decoding


# ----------------------------------------------------------------------------------------------
# the batch path
# ----------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_batch_fails_huge_files_and_classifies_the_rest(engine, tmp_path):
    (tmp_path / "a_huge.png").write_bytes(png_claiming(20000, 20000))
    (tmp_path / "b_huge.jpg").write_bytes(jpeg_claiming(12000, 9000))
    dicom_claiming(tmp_path / "c_huge.dcm", 20000, 20000)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128), np.uint8)).save(
        tmp_path / "d_ok.png"
    )

    items = list(review([tmp_path], engine))

    assert [i.path.name for i in items] == ["a_huge.png", "b_huge.jpg", "c_huge.dcm", "d_ok.png"]
    assert [i.status for i in items] == ["failed", "failed", "failed", "ok"]
    for it in items[:3]:
        assert it.path.name in it.error and "too large" in it.error, it.error
