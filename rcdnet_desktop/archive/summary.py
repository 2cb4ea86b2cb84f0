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


def _p(row: Mapping[str, str]) -> float:
    try:
        return float(row["p_malignant"])
    except (KeyError, ValueError):
        return -1.0


def _summary(rows: list[Mapping[str, str]]) -> dict[str, str]:
    status = Counter(r["status"] for r in rows)
    classified = [r for r in rows if r["status"] == "ok" and r["p_malignant"]]
    worst = max(classified, key=_p, default=None)
    bands = Counter(r["band"] for r in classified if r["band"])
    clips = [r for r in classified if r["clip_frames"]]
    out = {
        "images": str(len(rows)),
        "classified": str(len(classified)),
        "failed": str(status["failed"]),
        "skipped": str(status["skipped"]),
        "suspicious": str(sum(r["suspicious"] == "yes" for r in classified)),
        "bands": ";".join(f"{name}={n}" for name, n in sorted(bands.items())),
        "clips": str(len(clips)),
        "clips_suspicious": str(sum(_share(r) > 0 for r in clips)),
    }
    for k in ("file", "p_malignant", "band", "decision", "frame"):
        out[f"worst_{k}"] = worst[k] if worst is not None else ""
    return out


def _share(row: Mapping[str, str]) -> float:
    try:
        return float(row["clip_suspicious_share"])
    except (KeyError, ValueError):
        return 0.0


def summarise(rows: Iterable[Mapping[str, str]]) -> tuple[list[dict[str, str]],
                                                          list[dict[str, str]]]:
    """(studies, patients): one summary row each, sorted by patient, then study."""
    studies: dict[tuple[str, str, str], list] = defaultdict(list)
    for r in rows:
        if r["key"].startswith("series:"):
            continue  # a series not fetched: not an image
        folder = "" if r["study_uid"] else str(PurePath(r["file"]).parent)
        studies[(r["patient_id"], r["study_uid"], folder)].append(r)
    study_rows = []
    patients: dict[str, list] = defaultdict(list)
    for (patient, study, folder), group in sorted(studies.items()):
        dates = sorted({r["study_date"] for r in group if r["study_date"]})
        study_rows.append({"patient_id": patient, "study_uid": study, "folder": folder,
                           "study_date": dates[0] if dates else "", **_summary(group)})
        patients[patient].append(group)
    patient_rows = [{"patient_id": patient, "studies": str(len(groups)),
                     **_summary([r for g in groups for r in g])}
                    for patient, groups in sorted(patients.items()) if patient]
    return study_rows, patient_rows


__all__: Sequence[str] = ("PATIENT_FIELDS", "STUDY_FIELDS", "summarise")
