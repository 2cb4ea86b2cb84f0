"""The Pillow reader: PNG / JPEG / BMP / TIFF / GIF / WebP -> :class:`ImageRecord`.

:class:`PillowReader` is one of :data:`rcdnet_desktop.core.io.READERS`; see that module for
what every reader returns. Multi-page TIFF and animated GIF decode one
frame at a time; 16-bit colour samples are read with OpenCV (Pillow keeps only 8 of them).

Files are opened by :func:`open_pillow`, which asks Pillow's format plugins to read the header
only and leaves the size check to :func:`~.pixels.check_budget` (our budget, stricter than
Pillow's decompression-bomb limit, and said in our words). libtiff's complaints about damaged
TIFF files, written below Python, are kept off standard error while a TIFF frame decodes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..types import ImageRecord
from .files import open_regular
from .pixels import check_budget, check_frame, finish, guard_loader
from .quiet import captured_library_output

# Pillow formats we accept. Restricting Image.open keeps exotic plugins (EPS runs Ghostscript)
# out of a viewer that opens whatever a user drops on it.
PIL_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "TIFF", "GIF", "WEBP")
PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".tif", ".tiff",
                   ".gif", ".webp", ".apng")
"""Suffixes of the :data:`PIL_FORMATS` files (the files themselves are recognised by content)."""


class PillowReader:
    """The Pillow reader: takes every file Pillow recognises as one of :data:`PIL_FORMATS`."""

    label = "PNG, JPEG, BMP, TIFF, GIF, WebP"
    suffixes = PILLOW_SUFFIXES

    def can_read(self, path: Path, head: bytes) -> bool:
        # Pillow recognises its formats by content (reading the header only).
        try:
            with open_pillow(path):
                return True
        except UnidentifiedImageError:
            return False

    def read(self, path: Path, frame: int) -> ImageRecord:
        with open_pillow(path) as im:
            return read_pillow(path, im, frame)


def open_pillow(path: Path) -> Image.Image:
    """Open ``path`` as one of :data:`PIL_FORMATS`, reading its header only.

    Like ``Image.open(path, formats=PIL_FORMATS)`` without Pillow's decompression-bomb check
    (its warning and its "DOS attack" error): :func:`read_pillow` checks the size against our
    own budget before anything is decoded.

    Raises
    ------
    PIL.UnidentifiedImageError
        None of the formats recognises the file.
    """
    Image.init()
    fh = open_regular(path)
    try:
        prefix = fh.read(16)
        for fmt in PIL_FORMATS:
            factory, accept = Image.OPEN.get(fmt, (None, None))
            known = factory is not None and (accept is None or accept(prefix))
            if not known or isinstance(known, str):  # a str: "known, but not installed"
                continue
            fh.seek(0)
            try:
                im = factory(fh, str(path))
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue  # not this format after all
            im._exclusive_fp = True  # closing the image closes fh, as Image.open(path) does
            return im
    except BaseException:
        fh.close()
        raise
    fh.close()
    raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}")


def _rawmode(im: Image.Image) -> str:
    try:
        args = im.tile[0][3] if im.tile else ""
    except Exception:
        return ""
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _pil_bits(im: Image.Image, rawmode: str) -> int:
    if im.mode.startswith("I;16") or ";16" in rawmode:
        return 16
    if im.mode in ("I", "F"):
        return 32
    if im.mode == "1":
        return 1
    return 8


def _bytes_per_pixel(im: Image.Image) -> float:
    """Decoded bytes per pixel of the image's mode, all bands (16-bit colour read whole)."""
    bands = len(im.getbands())
    if im.mode.startswith("I;16") or ";16" in _rawmode(im):
        return 2.0 * bands
    if im.mode in ("I", "F"):
        return 4.0 * bands
    return 1.0 * bands


def read_pillow(p: Path, im: Image.Image, frame: int) -> ImageRecord:
    fmt = im.format or ""
    width, height = im.size
    check_budget(p, width, height, _bytes_per_pixel(im))
    count = max(1, int(getattr(im, "n_frames", 1) or 1))
    check_frame(p, frame, count)
    rawmode = _rawmode(im)
    photometric = im.mode
    bits = _pil_bits(im, rawmode)
    pixels = _pillow_frame(p, im, frame)
    loader = None
    if count > 1:

        def decode(i: int) -> np.ndarray:
            with open_pillow(p) as im2:
                return _pillow_frame(p, im2, i)

        loader = guard_loader(p, count, decode)
    return ImageRecord(
        path=p,
        pixels=pixels,
        frame_count=count,
        source_format=fmt,
        bits_stored=bits,
        photometric=photometric,
        pixels_frame=frame,
        frame_loader=loader,
    )


def _pillow_frame(p: Path, im: Image.Image, index: int) -> np.ndarray:
    if index:
        im.seek(index)
    rawmode = _rawmode(im)
    mode = im.mode
    if index == 0 and ";16" in rawmode and mode in ("RGB", "RGBA", "RGBX", "LA"):
        # Pillow keeps only the high byte of 16-bit colour samples: 12-bit data stored in 16
        # bits would turn almost black. OpenCV decodes all 16 bits; map them by their range.
        a = _read_16bit_colour(p)
        if a is not None:
            return finish(a)
    with captured_library_output(stderr=im.format == "TIFF"):  # libtiff writes to fd 2
        im.load()  # raises on truncated / damaged data
    orientation = 1
    try:
        orientation = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        orientation = 1
    if orientation in range(2, 9):
        im = ImageOps.exif_transpose(im)
        mode = im.mode
    if mode == "1":
        a = np.asarray(im.convert("L"))
    elif mode in ("L", "RGB"):
        a = np.asarray(im)
    elif mode in ("LA", "La"):
        a = np.asarray(im.getchannel(0))
    elif mode in ("RGBA", "RGBX"):
        a = np.asarray(im)[..., :3]
    elif mode in ("P", "PA"):
        a = np.asarray(im.convert("RGBA"))[..., :3]
    elif mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im)
        if a.dtype.byteorder not in ("=", "|"):
            a = a.astype(a.dtype.newbyteorder("="))
    else:  # CMYK, YCbCr, LAB, HSV, RGBa
        a = np.asarray(im.convert("RGB"))
    return finish(a)


def _read_16bit_colour(p: Path) -> np.ndarray | None:
    import cv2  # lazy: only 16-bit colour PNG/TIFF need it

    with open_regular(p) as fh:  # imdecode, not imread: non-ASCII paths on Windows
        data = np.frombuffer(fh.read(), dtype=np.uint8)
    a = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if a is None:
        return None
    if a.ndim == 3 and a.shape[2] >= 3:
        a = a[..., 2::-1]  # BGR(A) -> RGB, alpha ignored
    elif a.ndim == 3 and a.shape[2] == 2:
        a = a[..., 0]
    return a
