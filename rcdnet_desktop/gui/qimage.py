"""numpy <-> QImage conversion and the display-only window/level mapping."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def to_qimage(pixels: np.ndarray) -> QImage:
    """Return a QImage that owns a copy of a uint8 (H, W) grey or (H, W, 3|4) RGB(A) array."""
    a = np.ascontiguousarray(pixels)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = np.ascontiguousarray(a[..., 0])
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    elif a.shape[2] == 3:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    elif a.shape[2] == 4:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGBA8888)
    else:
        raise ValueError(f"cannot show an image of shape {a.shape}")
    return img.copy()  # detach from the numpy buffer


def to_pixmap(pixels: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(to_qimage(pixels))


def qimage_to_array(image: QImage) -> np.ndarray:
    """A (H, W, 3) uint8 RGB copy of ``image`` (for tests and exports)."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h)
    return buf.reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def window_level(pixels: np.ndarray, window: float, level: float) -> np.ndarray:
    """Map uint8 ``pixels`` through a display window (width, centre), both in 0-255 units.

    Display only: the model always sees the original pixels. ``window=255, level=127.5``
    is the identity.
    """
    window = max(float(window), 1.0)
    lo = float(level) - window / 2.0
    lut = np.clip(np.rint((np.arange(256, dtype=np.float32) - lo) * (255.0 / window)), 0, 255)
    return lut.astype(np.uint8)[pixels]


DEFAULT_WINDOW = 255.0
DEFAULT_LEVEL = 127.5


def downscale(a: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy of image or map ``a`` no larger than ``max_side`` on its long side, and the scale.

    Area-averaged (OpenCV's ``INTER_AREA``); ``a`` itself, with scale 1, when it already fits.
    Used for everything the viewer only shows (the main image, the evidence panels, heat maps
    over the image): a large image is never turned into a full-size pixmap.
    """
    h, w = a.shape[:2]
    scale = min(1.0, max_side / max(h, w, 1))
    if scale >= 1.0:
        return a, 1.0
    import cv2  # only for images that need it (it costs start-up time)

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(a, size, interpolation=cv2.INTER_AREA)), scale
