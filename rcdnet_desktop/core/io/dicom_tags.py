"""A DICOM file's header as rows of text: tag, keyword, VR and value, sequences nested.

For the viewer's tag panel. The header is read from the file when asked, without the pixel
data (``stop_before_pixels``); binary values and very long text are abbreviated so that a
table of them stays readable. pydicom is imported only here, when a header is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UnreadableImageError

MAX_VALUE_CHARS = 160
"""Longer values are cut, and say how long they were."""

BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
PIXEL_DATA_NOTE = "not shown (the image itself)"


@dataclass(frozen=True)
class TagRow:
    """One row of the header: ``depth`` 0 for the data set, 1 inside a sequence item, ..."""

    depth: int
    tag: str
    keyword: str
    vr: str
    value: str

    def matches(self, text: str) -> bool:
        """Whether ``text`` (any case) is in the tag, keyword, VR or value."""
        needle = text.strip().lower()
        return not needle or any(needle in f.lower() for f in
                                 (self.tag, self.keyword, self.vr, self.value))


def header_rows(path: str | os.PathLike[str]) -> list[TagRow]:
    """The file's meta information and data set, row by row, without the pixel data.

    Raises
    ------
    UnreadableImageError
        The file cannot be read as DICOM (the reason in words).
    """
    import pydicom

    p = Path(path)
    try:
        ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
        rows = list(_rows(getattr(ds, "file_meta", None) or [], 0))
        rows += list(_rows(ds, 0))
    except Exception as exc:  # the panel says why; it never takes the viewer down
        raise UnreadableImageError(p, f"the DICOM header cannot be read ({exc})") from None
    if rows and any(r.keyword == "Rows" for r in rows):
        rows.append(TagRow(0, "(7FE0,0010)", "PixelData", "", PIXEL_DATA_NOTE))
    return rows


def _rows(elements: Any, depth: int) -> Iterator[TagRow]:
    for elem in elements:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        keyword = elem.keyword or (elem.name if elem.tag.is_private else "")
        vr = str(elem.VR or "")
        if vr == "SQ":
            items = list(elem.value or [])
            yield TagRow(depth, tag, keyword, vr, f"{len(items)} item{'s' * (len(items) != 1)}")
            for i, item in enumerate(items, 1):
                yield TagRow(depth + 1, "", f"Item {i}", "", "")
                yield from _rows(item, depth + 2)
            continue
        yield TagRow(depth, tag, keyword, vr, value_text(elem))


def value_text(elem: Any) -> str:
    """An element's value as short text: binary data by its size, long text cut."""
    vr = str(elem.VR or "")
    value = elem.value
    if vr in BINARY_VRS or isinstance(value, (bytes, bytearray)):
        size = len(value) if value is not None else 0
        return f"binary data, {size} bytes"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    text = text.replace("\r", " ").replace("\n", " ")
    if len(text) > MAX_VALUE_CHARS:
        text = f"{text[:MAX_VALUE_CHARS]}... ({len(text)} characters)"
    return text


__all__ = ["MAX_VALUE_CHARS", "PIXEL_DATA_NOTE", "TagRow", "header_rows", "value_text"]
