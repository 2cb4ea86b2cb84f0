"""Exports: report image, PNG, PDF and DICOM Secondary Capture, all written atomically."""

from __future__ import annotations

import base64
import errno
import os
import re
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rcdnet_desktop.core import atomic, export
from rcdnet_desktop.core.atomic import atomic_write
from rcdnet_desktop.core.export import (
    DECISION_SUPPORT_NOTE,
    SECONDARY_CAPTURE_SOP_CLASS,
    ExportError,
    ExportExistsError,
    ReportOptions,
    export_dicom_sc,
    export_pdf,
    export_png,
    render_report,
)
from rcdnet_desktop.core.types import (
    Box,
    HeatMaps,
    ImageRecord,
    PatientInfo,
    Prediction,
    StudyInfo,
)

WHEN = datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=1)))
OPTIONS = ReportOptions(when=WHEN)
PATIENT = PatientInfo(name="DOE^JANE", patient_id="PID-0042", birth_date="19700101", sex="F")


def gaussian(h: int, w: int, cx: float, cy: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return (g / g.max()).astype(np.float32)


def speckle(h: int, w: int, rgb: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = np.clip(rng.rayleigh(50.0, size=(h, w)), 0, 255).astype(np.uint8)
    if not rgb:
        return grey
    tint = np.stack([grey, grey, (grey * 0.9).astype(np.uint8)], axis=2)
    return np.ascontiguousarray(tint)


def make_heatmaps(
    h: int,
    w: int,
    *,
    roi: Box | None = None,
    untrained: bool = False,
    p_malignant: float = 0.83,
    warnings: tuple[str, ...] = (),
    threshold: float | None = None,
) -> HeatMaps:
    pred = Prediction(
        p_benign=1.0 - p_malignant,
        p_malignant=p_malignant,
        device="cpu",
        model_version="rcdnet-test-1.0",
        untrained=untrained,
        roi=roi,
        warnings=warnings,
        threshold=threshold,
    )
    return HeatMaps(
        benign=gaussian(h, w, w * 0.2, h * 0.2, max(w, h) / 15),
        malignant=gaussian(h, w, w * 0.6, h * 0.6, max(w, h) / 12),
        method="fast Grad-CAM",
        prediction=pred,
    )


def write_source_dicom(path: Path, pixels: np.ndarray, *, patient: PatientInfo) -> ImageRecord:
    """A small US-like DICOM source file and the record a reader would make of it."""
    study_uid, series_uid, sop_uid = generate_uid(), generate_uid(), generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "US"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ImageRecord(
        path=path,
        pixels=pixels,
        source_format="DICOM",
        photometric="MONOCHROME2",
        patient=patient,
        study=StudyInfo(
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            sop_instance_uid=sop_uid,
            sop_class_uid=ds.SOPClassUID,
            study_date="20250314",
            study_time="091500",
            modality="US",
        ),
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def pdf_text(data: bytes) -> str:
    """Concatenate the (Flate-decoded where needed) streams of a simple reportlab PDF."""
    out = [data.decode("latin-1")]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = m.group(1)
        for decode in (inflate, a85_then_flate, lambda b: b):
            try:
                out.append(decode(raw).decode("latin-1"))
                break
            except Exception:
                continue
    return "\n".join(out)


def inflate(raw: bytes) -> bytes:
    return zlib.decompressobj().decompress(raw)  # tolerates the EOL before "endstream"


def a85_then_flate(raw: bytes) -> bytes:
    body = raw.strip()
    body = body[2:] if body.startswith(b"<~") else body
    return inflate(base64.a85decode(b"<~" + body, adobe=True))


# --- report image ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), [(150, 200), (900, 1200), (333, 251)])
@pytest.mark.parametrize("rgb", [False, True])
def test_panels_keep_image_resolution_and_panel0_is_the_image(h, w, rgb):
    pixels = speckle(h, w, rgb=rgb)
    report = render_report(pixels, make_heatmaps(h, w),
                           ReportOptions(when=WHEN, source_name="a.png"))
    img, layout = report.image, report.layout
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[:2] == (layout.height, layout.width)
    expected = pixels if rgb else np.repeat(pixels[..., None], 3, axis=2)
    for i, box in enumerate(layout.panels):
        assert (box.w, box.h) == (w, h)
        assert box.x + box.w <= layout.width and box.y + box.h <= layout.height
        if i:
            assert layout.panels[i - 1].x + w <= box.x  # side by side, no overlap
    assert np.array_equal(layout.crop(img, 0), expected)
    assert not np.array_equal(layout.crop(img, 1), expected)
    assert not np.array_equal(layout.crop(img, 1), layout.crop(img, 2))
    assert layout.text_band.y >= layout.panels[0].y + h


def test_overlay_panels_match_blend():
    from rcdnet_desktop.core.evidence_scale import shared_scale
    from rcdnet_desktop.core.overlay import blend

    pixels = speckle(120, 160)
    hm = make_heatmaps(120, 160)
    report = render_report(pixels, hm, ReportOptions(when=WHEN, colormap="viridis", alpha=0.3))
    crop = report.layout.crop
    # Both maps on the one shared scale (topped by the evidence for the result).
    benign, malignant = shared_scale(hm)
    assert np.array_equal(crop(report.image, 1), blend(pixels, benign, 0.3, "viridis"))
    assert np.array_equal(crop(report.image, 2), blend(pixels, malignant, 0.3, "viridis"))


def test_text_scales_with_image_size():
    small = render_report(speckle(150, 200), make_heatmaps(150, 200), OPTIONS).layout
    large = render_report(speckle(900, 1200), make_heatmaps(900, 1200), OPTIONS).layout
    assert small.font_px >= 12
    assert large.font_px > 2 * small.font_px
    # The text band is not a sliver on a large image nor a giant on a small one.
    assert 0.15 < large.text_band.h / large.height < 0.6
    assert small.text_band.h / small.height < 0.7


def test_text_band_is_not_blank_and_report_text_has_everything():
    maps = make_heatmaps(150, 200, warnings=("colour overlay detected",))
    report = render_report(speckle(150, 200), maps,
                           ReportOptions(when=WHEN, source_name="case_7.dcm"))
    band = report.image[report.layout.text_band.y :]
    assert (band < 128).any()  # dark text on the white band
    text = report.text
    for needle in (
        "Result: High (50-95%), suspicious (whole image, less reliable)",
        "Probability of malignancy (calibrated): 0.83",
        "Input: whole image",
        "rcdnet-test-1.0",
        "Device: cpu",
        "2025-03-14 09:26:53 +0100",
        "case_7.dcm",
        "fast Grad-CAM",
        "Evidence for benign: Strongest around the upper left",
        "Evidence for malignant:",
        "Warning: colour overlay detected",
        DECISION_SUPPORT_NOTE,
    ):
        assert needle in text
    assert report.lines[-1].text == DECISION_SUPPORT_NOTE


def test_report_states_the_box_source_and_the_band():
    from rcdnet_desktop.core.types import LesionFinding

    h, w = 200, 260
    roi = Box(62, 46, 126, 98)
    base = make_heatmaps(h, w, roi=roi, p_malignant=0.07)
    finding = LesionFinding(box=Box(80, 60, 90, 70), outline=np.zeros((4, 2), np.float32),
                            confidence=0.934, area_share=0.1)

    def report_for(**changes):
        pred = Prediction(p_benign=0.93, p_malignant=0.07, device="cpu", model_version="t",
                          roi=roi, **changes)
        return render_report(speckle(h, w), HeatMaps(base.benign, base.malignant, "fast", pred),
                             OPTIONS)

    user = report_for(box=Box(80, 60, 90, 70), box_source="user")
    # The box as given (as on screen), then the padded region the model saw.
    assert ("Input: lesion box (x 80, y 60, 90 x 70 px), drawn by the user; the model saw it "
            "with a margin (x 62, y 46, 126 x 98 px)") in user.text
    assert ("Likelihood band: low (2-10%), the BI-RADS 4A range - not a BI-RADS assessment"
            in user.text)
    assert user.summary["Lesion box"] == "drawn by the user"
    assert user.summary["Likelihood band"].startswith("low (2-10%)")
    auto = report_for(box=finding.box, box_source="auto", finding=finding)
    assert ("Input: lesion box (x 80, y 60, 90 x 70 px), found automatically (localiser "
            "confidence 0.93); the model saw it with a margin") in auto.text
    assert "drawn by the user" not in auto.text
    assert auto.summary["Lesion box"] == "found automatically"
    assert auto.summary["Input mode"].startswith("lesion box (x 80")
    fused = report_for(box=finding.box, box_source="auto", finding=finding, fused=True)
    assert "Input: whole image and lesion box (x 80, y 60" in fused.text
    assert "the two results averaged" in fused.text
    whole = render_report(speckle(h, w), make_heatmaps(h, w, p_malignant=0.97), OPTIONS)
    assert "Input: whole image" in whole.text and whole.summary["Lesion box"] == "none"
    assert "Likelihood band: very high (95-100%), the BI-RADS 5 range" in whole.text


def test_untrained_is_said_loudly():
    report = render_report(speckle(60, 80), make_heatmaps(60, 80, untrained=True), OPTIONS)
    assert "UNTRAINED" in report.lines[0].text
    assert report.lines[0].kind == "alert"


def test_patient_only_when_passed():
    pixels, hm = speckle(100, 120), make_heatmaps(100, 120)
    without = render_report(pixels, hm, OPTIONS)
    assert "DOE" not in without.text and "PID-0042" not in without.text
    assert not without.patient_included
    with_patient = render_report(pixels, hm, ReportOptions(when=WHEN, patient=PATIENT))
    assert "Patient: DOE, JANE" in with_patient.text and "PID-0042" in with_patient.text
    assert with_patient.patient_included
    # Identifiers drawn in the band change the pixels only there.
    assert with_patient.image.shape[1] == without.image.shape[1]
    assert np.array_equal(
        with_patient.layout.crop(with_patient.image, 0), without.layout.crop(without.image, 0)
    )
    assert not render_report(pixels, hm,
                             ReportOptions(when=WHEN, patient=PatientInfo())).patient_included


def test_lesion_box_drawn_on_all_panels_outside_the_lesion():
    h, w = 200, 260
    roi = Box(80, 60, 90, 70)
    pixels = speckle(h, w)
    report = render_report(pixels, make_heatmaps(h, w, roi=roi), OPTIONS)
    assert "Input: lesion box (x 80, y 60, 90 x 70 px)" in report.text
    yellow = np.array([255, 220, 0], np.uint8)
    for i in range(3):
        panel = report.layout.crop(report.image, i)
        ring_row = panel[roi.y - 1, roi.x : roi.x + roi.w]
        assert (ring_row == yellow).all(axis=1).mean() > 0.9, f"panel {i} has no box"
    panel0 = report.layout.crop(report.image, 0)
    inside = (slice(roi.y, roi.y + roi.h), slice(roi.x, roi.x + roi.w))
    assert np.array_equal(panel0[inside], np.repeat(pixels[inside][..., None], 3, axis=2))
    far = (slice(0, 20), slice(0, 20))
    assert np.array_equal(panel0[far], np.repeat(pixels[far][..., None], 3, axis=2))


def test_report_draws_and_describes_the_box_as_given():
    """The yellow ring and the evidence sentences are the box as given (as on screen); the
    padded region the model saw is only a thin grey outline."""
    from rcdnet_desktop.core.overlay import describe_evidence, evidence_sentences

    h, w = 200, 260
    box, roi = Box(80, 60, 90, 70), Box(62, 46, 126, 98)
    base = make_heatmaps(h, w)
    # Evidence peaking between the box and the padded region: outside the box, inside the roi.
    peak = gaussian(h, w, 70, 110, 4)
    pred = Prediction(p_benign=0.4, p_malignant=0.6, device="cpu", model_version="t", roi=roi,
                      box=box, box_source="user")
    maps = HeatMaps(peak, base.malignant, "fast", pred)
    report = render_report(speckle(h, w), maps, OPTIONS)
    benign, malignant = evidence_sentences(maps)
    assert benign == describe_evidence(peak, box) != describe_evidence(peak, roi)
    assert "lower left of the lesion box" in benign  # of the roi: the middle left
    assert f"Evidence for benign: {benign}" in report.text
    assert f"Evidence for malignant: {malignant}" in report.text
    yellow = np.array([255, 220, 0], np.uint8)
    grey = np.array([190, 190, 190], np.uint8)
    for i in range(3):
        panel = report.layout.crop(report.image, i)
        assert (panel[box.y - 1, box.x : box.x + box.w] == yellow).all(axis=1).mean() > 0.9
        assert (panel[roi.y - 1, roi.x : roi.x + roi.w] == grey).all(axis=1).mean() > 0.9
        assert not (panel[roi.y - 1, roi.x : roi.x + roi.w] == yellow).all(axis=1).any()


def test_lesion_box_touching_the_edges_does_not_fail():
    h, w = 100, 120
    roi = Box(0, 0, w, h)
    report = render_report(speckle(h, w), make_heatmaps(h, w, roi=roi), OPTIONS)
    assert report.layout.crop(report.image, 0).shape == (h, w, 3)


def test_box_sized_heatmaps_are_placed_at_the_box():
    h, w = 100, 120
    roi = Box(30, 20, 40, 50)
    hm = make_heatmaps(h, w, roi=roi)
    small = HeatMaps(
        benign=gaussian(50, 40, 20, 25, 5),
        malignant=gaussian(50, 40, 10, 10, 5),
        method=hm.method,
        prediction=hm.prediction,
    )
    report = render_report(speckle(h, w), small, OPTIONS)
    assert report.layout.panels[1].w == w


def test_mismatched_heatmap_is_a_clear_error():
    hm = make_heatmaps(100, 120)
    with pytest.raises(ValueError, match="heat map is 120x100 but the image is 121x100"):
        render_report(speckle(100, 121), hm, OPTIONS)


def test_non_ascii_patient_name_renders():
    patient = PatientInfo(name="MÜLLER^Zoë", patient_id="王-1")
    report = render_report(speckle(80, 100), make_heatmaps(80, 100),
                           ReportOptions(when=WHEN, patient=patient))
    assert "MÜLLER, Zoë" in report.text


# --- PNG ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), [(150, 200), (900, 1200)])
def test_png_reads_back_with_panels_at_image_size(tmp_path, h, w):
    pixels = speckle(h, w)
    report = render_report(pixels, make_heatmaps(h, w),
                           ReportOptions(when=WHEN, source_name="x.png"))
    out = export_png(tmp_path / "report.png", report)
    assert out == tmp_path / "report.png"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        back = np.asarray(im)
        text_chunks = dict(im.text)
    assert back.shape == report.image.shape
    assert np.array_equal(back, report.image)
    panel0 = report.layout.crop(back, 0)
    assert panel0.shape[:2] == (h, w)
    assert np.array_equal(panel0[..., 0], pixels)
    assert text_chunks["Software"] == "RcdNet Desktop"
    assert text_chunks["Disclaimer"] == DECISION_SUPPORT_NOTE
    assert text_chunks["Decision"] == "suspicious"
    assert leftovers(tmp_path) == []


def test_png_text_chunks_never_carry_patient(tmp_path):
    report = render_report(speckle(60, 80), make_heatmaps(60, 80),
                           ReportOptions(when=WHEN, patient=PATIENT))
    out = export_png(tmp_path / "r.png", report)
    raw = out.read_bytes()
    assert b"DOE" not in raw and b"PID-0042" not in raw
    with Image.open(out) as im:
        assert all("DOE" not in v and "PID-0042" not in v for v in im.text.values())


def test_png_from_bare_array(tmp_path):
    img = render_report(speckle(60, 80), make_heatmaps(60, 80), OPTIONS).image
    out = export_png(tmp_path / "bare.png", img)
    with Image.open(out) as im:
        assert np.array_equal(np.asarray(im), img)


# --- PDF ----------------------------------------------------------------------------------------


def test_pdf_is_one_page_with_real_text(tmp_path):
    report = render_report(speckle(150, 200), make_heatmaps(150, 200), OPTIONS)
    out = export_pdf(tmp_path / "report.pdf", report)
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    pages = re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data)
    assert len(pages) == 1
    assert re.search(rb"/Count\s+1\b", data)
    text = pdf_text(data)
    assert "Decision support only - not a diagnosis." in text
    assert "Probability of malignancy" in text
    assert "/Subtype /Image" in text or "/Subtype/Image" in text
    assert leftovers(tmp_path) == []


def test_pdf_large_image_and_untrained(tmp_path):
    report = render_report(speckle(900, 1200), make_heatmaps(900, 1200, untrained=True), OPTIONS)
    data = export_pdf(tmp_path / "big.pdf", report).read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data)) == 1
    assert "UNTRAINED" in pdf_text(data)


def test_pdf_metadata_and_text_without_patient_by_default(tmp_path):
    report = render_report(speckle(80, 100), make_heatmaps(80, 100), OPTIONS)
    text = pdf_text(export_pdf(tmp_path / "r.pdf", report).read_bytes())
    assert "DOE" not in text and "PID-0042" not in text
    with_patient = render_report(speckle(80, 100), make_heatmaps(80, 100),
                                 ReportOptions(when=WHEN, patient=PATIENT))
    data = export_pdf(tmp_path / "p.pdf", with_patient).read_bytes()
    assert "PID-0042" in pdf_text(data)
    info = re.search(rb"/Author.*?>>", data, re.S)
    assert info is not None and b"PID-0042" not in info.group(0) and b"DOE" not in info.group(0)


def test_pdf_with_non_latin_patient_does_not_fail(tmp_path):
    patient = PatientInfo(name="王^小明", patient_id="123")
    report = render_report(speckle(80, 100), make_heatmaps(80, 100),
                           ReportOptions(when=WHEN, patient=patient))
    assert export_pdf(tmp_path / "cjk.pdf", report).read_bytes().startswith(b"%PDF")


# --- DICOM Secondary Capture ------------------------------------------------------------------


@pytest.fixture
def dicom_record(tmp_path) -> ImageRecord:
    return write_source_dicom(tmp_path / "source.dcm", speckle(151, 201), patient=PATIENT)


@pytest.mark.filterwarnings("error::UserWarning")  # pydicom warns on values too long for their VR
def test_dicom_sc_defaults(tmp_path, dicom_record):
    report = render_report(dicom_record.pixels, make_heatmaps(151, 201),
                           ReportOptions(when=WHEN, source_name="source.dcm"))
    out = export_dicom_sc(tmp_path / "sc.dcm", dicom_record, report)
    ds = pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == SECONDARY_CAPTURE_SOP_CLASS
    assert ds.SOPClassUID == SECONDARY_CAPTURE_SOP_CLASS
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # De-identified: a new study, the same for every export of this source in this run
    assert ds.StudyInstanceUID != dicom_record.study.study_instance_uid
    again = pydicom.dcmread(export_dicom_sc(tmp_path / "sc2.dcm", dicom_record, report))
    assert again.StudyInstanceUID == ds.StudyInstanceUID and ds.StudyDate == ""
    assert ds.SeriesInstanceUID != dicom_record.study.series_instance_uid
    assert ds.SOPInstanceUID != dicom_record.study.sop_instance_uid
    # The report was rendered from the whole frame (not de-identified: no regions blanked), so
    # text burned into it may remain and the identity is not claimed removed.
    assert ds.BurnedInAnnotation == "YES"
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert ds.ConversionType == "WSD"
    assert "RcdNet" in ds.SeriesDescription
    assert ds.Modality == "US"
    assert ds.ContentDate == "20250314" and ds.ContentTime == "092653"
    # No identifiers by default, anywhere in the file.
    assert ds.PatientName == "" and ds.PatientID == ""
    assert ds.PatientIdentityRemoved == "NO"
    assert ds.DeidentificationMethod == "Header identifiers removed; burned-in text may remain"
    raw = out.read_bytes()
    assert b"DOE" not in raw and b"PID-0042" not in raw and b"19700101" not in raw
    # Pixels: RGB 8-bit, the report's size and content.
    assert (ds.Rows, ds.Columns) == report.image.shape[:2]
    assert ds.SamplesPerPixel == 3 and ds.PhotometricInterpretation == "RGB"
    assert ds.BitsAllocated == 8 and ds.PlanarConfiguration == 0
    assert np.array_equal(ds.pixel_array, report.image)
    # The source is referenced, under its de-identified UID.
    ref = ds.SourceImageSequence[0]
    assert ref.ReferencedSOPInstanceUID not in ("", dicom_record.study.sop_instance_uid)
    assert ref.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.6.1"
    assert dicom_record.study.study_instance_uid.encode() not in out.read_bytes()
    assert leftovers(tmp_path) == []


@pytest.mark.filterwarnings("error::UserWarning")
def test_dicom_sc_with_patient_when_asked(tmp_path, dicom_record):
    report = render_report(dicom_record.pixels, make_heatmaps(151, 201),
                           ReportOptions(when=WHEN, patient=PATIENT))
    out = export_dicom_sc(tmp_path / "sc.dcm", dicom_record, report, include_patient=True)
    ds = pydicom.dcmread(out)
    assert str(ds.PatientName) == "DOE^JANE"
    assert ds.PatientID == "PID-0042"
    assert ds.PatientBirthDate == "19700101"
    assert "PatientIdentityRemoved" not in ds
    # Files with the source's study and references the source image (what a PACS needs)
    assert ds.StudyInstanceUID == dicom_record.study.study_instance_uid
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == \
        dicom_record.study.sop_instance_uid


def test_dicom_sc_refuses_burned_in_patient_with_identity_removed(tmp_path, dicom_record):
    report = render_report(dicom_record.pixels, make_heatmaps(151, 201),
                           ReportOptions(when=WHEN, patient=PATIENT))
    with pytest.raises(ValueError, match="include_patient"):
        export_dicom_sc(tmp_path / "sc.dcm", dicom_record, report)
    assert not (tmp_path / "sc.dcm").exists()


def test_dicom_sc_from_png_source_gets_new_study_and_ot(tmp_path):
    record = ImageRecord(path=tmp_path / "img.png", pixels=speckle(90, 110), source_format="PNG")
    img = render_report(record.pixels, make_heatmaps(90, 110), OPTIONS).image
    ds1 = pydicom.dcmread(export_dicom_sc(tmp_path / "a.dcm", record, img))
    ds2 = pydicom.dcmread(export_dicom_sc(tmp_path / "b.dcm", record, img))
    assert ds1.Modality == "OT"
    assert ds1.StudyInstanceUID and ds1.StudyInstanceUID != ds2.StudyInstanceUID
    assert ds1.SeriesInstanceUID != ds2.SeriesInstanceUID
    assert "SourceImageSequence" not in ds1
    assert np.array_equal(ds1.pixel_array, img)


# --- never overwrite silently, never leave half a file ---------------------------------------


@pytest.fixture
def small_report():
    return render_report(speckle(60, 80), make_heatmaps(60, 80), OPTIONS)


@pytest.mark.parametrize("kind", ["png", "pdf", "dcm"])
def test_existing_target_is_not_overwritten(tmp_path, small_report, kind):
    target = tmp_path / f"existing.{kind}"
    target.write_bytes(b"precious")
    record = ImageRecord(path=tmp_path / "x.png", pixels=speckle(60, 80), source_format="PNG")
    call = {
        "png": lambda **kw: export_png(target, small_report, **kw),
        "pdf": lambda **kw: export_pdf(target, small_report, **kw),
        "dcm": lambda **kw: export_dicom_sc(target, record, small_report, **kw),
    }[kind]
    with pytest.raises(FileExistsError, match="existing"):
        call()
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []
    call(overwrite=True)
    assert target.read_bytes() != b"precious"
    assert leftovers(tmp_path) == []


def test_exists_error_is_typed_and_names_the_file(tmp_path):
    target = tmp_path / "named.png"
    target.write_bytes(b"x")
    with pytest.raises(ExportExistsError) as info:
        atomic_write(target, lambda fh: fh.write(b"y"), overwrite=False)
    assert isinstance(info.value, FileExistsError)
    assert isinstance(info.value, ExportError)
    assert "named.png" in str(info.value)
    assert info.value.path == target


def test_file_appearing_during_write_is_not_replaced(tmp_path):
    target = tmp_path / "race.png"

    def write(fh):
        fh.write(b"new content")
        target.write_bytes(b"someone else's")

    with pytest.raises(FileExistsError):
        atomic_write(target, write, overwrite=False)
    assert target.read_bytes() == b"someone else's"
    assert leftovers(tmp_path) == []


def test_failure_midway_leaves_no_target_and_no_temp(tmp_path, small_report, monkeypatch):
    def half_then_fail(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\n half a file")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(Image.Image, "save", half_then_fail)
    target = tmp_path / "broken.png"
    with pytest.raises(ExportError, match="encoder crashed") as info:
        export_png(target, small_report)
    assert "broken.png" in str(info.value)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_dicom_failure_midway_leaves_nothing(tmp_path, dicom_record, monkeypatch):
    report = render_report(dicom_record.pixels, make_heatmaps(151, 201), OPTIONS)

    def half_then_fail(self, fp, *args, **kwargs):
        fp.write(b"\x00" * 128 + b"DICM")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", half_then_fail)
    target = tmp_path / "sc.dcm"
    with pytest.raises(ExportError, match="disk is full"):
        export_dicom_sc(target, dicom_record, report)
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_failure_when_overwriting_keeps_the_old_file(tmp_path, small_report, monkeypatch):
    target = tmp_path / "keep.pdf"
    target.write_bytes(b"old report")
    monkeypatch.setattr(export, "pdf_bytes", lambda report: b"%PDF-1.4 partial")

    def fail_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail_fsync)
    with pytest.raises(ExportError, match="input/output error"):
        export_pdf(target, small_report, overwrite=True)
    assert target.read_bytes() == b"old report"
    assert leftovers(tmp_path) == []


def test_interrupt_still_cleans_up(tmp_path):
    def interrupted(fh):
        fh.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "k.bin", interrupted, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_a_clear_error(tmp_path, small_report):
    with pytest.raises(ExportError, match="does not exist"):
        export_png(tmp_path / "no" / "such" / "r.png", small_report)


def test_folder_as_target_is_a_clear_error(tmp_path, small_report):
    with pytest.raises(ExportError, match="folder"):
        export_png(tmp_path, small_report, overwrite=True)


def test_unwritable_folder_simulated(tmp_path, small_report, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(ExportError, match="not writable"):
        export_png(tmp_path / "r.png", small_report)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions"
)
def test_unwritable_folder_real(tmp_path, small_report):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="not writable"):
            export_png(locked / "r.png", small_report)
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_written_file_has_normal_permissions(tmp_path, small_report):
    out = export_png(tmp_path / "perm.png", small_report)
    assert out.stat().st_mode & 0o777 == 0o644


def test_pdf_orientation_follows_the_figure(tmp_path):
    def media_box(h: int, w: int) -> list[float]:
        report = render_report(speckle(h, w), make_heatmaps(h, w), OPTIONS)
        data = export_pdf(tmp_path / f"{h}x{w}.pdf", report).read_bytes()
        m = re.search(rb"/MediaBox\s*\[\s*([\d.\s]+)\]", data)
        assert m is not None
        return [float(v) for v in m.group(1).split()]

    wide = media_box(150, 400)
    assert wide[2] > wide[3]  # landscape for the usual wide three-panel figure
    tall = media_box(1000, 250)
    assert tall[3] > tall[2]  # portrait fits a tall figure better


# --- real files nobody here wrote ------------------------------------------------------------


def test_real_cine_dicom_round_trip(tmp_path):
    from pydicom.data import get_testdata_file

    from rcdnet_desktop.core.io import read_image

    src = get_testdata_file("examples_ybr_color.dcm")  # 30-frame JPEG YBR ultrasound cine
    record = read_image(src)
    h, w = record.height, record.width
    base = make_heatmaps(h, w)
    pred = Prediction(
        p_benign=0.4,
        p_malignant=0.6,
        device="cpu",
        model_version="t",
        frame=4,
        roi=Box(50, 40, 90, 60),
    )
    hm = HeatMaps(base.benign, base.malignant, "fast Grad-CAM", pred)

    report = export.render_report(record.frame(hm.prediction.frame), hm,
                                  export.ReportOptions.of_record(record, when=WHEN))
    assert report.source_name == "examples_ybr_color.dcm"
    assert not report.patient_included and str(record.patient.patient_id) not in report.text
    assert "frame 5" in report.text
    frame4 = record.frame_loader(4)
    inside = (slice(40, 100), slice(50, 140))
    assert np.array_equal(report.layout.crop(report.image, 0)[inside], frame4[inside])

    ds = pydicom.dcmread(export_dicom_sc(tmp_path / "sc.dcm", record, report))
    source = pydicom.dcmread(src, stop_before_pixels=True)
    assert ds.StudyInstanceUID != source.StudyInstanceUID  # de-identified
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert ds.Modality == "US"
    assert ds.PatientName == "" and ds.PatientID == ""
    ref = ds.SourceImageSequence[0]
    assert ref.ReferencedSOPInstanceUID != source.SOPInstanceUID  # replaced, consistently
    assert ref.ReferencedSOPClassUID == source.SOPClassUID
    assert int(ref.ReferencedFrameNumber) == 5
    assert np.array_equal(ds.pixel_array, report.image)

    options = export.ReportOptions.of_record(record, when=WHEN, include_patient=True)
    with_patient = export.render_report(record.frame(hm.prediction.frame), hm, options)
    assert record.patient.patient_id in with_patient.text
    ds = pydicom.dcmread(
        export_dicom_sc(tmp_path / "sc_p.dcm", record, with_patient, include_patient=True)
    )
    assert ds.PatientID == record.patient.patient_id


# --- the export table ----------------------------------------------------------------------------


def test_export_table_entries_are_complete_and_distinct():
    from rcdnet_desktop.core.export.formats import EXPORT_FORMATS, export_format

    keys = [f.key for f in EXPORT_FORMATS]
    assert keys == ["png", "pdf", "dicom", "sr"] and len(set(keys)) == len(keys)
    # Formats may share a suffix (the SC and the SR are both .dcm), never a default name.
    assert len({f.name_tag + f.suffix for f in EXPORT_FORMATS}) == len(keys)
    for f in EXPORT_FORMATS:
        assert f.suffix.startswith(".") and f.suffix == f.suffix.lower()
        assert f.label and callable(f.write) and export_format(f.key) is f
        assert f.file_filter == f"{f.filter_name} (*{f.suffix})"
    with pytest.raises(ValueError, match="unknown export format 'tiff'"):
        export_format("tiff")


def test_every_format_is_written_through_the_table(tmp_path, dicom_record):
    from rcdnet_desktop.core.export.formats import EXPORT_FORMATS, export_file_name, write_report

    maps = make_heatmaps(151, 201)
    options = export.ReportOptions.of_record(dicom_record, when=WHEN, include_patient=True)
    report = export.render_report(dicom_record.frame(maps.prediction.frame), maps, options)
    png_record = ImageRecord(path=tmp_path / "plain.png", pixels=speckle(151, 201))
    for f in EXPORT_FORMATS:
        target = tmp_path / export_file_name(dicom_record, 0, f.key)
        assert target.name == f"source_{f.name_tag}{f.suffix}"
        assert write_report(f.key, target, dicom_record, report, include_patient=True) == target
        with pytest.raises(ExportExistsError):
            write_report(f.key, target, dicom_record, report, include_patient=True)
        if f.needs_dicom_source:
            with pytest.raises(ValueError, match="needs a DICOM source"):
                write_report(f.key, tmp_path / f"x{f.suffix}", png_record, report)
            assert not (tmp_path / f"x{f.suffix}").exists()
    assert (tmp_path / "source_rcdnet.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "source_rcdnet.pdf").read_bytes().startswith(b"%PDF")
    ds = pydicom.dcmread(tmp_path / "source_rcdnet.dcm")
    assert ds.SOPClassUID == SECONDARY_CAPTURE_SOP_CLASS
    assert str(ds.PatientID) == PATIENT.patient_id  # the writer passed include_patient on
    sr = pydicom.dcmread(tmp_path / "source_rcdnet_sr.dcm")
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert str(sr.PatientID) == PATIENT.patient_id
    cine = ImageRecord(path=Path("cine.dcm"), pixels=speckle(10, 10), frame_count=5)
    assert export_file_name(cine, 2, "pdf", "heatmaps") == "cine_frame3_heatmaps.pdf"


# --- shared evidence scale, colour bar, operating point, method names --------------------------


def _colour_bar_row(report) -> np.ndarray:
    """The row of the scale band where the colour bar is widest (its coloured pixels)."""
    band = report.layout.scale_band
    rows = report.image[band.y : band.y + band.h].astype(int)
    coloured = np.abs(rows - rows.mean(axis=2, keepdims=True)).sum(axis=2) > 30
    widest = int(np.argmax(coloured.sum(axis=1)))
    return rows[widest][coloured[widest]]


def test_report_has_a_colour_bar_under_the_evidence_panels():
    from rcdnet_desktop.core.evidence_scale import SCALE_CAPTION
    from rcdnet_desktop.core.overlay import colorize

    report = render_report(speckle(150, 200), make_heatmaps(150, 200),
                           ReportOptions(when=WHEN, colormap="jet"))
    layout = report.layout
    band = layout.scale_band
    assert band is not None
    assert band.y >= layout.panels[1].y + layout.panels[1].h  # under the panels
    assert band.y + band.h <= layout.text_band.y  # above the text, so the PDF figure has it
    bar = _colour_bar_row(report)
    assert len(bar) > 100
    # It runs through the colour map from its low end to its high end.
    low, high = colorize(np.array([[0.0, 1.0]], np.float32), "jet")[0].astype(int)
    assert np.abs(bar[0] - low).sum() < 40 and np.abs(bar[-1] - high).sum() < 40
    assert SCALE_CAPTION.lower() in report.text


def test_pdf_figure_holds_the_colour_bar(tmp_path):
    report = render_report(speckle(150, 200), make_heatmaps(150, 200), OPTIONS)
    data = export_pdf(tmp_path / "bar.pdf", report).read_bytes()
    figure = report.image[: report.layout.text_band.y]
    h, w = figure.shape[:2]
    found = False
    for m in re.finditer(rb"<<(.*?)>>\s*stream\r?\n(.*?)endstream", data, re.S):
        head = m.group(1)
        if b"/Image" in head and re.search(rb"/Width %d\b" % w, head) \
                and re.search(rb"/Height %d\b" % h, head):
            pixels = np.frombuffer(inflate(m.group(2)), np.uint8)[: h * w * 3]
            assert np.array_equal(pixels.reshape(h, w, 3), figure)
            found = True
    assert found
    band = report.layout.scale_band
    assert band.y + band.h <= h  # the colour bar is part of the figure on the page


def test_report_names_the_method_in_plain_words():
    from rcdnet_desktop.core.model.explain import FAST

    base = make_heatmaps(80, 100)
    report = render_report(speckle(80, 100), HeatMaps(base.benign, base.malignant, FAST,
                                                      base.prediction), OPTIONS)
    line = next(x.text for x in report.lines if x.text.startswith("Heat maps:"))
    assert line.startswith("Heat maps: Grad-CAM, contrastive (closed form);")
    assert "fast" not in line.lower()
    assert report.summary["Heat map method"] == "Grad-CAM, contrastive (closed form)"


def test_report_says_what_the_cut_off_means_when_the_card_measured_it():
    from types import SimpleNamespace

    from rcdnet_desktop.core.operating_point import OperatingPoint

    op = OperatingPoint.from_card(SimpleNamespace(operating_point={
        "suspicious_threshold": 0.16,
        "at_threshold_internal": {"recall": {"value": 0.9}},
        "at_threshold_external": {"recall": {"value": 0.7556}}}))
    hm = make_heatmaps(80, 100, p_malignant=0.07, threshold=0.16)
    text = render_report(speckle(80, 100), hm, ReportOptions(when=WHEN, operating_point=op)).text
    assert "Below the suspicious cut-off (0.16)" in text
    assert "90% of cancers in internal validation and 76% at another hospital" in text
    bare = render_report(speckle(80, 100), hm, OPTIONS).text  # a card that measured nothing
    assert "Below the suspicious cut-off (0.16)." in bare and "cancers" not in bare


@pytest.mark.parametrize("p", [0.21, 0.35])
def test_a_result_above_the_cut_off_is_suspicious_in_every_export_and_never_benign(p, tmp_path):
    hm = make_heatmaps(80, 100, p_malignant=p, threshold=0.158, roi=Box(20, 20, 40, 30))
    report = render_report(speckle(80, 100), hm, OPTIONS)
    assert "benign" not in " ".join(line.text for line in report.lines
                                    if not line.text.startswith("Evidence for benign")).lower()
    headline = next(line for line in report.lines if line.text.startswith("Result:"))
    assert headline.text.endswith("suspicious") and headline.kind == "alert"
    assert report.summary["Decision"] == "suspicious"
    assert "At or above the suspicious cut-off (0.16)" in report.text


def test_the_report_says_when_the_result_depends_on_the_box_and_what_was_classified():
    from dataclasses import replace

    hm = make_heatmaps(80, 100, p_malignant=0.2, threshold=0.158, roi=Box(20, 20, 40, 30))
    pred = replace(hm.prediction, box_p_range=(0.12, 0.31), lesion_region=Box(25, 24, 30, 22))
    report = render_report(speckle(80, 100), replace(hm, prediction=pred), OPTIONS)
    assert ("Depends on the box: drawn slightly differently, P ranges from 0.12 to 0.31, on "
            "both sides of the cut-off.") in report.text
    assert "classified as the lesion the localiser outlines in it (x 25, y 24, 30 x 22 px)" \
        in report.text


def test_report_text_leads_with_the_warnings_then_the_band_as_the_screen_does():
    maps = make_heatmaps(80, 100, warnings=("colour overlay detected",))
    report = render_report(speckle(80, 100), maps, OPTIONS)
    texts = [line.text for line in report.lines]
    first = {key: next(i for i, t in enumerate(texts) if t.startswith(key))
             for key in ("Warning:", "Result:", "Likelihood band:", "Probability of malignancy",
                         "At or above the suspicious cut-off")}
    assert first["Warning:"] < first["Result:"] < first["Likelihood band:"] \
        < first["Probability of malignancy"] < first["At or above the suspicious cut-off"]


@pytest.mark.parametrize("include_patient", [False, True])
def test_a_deidentified_report_leaves_out_the_file_name(include_patient):
    """A file's name may carry the patient's: only a report with the patient names the file."""
    pixels = speckle(120, 160)
    record = ImageRecord(path=Path("/scans/DOE_JANE_left.png"), pixels=pixels)
    report = render_report(pixels, make_heatmaps(120, 160), ReportOptions.of_record(
        record, include_patient=include_patient, when=WHEN))
    assert ("DOE_JANE" in report.text) is include_patient
    withheld = "Source: file name left out (de-identified)"
    assert (withheld in report.text) is not include_patient
    assert ("DOE_JANE" in report.summary["Source"]) is include_patient  # PNG and PDF metadata
