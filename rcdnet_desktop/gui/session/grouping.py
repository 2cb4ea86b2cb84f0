"""The image list's order: open images grouped by patient, then study, in plain Python.

Patients and studies come in the order their first image was opened; the images of a study in
the order they were opened. Plain image files (no DICOM header) and files that could not be
read form one section, "Files without patient data"; files still loading wait at the end under
their own heading, and join their group once read. The viewer's next/previous walk this same
order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rcdnet_desktop.core import context
from rcdnet_desktop.gui.session.document import Document

LOADING = "Loading..."


@dataclass(frozen=True)
class Section:
    """A heading of the image list and the images right under it.

    ``level`` 0 is a patient (or one of the sections without patient), 1 a study of the
    patient above it; ``key`` tells headings of the same words apart (two patients can have
    studies on the same day).
    """

    title: str
    level: int
    doc_ids: tuple[int, ...]
    key: tuple = ()


def group_documents(docs: Sequence[Document]) -> list[Section]:
    """Sections of ``docs`` (given in the order they were opened)."""
    patients: dict[tuple, tuple[str, dict[tuple, tuple[str, list[int]]]]] = {}
    plain: list[int] = []
    loading: list[int] = []
    for doc in docs:
        rec = doc.record
        if rec is None:
            (plain if doc.error else loading).append(doc.doc_id)
        elif not rec.is_dicom:
            plain.append(doc.doc_id)
        else:
            pkey = context.patient_key(rec)
            _, studies = patients.setdefault(pkey, (context.patient_title(rec), {}))
            skey = context.study_key(rec)
            studies.setdefault(skey, (context.study_title(rec), []))[1].append(doc.doc_id)
    first = {d.doc_id: i for i, d in enumerate(docs)}
    groups: list[tuple[int, list[Section]]] = []
    for pkey, (title, studies) in patients.items():
        sections = [Section(title, 0, (), pkey)]
        sections += [Section(stitle, 1, tuple(ids), (*pkey, *skey))
                     for skey, (stitle, ids) in studies.items()]
        groups.append((min(first[i] for s in sections for i in s.doc_ids), sections))
    if plain:
        groups.append((first[plain[0]], [Section(context.FILES_WITHOUT_PATIENT, 0,
                                                 tuple(plain), ("plain",))]))
    groups.sort(key=lambda g: g[0])
    out = [s for _, sections in groups for s in sections]
    if loading:
        out.append(Section(LOADING, 0, tuple(loading), ("loading",)))
    return out


def ordered_ids(sections: Sequence[Section]) -> list[int]:
    """The documents of ``sections`` in list order."""
    return [i for s in sections for i in s.doc_ids]
