"""Helpers shared by the image readers (:mod:`.pillow`, :mod:`.dicom`).

- the budgets :data:`MAX_PIXELS_PER_FRAME`, :data:`MAX_FRAME_BYTES` and
  :data:`MAX_DATASET_BYTES` and the header checks that enforce them, with the frame-index
  check;
- conversion of any decoded array to the ``uint8`` ``(H, W)`` / ``(H, W, 3)`` the program uses;
- the wrapper that makes on-demand frame decoders raise only
  :class:`~rcdnet_desktop.core.errors.UnreadableImageError`, and the wording of unexpected
  library errors.

:mod:`rcdnet_desktop.core.io` re-exports :data:`MAX_PIXELS_PER_FRAME`; every reader reads the
budgets defined here at run time, so these are the names to change (or monkeypatch).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import UnreadableImageError
from .quiet import captured_library_output

MAX_PIXELS_PER_FRAME = 100_000_000
"""Refuse frames above 100 megapixels (checked from the header, before decoding).

Ultrasound frames are below 2 megapixels; 100 MP leaves room for scanned film and whole-slide
style exports while keeping one decoded RGB frame (300 MB) and its float working copies within
a desktop's memory. Pillow's own decompression-bomb limit (about 179 MP) is larger still.
"""

MAX_FRAME_BYTES = 512 * 2**20
"""Refuse frames that would take more than 512 MiB once decoded (checked before decoding).

Rows x Columns x Samples per Pixel x Bits Allocated / 8 for DICOM (and what a compressed frame's
own header claims); width x height x bands x bytes per sample for the other formats. A 100 MP
RGB frame of 8-bit samples (300 MB) passes; a small RLE or JPEG file whose header claims
gigabytes of 16-bit colour does not, whatever the codec.
"""

MAX_DATASET_BYTES = 2**30
"""The most bytes of one file held in memory at once: a deflated DICOM data set once inflated
(it is inflated piece by piece and refused as soon as it passes this), or a DICOM file that has
to be read whole because its frames cannot be read one by one."""

_MAX_REASON = 300  # characters of a library's own message kept in our reason

NOT_SUPPORTED = "not a supported image format (PNG, JPEG, BMP, TIFF or DICOM)"
"""The reason given for a file that no reader takes."""

NESTED_TOO_DEEP = ("the file is nested too deeply to be read (structures within structures, "
                   "thousands of levels deep, such as DICOM sequences: a damaged or "
                   "deliberately malformed file)")
"""The reason given when reading a file's structure runs out of recursion depth."""


# ----------------------------------------------------------------------------------------------
# size and frame checks, errors
# ----------------------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    """A reason in words for an unexpected library error (no exception names or error codes)."""
    if isinstance(exc, MemoryError):
        return "not enough memory to decode the image"
    if isinstance(exc, RecursionError):
        return NESTED_TOO_DEEP
    msg = plain(exc)
    low = msg.lower()
    if "decompression bomb" in low or "exceeds limit of" in low:
        return "image is too large: " + (_pixel_count(msg) or "more pixels than the limit") + (
            f"; the limit is {MAX_PIXELS_PER_FRAME // 1_000_000} megapixels per frame")
    if isinstance(exc, EOFError) or "truncat" in low or "end of file" in low or "eof" in low:
        return f"file is truncated ({msg})" if msg else "file is truncated"
    if isinstance(exc, OSError) and getattr(exc, "errno", None) and exc.strerror:
        return f"the file cannot be read ({exc.strerror.lower()})"
    if not msg:
        return "the file is damaged or not a valid image"
    return f"the file is damaged or not a valid image ({msg})"


# Library wording that means nothing to a user: removed from the reasons we pass on.
_JARGON = (
    (re.compile(r"libjpeg error code '?-?\d+'? returned from \w+\(\):\s*", re.I), ""),
    (re.compile(r"\[(?:Errno|WinError) -?\d+\]\s*"), ""),
    (re.compile(r"\bdecoder error -?\d+\b", re.I), "the image data could not be decoded"),
    (re.compile(r"\bencoder error -?\d+\b", re.I), "the image data could not be decoded"),
    (re.compile(r"\(\s*[0-9A-Fa-f]{4},\s*[0-9A-Fa-f]{4}\)\s*"), ""),  # DICOM tag numbers
    (re.compile(r"\b\w+(?:Error|Exception):\s*"), ""),
)


def plain(exc: BaseException | str) -> str:
    """A library's message, trimmed, without error codes, tag numbers or exception names."""
    msg = " ".join(str(exc).split())
    for pattern, repl in _JARGON:
        msg = pattern.sub(repl, msg)
    msg = msg.strip(" :;,-")
    return msg if len(msg) <= _MAX_REASON else msg[: _MAX_REASON - 3] + "..."


def _pixel_count(msg: str) -> str:
    m = re.search(r"\((\d+) pixels\)", msg)
    return f"{int(m.group(1)) / 1e6:.0f} megapixels" if m else ""


def check_budget(p: Path, width: int, height: int, bytes_per_pixel: float = 0) -> None:
    """Refuse a frame of ``width`` x ``height`` over the pixel budget or, given its decoded
    ``bytes_per_pixel`` (all samples), over :data:`MAX_FRAME_BYTES`."""
    n = int(width) * int(height)
    if n > MAX_PIXELS_PER_FRAME:
        raise UnreadableImageError(
            p,
            f"image is too large: {width} x {height} pixels ({n / 1e6:.0f} megapixels) per "
            f"frame; the limit is {MAX_PIXELS_PER_FRAME // 1_000_000} megapixels",
        )
    size = n * bytes_per_pixel
    if size > MAX_FRAME_BYTES:
        raise UnreadableImageError(
            p,
            f"image is too large: one {width} x {height} frame takes {mb(size)} once decoded; "
            f"the limit is {mb(MAX_FRAME_BYTES)}",
        )


def mb(n: float) -> str:
    """A byte count in words: "512 MB"."""
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 1024:,.0f} kB"


def check_frame(p: Path, frame: int, count: int, whole: str = "file") -> None:
    if frame >= count:
        raise UnreadableImageError(p, frame_out_of_range(frame, count, whole))


def frame_out_of_range(frame: int, count: int, whole: str = "file") -> str:
    """"frame 41 requested but the clip has 34 frames (1-34)" for the 0-based ``frame`` 40:
    frames are counted from 1 in every message; ``whole``: "clip" or "file"."""
    if count == 1:
        return f"frame {frame + 1} requested but the file has 1 frame"
    return f"frame {frame + 1} requested but the {whole} has {count} frames (1-{count})"


def guard_loader(
    p: Path, count: int, fn: Callable[[int], np.ndarray], whole: str = "file"
) -> Callable[[int], np.ndarray]:
    """Wrap a frame decoder so that it, too, raises only UnreadableImageError."""

    def load(index: int) -> np.ndarray:
        try:
            if not 0 <= int(index) < count:
                raise UnreadableImageError(p, frame_out_of_range(int(index), count, whole))
            with captured_library_output():
                return fn(int(index))
        except UnreadableImageError:
            raise
        except MemoryError:
            raise UnreadableImageError(p, f"frame {index}: not enough memory") from None
        except Exception as exc:
            raise UnreadableImageError(p, f"frame {index}: {describe(exc)}") from exc

    return load


# ----------------------------------------------------------------------------------------------
# pixel helpers
# ----------------------------------------------------------------------------------------------


def range_to_uint8(a: np.ndarray) -> np.ndarray:
    """Map an array linearly from its own min..max to 0..255 (constant -> zeros).

    Works in place on one float32 copy, so a large 16-bit frame needs its own size twice more,
    not five times.
    """
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    if a.size == 0:
        return np.zeros(a.shape, np.uint8)
    f = a.astype(np.float32)  # a copy: scaled in place below
    finite = np.isfinite(f)
    if not finite.all():
        f[~finite] = 0.0
    del finite
    lo, hi = float(f.min()), float(f.max())
    if not hi > lo:
        return np.zeros(a.shape, np.uint8)
    f -= np.float32(lo)
    f *= np.float32(255.0 / (hi - lo))
    f += np.float32(0.5)
    np.clip(f, 0, 255, out=f)
    return f.astype(np.uint8)


def finish(a: np.ndarray) -> np.ndarray:
    """uint8, C-contiguous, (H, W) or (H, W, 3); RGB with equal channels becomes (H, W)."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3:
        if a.shape[2] > 3:
            a = a[..., :3]
        if np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]):
            a = a[..., 0]
    if a.dtype != np.uint8:
        a = range_to_uint8(a)
    return np.ascontiguousarray(a)
