"""Helpers shared by the image readers (:mod:`.pillow`, :mod:`.dicom`).

- the per-frame pixel budget :data:`MAX_PIXELS_PER_FRAME` and the header checks that enforce
  it, with the frame-index check;
- conversion of any decoded array to the ``uint8`` ``(H, W)`` / ``(H, W, 3)`` the program uses;
- the wrapper that makes on-demand frame decoders raise only
  :class:`~rcdnet_desktop.core.errors.UnreadableImageError`, and the wording of unexpected
  library errors.

:mod:`rcdnet_desktop.core.io` re-exports :data:`MAX_PIXELS_PER_FRAME`; every reader reads the
value defined here at run time, so this is the name to change (or monkeypatch).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import UnreadableImageError

MAX_PIXELS_PER_FRAME = 100_000_000
"""Refuse frames above 100 megapixels (checked from the header, before decoding).

Ultrasound frames are below 2 megapixels; 100 MP leaves room for scanned film and whole-slide
style exports while keeping one decoded RGB frame (300 MB) and its float working copies within
a desktop's memory. Pillow's own decompression-bomb limit (about 179 MP) is larger still.
"""

_MAX_REASON = 300  # characters of a library's own message kept in our reason

NOT_SUPPORTED = "not a supported image format (PNG, JPEG, BMP, TIFF or DICOM)"
"""The reason given for a file that no reader takes."""


# ----------------------------------------------------------------------------------------------
# size and frame checks, errors
# ----------------------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    """A reason in words for an unexpected library error."""
    msg = trim(exc)
    low = msg.lower()
    if isinstance(exc, EOFError) or "truncat" in low or "end of file" in low or "eof" in low:
        return f"file is truncated ({msg})" if msg else "file is truncated"
    return f"the file is damaged or not a valid image ({type(exc).__name__}: {msg})"


def trim(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return msg if len(msg) <= _MAX_REASON else msg[: _MAX_REASON - 3] + "..."


def check_budget(p: Path, width: int, height: int) -> None:
    n = int(width) * int(height)
    if n > MAX_PIXELS_PER_FRAME:
        raise UnreadableImageError(
            p,
            f"image is too large: {width} x {height} pixels ({n / 1e6:.0f} megapixels) per "
            f"frame; the limit is {MAX_PIXELS_PER_FRAME // 1_000_000} megapixels",
        )


def check_frame(p: Path, frame: int, count: int) -> None:
    if frame >= count:
        raise UnreadableImageError(
            p, f"frame {frame} does not exist: the file has {count} frame{'s' * (count != 1)}"
        )


def guard_loader(
    p: Path, count: int, fn: Callable[[int], np.ndarray]
) -> Callable[[int], np.ndarray]:
    """Wrap a frame decoder so that it, too, raises only UnreadableImageError."""

    def load(index: int) -> np.ndarray:
        try:
            if not 0 <= int(index) < count:
                raise UnreadableImageError(
                    p, f"frame {index} does not exist: the file has {count} frames"
                )
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
    """Map an array linearly from its own min..max to 0..255 (constant -> zeros)."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    f = a.astype(np.float32, copy=False)
    finite = np.isfinite(f)
    if not finite.all():
        f = np.where(finite, f, 0.0).astype(np.float32)
    if f.size == 0:
        return np.zeros(a.shape, np.uint8)
    lo, hi = float(f.min()), float(f.max())
    if not hi > lo:
        return np.zeros(a.shape, np.uint8)
    out = (f - lo) * np.float32(255.0 / (hi - lo)) + np.float32(0.5)
    return np.clip(out, 0, 255).astype(np.uint8)


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
