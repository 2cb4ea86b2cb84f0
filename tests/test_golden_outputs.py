"""Golden outputs of ``rcdnet classify``: what the program writes must not change by accident.

``main([...])`` classifies the bundled samples and frame 3 of pydicom's YBR cine
(``examples_ybr_color.dcm``) with ``--csv`` and every ``--export`` format, and each output is
compared with its golden in ``tests/golden/``:

- the CSV text and the command's standard output and error, exactly;
- each PNG's decoded pixels (shape, and the means of 32 x 32 blocks, which may differ by at
  most one grey level: a CPU with other vector instructions rounds the network's last digits
  differently, which moves a few heat-map pixels by one colour step and nothing more, while
  any change of a panel, a box, a map or the text moves whole blocks) and its text chunks;
- each PDF's page content stream (every string drawn and where), its embedded images' sizes
  (their pixels are the PNG's) and its document information minus the dates. Decompressed, so a
  different zlib does not count as a change, while any change of text or layout does;
- each DICOM file (SC and SR), element by element, UIDs, dates, times and the
  instance-creation fields left out (they differ on every run); pixel data as block means, as
  for the PNG.

The clock the command reads is fixed, so the date printed on the reports is the same each run.

A deliberate change of the outputs is recorded by regenerating the goldens, then reviewing
their diff before committing it::

    RCDNET_UPDATE_GOLDENS=1 pytest tests/test_golden_outputs.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from rcdnet_desktop import cli

GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
UPDATE = os.environ.get("RCDNET_UPDATE_GOLDENS") == "1"

# Elements that differ on every run: identifiers made afresh, the moment of writing, and the
# file meta group's length (it counts the new UIDs, whose length varies).
_VOLATILE_VRS = {"UI", "DA", "DT", "TM"}
_VOLATILE_KEYWORDS = {"InstanceCreationDate", "InstanceCreationTime", "InstanceCreatorUID",
                      "ContentDate", "ContentTime", "FileMetaInformationGroupLength"}
_PNG_VOLATILE_KEYS = {"Creation Time", "CreationTime"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


BLOCK = 32
BLOCK_TOLERANCE = 1.0
"""Grey levels a block mean may move (see the module's docstring)."""


def _blocks(pixels: np.ndarray) -> list:
    """Means of ``BLOCK`` x ``BLOCK`` blocks (per channel), rounded to 0.01."""
    a = np.asarray(pixels, dtype=np.float64)
    a = a if a.ndim == 3 else a[..., None]
    h, w = (a.shape[0] // BLOCK) * BLOCK, (a.shape[1] // BLOCK) * BLOCK
    m = a[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, a.shape[2]).mean(axis=(1, 3))
    return np.round(m, 2).tolist()


def _png_digest(path: Path) -> dict:
    with Image.open(path) as im:
        text = {k: v for k, v in im.text.items() if k not in _PNG_VOLATILE_KEYS}
        pixels = np.asarray(im)
    return {"shape": list(pixels.shape), "dtype": str(pixels.dtype),
            "blocks": _blocks(pixels), "text": text}


_STREAM = re.compile(rb"obj\s*<<(.*?)>>\s*stream\r?\n", re.S)
_INFO_VOLATILE = re.compile(rb"/(CreationDate|ModDate) \(D:[^)]*\)")


def _pdf_digest(path: Path) -> dict:
    """The PDF's decoded streams: page content as text, images as hashes, and its info."""
    data = path.read_bytes()
    content: list[str] = []
    images: list[str] = []
    for match in _STREAM.finditer(data):
        head = match.group(1)
        length = int(re.search(rb"/Length (\d+)", head).group(1))
        body = data[match.end():match.end() + length]
        if b"/FlateDecode" in head:
            body = zlib.decompress(body)
        if b"/Subtype /Image" in head:
            images.append(len(body))
        else:
            content.append(body.decode("latin-1"))
    info = re.search(rb"<<[^<>]*/Producer[^<>]*>>", data)
    info_text = _INFO_VOLATILE.sub(b"", info.group(0)).decode("latin-1") if info else ""
    return {"info": info_text, "content": content, "image_bytes": images}


def _dataset_digest(ds) -> dict:
    out: dict = {}
    for elem in ds:
        if elem.VR in _VOLATILE_VRS or elem.keyword in _VOLATILE_KEYWORDS:
            continue
        key = elem.keyword or str(elem.tag)
        if elem.VR == "SQ":
            out[key] = [_dataset_digest(item) for item in elem.value]
        elif key == "PixelData":
            out[key] = {"length": len(elem.value), "blocks": _blocks(ds.pixel_array)}
        elif isinstance(elem.value, bytes):
            out[key] = {"sha256": _sha(elem.value), "length": len(elem.value)}
        else:
            out[key] = str(elem.value)
    return out


def _dicom_digest(path: Path) -> dict:
    ds = pydicom.dcmread(path)
    return {"file_meta": _dataset_digest(ds.file_meta), "dataset": _dataset_digest(ds)}


_DIGESTS = {".png": _png_digest, ".pdf": _pdf_digest, ".dcm": _dicom_digest}


class _FixedClock(datetime):
    """The moment every golden report shows, whatever the machine's clock and time zone."""

    @classmethod
    def now(cls, tz=None):
        return cls(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def astimezone(self, tz=None):
        return self if tz is None else super().astimezone(tz)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, str]:
    """Run the command once; every output as golden text, keyed by its golden file name."""
    work = tmp_path_factory.mktemp("golden")
    inputs = work / "in"
    inputs.mkdir()
    for png in sorted(SAMPLES.glob("*.png")):
        shutil.copy(png, inputs / png.name)
    shutil.copy(get_testdata_file("examples_ybr_color.dcm"), inputs / "examples_ybr_color.dcm")
    out_dir = work / "out"
    cwd = Path.cwd()
    os.chdir(work)  # relative paths in the CSV, the same on every machine
    clock = pytest.MonkeyPatch()
    clock.setattr("rcdnet_desktop.cli_outputs.datetime", _FixedClock)
    try:
        import contextlib
        import io

        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = cli.main(["classify", *sorted(str(p.relative_to(work))
                                                 for p in inputs.iterdir()),
                               "--device", "cpu", "--frame", "3", "--csv", "rows.csv",
                               "--export", "png", "--export", "pdf", "--export", "dicom",
                               "--export", "sr", "--export-dir", "out"])
    finally:
        os.chdir(cwd)
        clock.undo()
    results = {
        "status.txt": f"{status}\n",
        "stdout.txt": stdout.getvalue(),
        "stderr.txt": stderr.getvalue(),
        "rows.csv": (work / "rows.csv").read_text(encoding="utf-8"),
    }
    for path in sorted(out_dir.iterdir()):
        digest = _DIGESTS[path.suffix](path)
        results[path.name + ".json"] = json.dumps(digest, sort_keys=True) + "\n"
    return results


def _same(got, want, where: str) -> None:
    """Equal, but for block means, which may differ by :data:`BLOCK_TOLERANCE`."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for k in want:
            if k == "blocks":
                g, w = np.asarray(got[k]), np.asarray(want[k])
                assert g.shape == w.shape, f"{where}: pixel blocks {g.shape} != {w.shape}"
                worst = float(np.abs(g - w).max()) if g.size else 0.0
                assert worst <= BLOCK_TOLERANCE, f"{where}: a pixel block moved by {worst:.2f}"
            else:
                _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    elif _number(got) is not None and _number(want) is not None:
        # A value printed with six decimals (P in the SR) may differ in its last digit where
        # the network's float rounding differs; anything larger is a change.
        assert abs(_number(got) - _number(want)) <= 2e-6, f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def _number(value) -> float | None:
    try:
        return float(value) if isinstance(value, str) and "." in value else None
    except ValueError:
        return None


def test_outputs_match_goldens(outputs):
    if UPDATE:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        GOLDEN.mkdir()
        for name, text in outputs.items():
            with open(GOLDEN / name, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
    expected = sorted(p.name for p in GOLDEN.iterdir())
    assert sorted(outputs) == expected, "a different set of files was written"
    for name in expected:
        with open(GOLDEN / name, encoding="utf-8", newline="") as fh:
            want = fh.read()
        if name.endswith(".json"):
            _same(json.loads(outputs[name]), json.loads(want), name)
        else:
            assert outputs[name] == want, name
