"""What a DICOM Structured Report says, read from its content tree: no pixels, no Qt.

:func:`parse_document` turns any SR (Comprehensive, Enhanced, Basic Text, ...) into an
:class:`SrDocument`: its title, its measurement groups when it follows TID 1500 (tracking
identifier, finding, region on the source image, measurements with their units, coded
evaluations, comments) and, for any other tree, its items as an indented outline. A report this
program wrote (:mod:`rcdnet_desktop.core.export.dicom_sr`) is read back into a
:class:`StoredResult` through the same code table it was written with
(:mod:`rcdnet_desktop.core.dicom_codes`): the calibrated probability, the decision at the
model's cut-off, the likelihood band, the lexicon descriptors, the lesion box and its size, and
the caliper lengths. :meth:`SrDocument.lines` gives all of it in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .. import dicom_codes as dc
from ..measure import Length, Measured, Measurement
from ..numbers import pair_text, shortest
from ..types import Box

Point = tuple[float, float]

_MEASUREMENT_GROUP = ("DCM", "125007")
_TRACKING_ID = ("DCM", "112039")
_FINDING = ("DCM", "121071")
_FINDING_SITE = ("SCT", "363698007")
_ALGORITHM_VERSION = ("DCM", "111003")
_ALGORITHM_PARAMETERS = ("DCM", "111002")
_MAX_ITEMS = 5000  # a content tree larger than this is shown in part (the outline says so)


@dataclass(frozen=True)
class SrMeasurement:
    """A numeric item: its concept, value and unit (UCUM code and meaning), the tracking
    identifier it carries (e.g. ``"Caliper 1"``) and the line it was measured on, if any."""

    name: str
    value: float
    unit: str
    unit_meaning: str = ""
    label: str = ""
    points: tuple[Point, ...] = ()

    @property
    def text(self) -> str:
        """``"Length: 12.3 mm"``, ``"Length: 84 pixels (no scale in the file)"``, ``"Probability
        of cancer: 0.35"``."""
        name = f"{self.label} ({self.name})" if self.label else self.name
        if self.unit == dc.PIXELS.value:
            return f"{name}: {self.value:.0f} pixels (no scale in the file)"
        if self.unit in ("1", ""):
            return f"{name}: {self.value:g}"
        if self.unit == dc.MILLIMETRE.value:
            return f"{name}: {self.value:.1f} mm"  # as the caliper shows it
        unit = self.unit if self.unit in ("cm", "%") else (self.unit_meaning or self.unit)
        return f"{name}: {self.value:g} {unit}"


@dataclass(frozen=True)
class SrGroup:
    """One measurement group (TID 1410 / 1411 / 1501) of a TID 1500 report."""

    label: str = ""
    finding: str = ""
    site: str = ""
    region: tuple[Point, ...] = ()
    region_source: str = ""  # the SOP Instance UID the region is drawn on
    region_frame: int | None = None  # 1-based, when the reference names one
    measurements: tuple[SrMeasurement, ...] = ()
    evaluations: tuple[tuple[dc.Concept, dc.Concept], ...] = ()
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredResult:
    """A result as this program wrote it in its SR, read back."""

    p_malignant: float | None
    suspicious: bool | None
    band: str
    descriptors: tuple[tuple[str, str], ...]
    box: Box | None
    box_mm: tuple[float, float] | None
    calipers: tuple[SrMeasurement, ...]
    model_version: str = ""
    cutoff: float | None = None
    notes: tuple[str, ...] = ()  # the report's comments: the note, caveats, warnings...

    def lines(self) -> list[str]:
        """The result in words, one line each (P and the cut-off with one rounding that keeps
        their order visible, as every view prints them)."""
        out = []
        p_text = cut_text = ""
        if self.p_malignant is not None:
            p_text = shortest(self.p_malignant)
            if self.cutoff is not None:
                p_text, cut_text = pair_text(self.p_malignant, self.cutoff)
            out.append(f"Calibrated probability of malignancy: {p_text}")
        if self.suspicious is not None:
            decision = dc.decision_code(self.suspicious).meaning
            at = f" ({cut_text})" if cut_text else ""
            out.append(f"Decision at the model's cut-off{at}: {decision}")
        if self.band:
            out.append(f"Likelihood band: {self.band} (not a BI-RADS assessment)")
        if self.descriptors:
            out.append("Lexicon: " + "; ".join(f"{n}: {v}" for n, v in self.descriptors))
        if self.box is not None:
            b = self.box
            size = (f"; {self.box_mm[0]:.1f} x {self.box_mm[1]:.1f} mm"
                    if self.box_mm is not None else "")
            out.append(f"Lesion box: x {b.x}, y {b.y}, {b.w} x {b.h} px{size}")
        out += [m.text for m in self.calipers]
        if self.model_version:
            out.append(f"Model version: {self.model_version}")
        if self.notes:
            out += ["Notes:", *(f"  {n}" for n in self.notes)]
        return out

    def measured(self) -> tuple[Measured, ...]:
        """The calipers stored with a line, as the viewer draws measurements."""
        out = []
        for m in self.calipers:
            if len(m.points) != 2 or m.unit not in ("mm", dc.PIXELS.value):
                continue
            (x0, y0), (x1, y1) = m.points
            unit = "mm" if m.unit == "mm" else "px"
            out.append(Measured(Measurement(x0, y0, x1, y1), Length(m.value, unit),
                                len(out) + 1))
        return tuple(out)


@dataclass(frozen=True)
class SrDocument:
    """A Structured Report, read.

    Attributes
    ----------
    kind : str
        The SR storage class in words ("Comprehensive SR").
    title : str
        The document title (the root container's concept).
    own : bool
        Written by this program (see :mod:`rcdnet_desktop.core.io.own`).
    groups : tuple of SrGroup
        The measurement groups of a TID 1500 report.
    outline : tuple of str
        Every content item as ``"name: value"``, indented by depth (any SR).
    source_uids : tuple of str
        The images the document refers to (SOP Instance UIDs), in order.
    result : StoredResult or None
        This program's result, for its own SR.
    completion, verification : str
        The document's flags (``COMPLETE``, ``UNVERIFIED``...).
    manufacturer : str
        Who wrote it (its Manufacturer).
    """

    kind: str
    title: str
    own: bool
    groups: tuple[SrGroup, ...] = ()
    outline: tuple[str, ...] = ()
    source_uids: tuple[str, ...] = ()
    result: StoredResult | None = None
    completion: str = ""
    verification: str = ""
    manufacturer: str = ""

    def lines(self) -> list[str]:
        """The document in words: the stored result for this program's own, the groups'
        findings and measurements for another TID 1500 report, else its outline."""
        about = [self.kind + (f", by {self.manufacturer}" if self.manufacturer else "")]
        flags = ", ".join(f.lower() for f in (self.completion, self.verification) if f)
        about += [flags] if flags else []
        out = [f"{self.title or 'Structured report'} ({'; '.join(about)})"]
        if self.result is not None:
            return out + self.result.lines()
        for g in self.groups:
            out.append(" - ".join(x for x in (g.label, g.finding, g.site) if x) or "Finding")
            out += [f"  {m.text}" for m in g.measurements]
            out += [f"  {n.meaning}: {v.meaning}" for n, v in g.evaluations]
            out += [f"  {c}" for c in g.comments]
        if not self.groups:
            out += list(self.outline)
        return out


# --- reading the tree -------------------------------------------------------------------------


def _concept(item: Any, keyword: str) -> dc.Concept | None:
    try:
        seq = item.get(keyword)
        if not seq:
            return None
        c = seq[0]
        return dc.Concept(str(c.get("CodeValue", "") or c.get("LongCodeValue", "")
                              or c.get("URNCodeValue", "")),
                          str(c.get("CodingSchemeDesignator", "")), str(c.get("CodeMeaning", "")))
    except Exception:  # noqa: BLE001 - a damaged code is left out, not fatal
        return None


def _name(item: Any) -> dc.Concept | None:
    return _concept(item, "ConceptNameCodeSequence")


def _children(item: Any) -> list[Any]:
    try:
        return list(item.get("ContentSequence") or [])
    except Exception:  # noqa: BLE001
        return []


def _vt(item: Any) -> str:
    return str(item.get("ValueType", "")).upper()


def _measurement(item: Any) -> SrMeasurement | None:
    try:
        mv = item.MeasuredValueSequence[0]
        value = float(mv.NumericValue)
    except Exception:  # noqa: BLE001 - an empty or damaged NUM has no value to show
        return None
    if not math.isfinite(value):
        return None
    unit = _concept(mv, "MeasurementUnitsCodeSequence")
    label, points = "", ()
    for child in _children(item):
        name = _name(child)
        if name is not None and name.key == _TRACKING_ID and _vt(child) == "TEXT":
            label = str(child.get("TextValue", ""))
        elif _vt(child) == "SCOORD":
            points = _points(child)
    n = _name(item)
    return SrMeasurement(n.meaning if n else "Measurement", value,
                         unit.value if unit else "", unit.meaning if unit else "", label, points)


def _points(item: Any) -> tuple[Point, ...]:
    try:
        data = [float(v) for v in item.GraphicData]
    except Exception:  # noqa: BLE001
        return ()
    return tuple((data[i], data[i + 1]) for i in range(0, len(data) - 1, 2))


def _image_ref(item: Any) -> tuple[str, int | None]:
    for child in _children(item):
        try:
            ref = child.ReferencedSOPSequence[0]
        except Exception:  # noqa: BLE001
            continue
        frames = ref.get("ReferencedFrameNumber")
        frame = None
        if frames not in (None, ""):
            try:
                frame = int(frames[0] if isinstance(frames, list | tuple) else frames)
            except (TypeError, ValueError, IndexError):
                frame = None
        return str(ref.get("ReferencedSOPInstanceUID", "")), frame
    return "", None


def _group(item: Any) -> SrGroup:
    label = finding = site = source = ""
    region: tuple[Point, ...] = ()
    frame = None
    measurements, evaluations, comments = [], [], []
    for child in _children(item):
        vt, name = _vt(child), _name(child)
        key = name.key if name else ("", "")
        if vt == "TEXT" and key == _TRACKING_ID:
            label = str(child.get("TextValue", ""))
        elif vt == "TEXT" and key == dc.COMMENT.key:
            comments.append(str(child.get("TextValue", "")))
        elif vt == "SCOORD" and not region:
            region = _points(child)
            source, frame = _image_ref(child)
        elif vt == "NUM":
            m = _measurement(child)
            if m is not None:
                measurements.append(m)
        elif vt == "CODE":
            value = _concept(child, "ConceptCodeSequence")
            if value is None:
                continue
            if key == _FINDING:
                finding = value.meaning
            elif key == _FINDING_SITE:
                site = value.meaning
            elif name is not None:
                evaluations.append((name, value))
    return SrGroup(label, finding, site, region, source, frame, tuple(measurements),
                   tuple(evaluations), tuple(comments))


def _walk(items: list[Any], depth: int, outline: list[str], groups: list[Any],
          budget: list[int]) -> None:
    for item in items:
        budget[0] -= 1
        if budget[0] < 0:
            return
        name = _name(item)
        if name is not None and name.key == _MEASUREMENT_GROUP:
            groups.append(item)
        text = _item_words(item)
        if text:
            outline.append("  " * depth + text)
        _walk(_children(item), depth + 1, outline, groups, budget)


def _item_words(item: Any) -> str:
    name = _name(item)
    label = name.meaning if name else ""
    vt = _vt(item)
    value = ""
    if vt in ("TEXT", "UIDREF", "DATE", "TIME", "DATETIME", "PNAME"):
        kw = {"TEXT": "TextValue", "UIDREF": "UID", "DATE": "Date", "TIME": "Time",
              "DATETIME": "DateTime", "PNAME": "PersonName"}[vt]
        value = str(item.get(kw, ""))
    elif vt == "CODE":
        c = _concept(item, "ConceptCodeSequence")
        value = c.meaning if c else ""
    elif vt == "NUM":
        m = _measurement(item)
        return m.text if m else label
    elif vt in ("SCOORD", "IMAGE", "COMPOSITE", "SCOORD3D", "WAVEFORM", "TCOORD"):
        return ""  # geometry and references: the groups show them
    if vt == "CONTAINER":
        return label
    return f"{label}: {value}" if label else value


def _source_uids(ds: Any, groups: list[SrGroup]) -> tuple[str, ...]:
    uids = [g.region_source for g in groups if g.region_source]
    for keyword in ("CurrentRequestedProcedureEvidenceSequence",
                    "PertinentOtherEvidenceSequence"):
        try:
            for study in ds.get(keyword) or []:
                for series in study.get("ReferencedSeriesSequence") or []:
                    for ref in series.get("ReferencedSOPSequence") or []:
                        uids.append(str(ref.ReferencedSOPInstanceUID))
        except Exception:  # noqa: BLE001 - damaged evidence: what was read is kept
            continue
    return tuple(dict.fromkeys(u for u in uids if u))


def _stored_result(ds: Any, groups: list[SrGroup]) -> StoredResult | None:
    """This program's result from its own SR's groups (None when there is no lesion group)."""
    lesion = next((g for g in groups if g.finding == dc.FINDING.meaning), None)
    if lesion is None:
        return None
    p = suspicious = box = box_mm = None
    band = ""
    descriptors = []
    width = height = None
    for m in lesion.measurements:
        if m.name == dc.PROBABILITY.meaning:
            p = m.value
        elif m.name == dc.WIDTH.meaning and m.unit == "mm":
            width = m.value
        elif m.name == dc.HEIGHT.meaning and m.unit == "mm":
            height = m.value
    if width is not None and height is not None:
        box_mm = (width, height)
    for name, value in lesion.evaluations:
        if name.key == dc.DECISION.key:
            suspicious = value.key == dc.SUSPICIOUS.key
        elif name.key == dc.BAND.key:
            band = value.meaning
        else:
            words = dc.lexicon_words(name.key, value.key)
            if words is not None:
                descriptors.append(words)
    if len(lesion.region) >= 4:
        xs = [x for x, _ in lesion.region]
        ys = [y for _, y in lesion.region]
        box = Box(round(min(xs)), round(min(ys)), round(max(xs) - min(xs)),
                  round(max(ys) - min(ys)))
    calipers = tuple(m for g in groups if g is not lesion for m in g.measurements)
    version = _algorithm_text(ds, _ALGORITHM_VERSION)
    return StoredResult(p, suspicious, band, tuple(descriptors), box, box_mm, calipers,
                        version[0] if version else "", _cutoff(ds), lesion.comments)


def _algorithm_text(ds: Any, key: tuple[str, str]) -> list[str]:
    """Every TEXT value of concept ``key`` in the tree (the algorithm's version, parameters)."""
    out, stack = [], _children(ds)
    while stack:
        item = stack.pop(0)
        name = _name(item)
        if name is not None and name.key == key and _vt(item) == "TEXT":
            out.append(str(item.get("TextValue", "")))
        stack.extend(_children(item))
    return out


def _cutoff(ds: Any) -> float | None:
    """The cut-off from the algorithm's parameters (``suspicious cut-off 0.158``)."""
    for text in _algorithm_text(ds, _ALGORITHM_PARAMETERS):
        if text.startswith(dc.CUTOFF_PARAMETER):
            try:
                value = float(text[len(dc.CUTOFF_PARAMETER):])
            except ValueError:
                continue
            if 0.0 <= value <= 1.0:
                return value
    return None


def parse_document(ds: Any, own: bool) -> SrDocument:
    """Read an SR data set (pydicom) into an :class:`SrDocument`; ``own``: written by this
    program (its result is read back then)."""
    uid = str(ds.get("SOPClassUID", ""))
    kind = dc.SR_CLASSES.get(uid, "Structured report")
    title = _name(ds)
    outline: list[str] = []
    raw_groups: list[Any] = []
    budget = [_MAX_ITEMS]
    _walk(_children(ds), 0, outline, raw_groups, budget)
    if budget[0] < 0:
        outline.append(f"(only the first {_MAX_ITEMS} items are shown)")
    groups = [_group(g) for g in raw_groups]
    return SrDocument(
        kind=kind, title=title.meaning if title else "", own=own, groups=tuple(groups),
        outline=tuple(outline), source_uids=_source_uids(ds, groups),
        result=_stored_result(ds, groups) if own else None,
        completion=str(ds.get("CompletionFlag", "")),
        verification=str(ds.get("VerificationFlag", "")),
        manufacturer=str(ds.get("Manufacturer", "")))


__all__ = ["SrDocument", "SrGroup", "SrMeasurement", "StoredResult", "parse_document"]
