"""Small numeric files of a bundle (the input guard's, the lexicon's): written as uncompressed,
deterministic ``.npz`` bytes, read back only after their sha256 matches the model card's, and
parsed without pickles."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rcdnet_desktop.core.errors import WeightsError


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The file's bytes (uncompressed ``.npz``, the same bytes for the same arrays)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            item = io.BytesIO()
            np.lib.format.write_array(item, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, item.getvalue())
    return buf.getvalue()


def read_verified(path: Path, sha256: str, what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path`` as float64, after its sha256 is checked against
    the model card's. ``what`` names the file for the user ("the input guard's file").
    Raises :class:`WeightsError` naming the file and the reason."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{path}: {what} cannot be read: {exc.strerror or exc}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise WeightsError(f"{path}: sha256 differs from the model card's: {what} was changed "
                           "or damaged; it is not used")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files}
    except Exception as exc:  # numpy raises several types for a bad archive
        raise WeightsError(f"{path}: {what} cannot be parsed: {exc}") from exc


def is_sha256(value: object) -> bool:
    """64 lower-case hex digits."""
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value))


def check_section(section: Any, name: str, keys: Iterable[str], bad: Callable[[str], Exception],
                  empty_means: str) -> bool:
    """Check the common shape of a model card section that names one such file: an object,
    empty (returns False: no file) or with exactly ``keys`` and a valid ``sha256`` (returns
    True; the caller checks the rest). ``bad`` makes the exception to raise from a message."""
    if not isinstance(section, dict):
        raise bad(f"{name} must be an object (empty when {empty_means})")
    if not section:
        return False
    keys = tuple(keys)
    missing = [k for k in keys if k not in section]
    if missing:
        raise bad(f"{name} lacks {', '.join(missing)}")
    extra = set(section) - set(keys)
    if extra:
        raise bad(f"unknown {name} keys {sorted(extra)}")
    if not is_sha256(section["sha256"]):
        raise bad(f"{name}.sha256 must be 64 lowercase hex digits")
    if not isinstance(section.get("dim"), int) or section["dim"] < 1:
        raise bad(f"{name}.dim must be a positive integer, got {section.get('dim')!r}")
    return True
