"""Outcomes of PACS operations, the same for both transports (DICOM and DICOMweb)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rcdnet_desktop.core.pacs.cache import CachedInstance, sorted_instances


@dataclass(frozen=True)
class RetrieveProgress:
    """How far a retrieve is: instances received, failed, and expected (None: unknown)."""

    received: int
    failed: int = 0
    expected: int | None = None
    text: str = ""


ProgressCallback = Callable[[RetrieveProgress], object]


@dataclass
class RetrieveResult:
    """What a retrieve brought into the cache.

    Attributes
    ----------
    instances : list of CachedInstance
        The complete instances received, grouped by patient and study (see
        :func:`~rcdnet_desktop.core.pacs.cache.sorted_instances`); they stay in the cache
        whatever went wrong later.
    failed : int
        Instances the PACS said it could not send, or that could not be stored here.
    expected : int or None
        What the PACS said the retrieve would bring, when it said.
    problem : str
        Empty when everything came; otherwise what went wrong, in plain words, naming the node.
    cancelled : bool
        The user stopped it.
    """

    instances: list[CachedInstance] = field(default_factory=list)
    failed: int = 0
    expected: int | None = None
    problem: str = ""
    cancelled: bool = False

    @property
    def files(self) -> list[Path]:
        return [i.path for i in sorted_instances(self.instances)]

    @property
    def complete(self) -> bool:
        return not self.problem and not self.cancelled

    def summary(self) -> str:
        """One line for the user: what came, and what went wrong if anything did."""
        n = len(self.instances)
        got = f"{n} instance{'s' if n != 1 else ''} retrieved"
        if self.complete:
            return got
        if self.cancelled:
            return f"Cancelled: {got}, kept in the cache" if n else "Cancelled: nothing retrieved"
        return f"{got}{', kept in the cache' if n else ''}. {self.problem}"


@dataclass
class StoreResult:
    """What a store sent: the SOP Instance UIDs the PACS took, warnings, and refusals."""

    stored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def summary(self) -> str:
        parts = [f"{len(self.stored)} object{'s' if len(self.stored) != 1 else ''} stored"]
        parts += self.warnings
        parts += [f"refused: {r}" for r in self.refused]
        return "; ".join(parts)


def what_is(ds) -> str:
    """A short name of an object for messages: "structured report", "secondary capture"..."""
    sop = str(ds.get("SOPClassUID", ""))
    names = {
        "1.2.840.10008.5.1.4.1.1.88.33": "structured report",
        "1.2.840.10008.5.1.4.1.1.88.34": "structured report",
        "1.2.840.10008.5.1.4.1.1.88.22": "structured report",
        "1.2.840.10008.5.1.4.1.1.7": "secondary capture",
        "1.2.840.10008.5.1.4.1.1.6.1": "ultrasound image",
        "1.2.840.10008.5.1.4.1.1.3.1": "ultrasound cine",
    }
    return names.get(sop, "DICOM object")


__all__: Sequence[str] = ("ProgressCallback", "RetrieveProgress", "RetrieveResult",
                          "StoreResult", "what_is")
