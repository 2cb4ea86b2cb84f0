"""What identifies an image across runs, and the UIDs of the results sent back.

A file on shared storage is known by the sha256 of its bytes (a file copied or moved is the
same image, a file changed in place is a new one); an instance of a PACS by its SOP Instance
UID. With the model's version these keys say what is done (:mod:`.state`).

A Structured Report sent back to the PACS gets UIDs derived from its source instance and the
model version (:func:`sr_uids`), so a rerun that sends it again files the same object, never a
second copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

CHUNK = 1 << 20


def content_key(path: str | Path) -> str:
    """``sha256:<hex>`` of the file's bytes.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def instance_key(sop_uid: str) -> str:
    """``sop:<SOP Instance UID>``."""
    return f"sop:{sop_uid}"


def sr_uids(source_sop_uid: str, model_version: str) -> tuple[str, str]:
    """(Series Instance UID, SOP Instance UID) of the SR of ``source_sop_uid`` by this model.

    Derived, not random (pydicom's ``generate_uid`` with entropy sources): the same source
    and model version always give the same UIDs, so a PACS keeps one copy however often the
    result is sent. Each SR is alone in a series of its own, derived the same way.
    """
    from pydicom.uid import generate_uid

    series = generate_uid(entropy_srcs=["rcdnet-archive-sr-series", source_sop_uid,
                                        model_version])
    sop = generate_uid(entropy_srcs=["rcdnet-archive-sr", source_sop_uid, model_version])
    return series, sop


__all__: Sequence[str] = ("content_key", "instance_key", "sr_uids")
