"""Per-study and per-patient summaries of an archive run: the worst finding, the bands, the
clips.

No Ray here; the input is the rows of :meth:`~rcdnet_desktop.archive.state.OutputFolder.results`
(text, one per image). The words are the rows' own (``band`` names and ``decision`` codes of
:mod:`rcdnet_desktop.core.result`): nothing is re-decided here. A study is its Study Instance
UID; an image that is not DICOM has none and is summarised with the others of its folder
(``folder`` names it). A patient is its Patient ID (none for such images).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath

STUDY_FIELDS = ("patient_id", "study_uid", "folder", "study_date", "images", "classified",
                "failed", "skipped", "suspicious", "worst_file", "worst_p_malignant",
                "worst_band", "worst_decision", "worst_frame", "bands", "clips",
                "clips_suspicious")
"""Columns of ``studies.csv``: images counted by status; ``suspicious`` how many were;
``worst_*`` the image with the highest ``p_malignant`` (its file, probability, band, decision
and frame); ``bands`` how many images fell in each band (``name=count`` joined by ";");
``clips`` the clips swept and ``clips_suspicious`` those with a suspicious frame."""

PATIENT_FIELDS = ("patient_id", "studies", *STUDY_FIELDS[4:])
"""Columns of ``patients.csv``: the same over all of a patient's studies."""


def _float(row: Mapping[str, str], key: str, missing: float) -> float:
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return missing


class _Tally:
    """The summary of a group of images, kept as counts while the rows go by."""

    def __init__(self) -> None:
        self.status: Counter[str] = Counter()
        self.bands: Counter[str] = Counter()
        self.classified = self.suspicious = self.clips = self.clips_suspicious = 0
        self.worst: dict[str, str] | None = None
        self.dates: set[str] = set()

    def add(self, r: Mapping[str, str]) -> None:
        self.status[r["status"]] += 1
        if r["study_date"]:
            self.dates.add(r["study_date"])
        if r["status"] != "ok" or not r["p_malignant"]:
            return
        self.classified += 1
        self.suspicious += r["suspicious"] == "yes"
        if r["band"]:
            self.bands[r["band"]] += 1
        if r["clip_frames"]:
            self.clips += 1
            self.clips_suspicious += _float(r, "clip_suspicious_share", 0.0) > 0
        if self.worst is None or _float(r, "p_malignant", -1) > float(self.worst["p_malignant"]):
            self.worst = {k: r[k] for k in ("file", "p_malignant", "band", "decision", "frame")}

    def fields(self) -> dict[str, str]:
        out = {
            "images": str(self.status.total()),
            "classified": str(self.classified),
            "failed": str(self.status["failed"]),
            "skipped": str(self.status["skipped"]),
            "suspicious": str(self.suspicious),
            "bands": ";".join(f"{name}={n}" for name, n in sorted(self.bands.items())),
            "clips": str(self.clips),
            "clips_suspicious": str(self.clips_suspicious),
        }
        for k in ("file", "p_malignant", "band", "decision", "frame"):
            out[f"worst_{k}"] = self.worst[k] if self.worst is not None else ""
        return out


class Summaries:
    """Per-study and per-patient summaries, fed one row at a time (:meth:`add`), so an
    archive's rows need not all be held at once."""

    def __init__(self) -> None:
        self._studies: dict[tuple[str, str, str], _Tally] = defaultdict(_Tally)
        self._patients: dict[str, _Tally] = defaultdict(_Tally)
        self._patient_studies: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def add(self, r: Mapping[str, str]) -> None:
        if r["key"].startswith("series:"):
            return  # a series not fetched: not an image
        folder = "" if r["study_uid"] else str(PurePath(r["file"]).parent)
        self._studies[(r["patient_id"], r["study_uid"], folder)].add(r)
        if r["patient_id"]:
            self._patients[r["patient_id"]].add(r)
            self._patient_studies[r["patient_id"]].add((r["study_uid"], folder))

    def studies(self) -> list[dict[str, str]]:
        """One row per study, sorted by patient, then study."""
        return [{"patient_id": patient, "study_uid": study, "folder": folder,
                 "study_date": min(t.dates, default=""), **t.fields()}
                for (patient, study, folder), t in sorted(self._studies.items())]

    def patients(self) -> list[dict[str, str]]:
        """One row per patient (images without a Patient ID are in no patient's)."""
        return [{"patient_id": patient, "studies": str(len(self._patient_studies[patient])),
                 **t.fields()} for patient, t in sorted(self._patients.items())]


def summarise(rows: Iterable[Mapping[str, str]]) -> tuple[list[dict[str, str]],
                                                          list[dict[str, str]]]:
    """(studies, patients): one summary row each, sorted by patient, then study."""
    summaries = Summaries()
    for r in rows:
        summaries.add(r)
    return summaries.studies(), summaries.patients()


__all__: Sequence[str] = ("PATIENT_FIELDS", "STUDY_FIELDS", "Summaries", "summarise")
