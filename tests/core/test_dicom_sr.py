"""The Structured Report of a result: content, identity, and what dcmtk and dicom3tools say."""

from __future__ import annotations

import shutil
import subprocess

import pydicom
import pytest

from rcdnet_desktop.core.export.dicom_sc import dicom_sc_dataset
from rcdnet_desktop.core.export.dicom_sr import dicom_sr_dataset, export_dicom_sr
from rcdnet_desktop.core.types import Box, Descriptor, Prediction


@pytest.fixture(scope="module")
def us_record():
    from pydicom.data import get_testdata_file

    from rcdnet_desktop.core.io import read_image

    path = get_testdata_file("US1_UNCR.dcm", download=False)
    if path is None:
        pytest.skip("pydicom-data is not installed")
    return read_image(path)


def _pred(**kw):
    base = dict(p_benign=0.27, p_malignant=0.73, device="cpu-onnx", model_version="2.1.0",
                box=Box(120, 80, 200, 150), box_source="auto", roi=Box(100, 60, 240, 190))
    base.update(kw)
    return Prediction(**base)


def _content(ds):
    """Every content item of the tree, flattened: (concept meaning, item)."""
    out = []

    def walk(items):
        for item in items:
            out.append((item.ConceptNameCodeSequence[0].CodeMeaning, item))
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return out


def test_sr_holds_the_result(us_record, tmp_path):
    pred = _pred(descriptors=(Descriptor("shape", "irregular", 0.8),))
    path = export_dicom_sr(tmp_path / "sr.dcm", us_record, pred, include_patient=True)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert ds.PatientID == us_record.patient.patient_id
    assert ds.StudyInstanceUID == us_record.study.study_instance_uid
    items = dict(_content(ds))
    prob = items["Probability of cancer"]
    assert float(prob.MeasuredValueSequence[0].NumericValue) == pytest.approx(0.73)
    assert "Pathology" not in items  # the model cannot know one
    decision = items["Result at the model's suspicious cut-off"].ConceptCodeSequence[0]
    assert decision.CodeMeaning == "suspicious"  # 0.73 >= the default cut-off 0.5
    band = items["Likelihood band of the calibrated probability"].ConceptCodeSequence[0]
    assert band.CodeMeaning == "high (50-95%)" and band.CodeValue == "BAND-HIGH"
    shape = items["Shape"].ConceptCodeSequence[0]
    assert (shape.CodingSchemeDesignator, shape.CodeValue) == ("SCT", "49608001")  # Irregular
    region = items["Image Region"]
    assert region.GraphicType == "POLYLINE"
    assert list(region.GraphicData) == [120, 80, 320, 80, 320, 230, 120, 230, 120, 80]
    ref = region.ContentSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == us_record.study.sop_instance_uid
    comments = [i.TextValue for m, i in _content(ds) if m == "Comment"]
    assert "Decision support only - not a diagnosis." in comments
    assert any("found automatically" in c for c in comments)
    assert "Likelihood band: high (50-95%). Likelihood of malignancy: the BI-RADS 4C range, " \
        "not a BI-RADS assessment." in comments
    algo = items["Algorithm Name"]
    assert algo.TextValue == "RcdNet" and items["Algorithm Version"].TextValue == "2.1.0"
    scheme = ds.CodingSchemeIdentificationSequence[0]
    assert scheme.CodingSchemeDesignator == "99RCDNET" and scheme.CodingSchemeName


def test_sr_rereads_in_highdicom(us_record, tmp_path):
    import highdicom as hd

    path = export_dicom_sr(tmp_path / "sr.dcm", us_record, _pred())
    sr = hd.sr.srread(path)
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == 1
    (m,) = groups[0].get_measurements()
    assert m.value == pytest.approx(0.73)
    assert groups[0].roi.value.shape == (5, 2)


def test_deidentified_sr_and_sc_share_a_new_study(us_record):
    from rcdnet_desktop.core.overlay import as_rgb

    sr = dicom_sr_dataset(us_record, _pred(), include_patient=False)
    sc = dicom_sc_dataset(us_record, as_rgb(us_record.pixels), include_patient=False)
    assert sr.PatientIdentityRemoved == "YES" and sr.PatientID == "" and sr.PatientName == ""
    assert sr.StudyInstanceUID == sc.StudyInstanceUID != us_record.study.study_instance_uid
    raw = str(sr)
    for secret in (us_record.study.study_instance_uid, us_record.study.sop_instance_uid,
                   us_record.patient.patient_id):
        assert secret not in raw
    ref = [i for m, i in _content(sr) if m == "Image Region"][0]
    assert ref.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == \
        sc.SourceImageSequence[0].ReferencedSOPInstanceUID


def test_whole_image_without_a_box_and_non_dicom_refused(us_record, tmp_path):
    sr = dicom_sr_dataset(us_record, _pred(box=None, roi=None, box_source="none"))
    region = [i for m, i in _content(sr) if m == "Image Region"][0]
    rows, cols = us_record.pixels.shape[:2]
    assert list(region.GraphicData)[4:6] == [cols, rows]
    from dataclasses import replace
    png = replace(us_record, path=tmp_path / "x.png", source_format="PNG")
    with pytest.raises(ValueError, match="needs a DICOM source"):
        dicom_sr_dataset(png, _pred())


@pytest.mark.parametrize("tool", ["dsrdump", "dciodvfy"])
def test_sr_passes_dcmtk_and_dicom3tools(us_record, tmp_path, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt-get install dcmtk dicom3tools, or run "
                    "./scripts/test-services as root)")
    path = export_dicom_sr(tmp_path / "sr.dcm", us_record, _pred(), include_patient=True)
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    if tool == "dsrdump":
        assert "Probability of cancer" in out and "Imaging Measurement Report" in out
    else:
        errors = [line for line in out.splitlines() if line.startswith("Error")]
        assert errors == [], out


@pytest.mark.parametrize("include_patient", [False, True])
def test_secondary_capture_passes_dicom3tools(us_record, tmp_path, include_patient):
    """The SC sent beside the SR is a valid IOD too (Laterality present, empty: unknown)."""
    import numpy as np

    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy is not installed (apt-get install dicom3tools, or run "
                    "./scripts/test-services as root)")
    ds = dicom_sc_dataset(us_record, np.zeros((60, 80, 3), np.uint8),
                          include_patient=include_patient)
    ds.save_as(tmp_path / "sc.dcm", enforce_file_format=True)
    run = subprocess.run(["dciodvfy", str(tmp_path / "sc.dcm")], capture_output=True, text=True,
                         timeout=60)
    out = run.stdout + run.stderr
    assert [line for line in out.splitlines() if line.startswith("Error")] == [], out


def _record_with_sop_class(us_record, tmp_path, uid):
    from rcdnet_desktop.core.io import read_image

    ds = pydicom.dcmread(us_record.path)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = uid
    ds.save_as(tmp_path / "source.dcm")
    return read_image(tmp_path / "source.dcm")


def test_a_retired_ultrasound_class_is_referenced_as_itself(us_record, tmp_path):
    """Older scanners write the retired Ultrasound Image Storage class, which the SR library's
    tables lack: the region still refers to the source as it is."""
    retired = "1.2.840.10008.5.1.4.1.1.6"
    record = _record_with_sop_class(us_record, tmp_path, retired)
    path = export_dicom_sr(tmp_path / "sr.dcm", record, _pred())
    ds = pydicom.dcmread(path)
    region = dict(_content(ds))["Image Region"]
    assert region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPClassUID == retired
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPClassUID == retired
    assert retired + ".1" not in str(ds)  # the stand-in class is named nowhere


def test_an_unknown_class_is_refused_in_plain_words(us_record, tmp_path):
    record = _record_with_sop_class(us_record, tmp_path, "1.2.826.0.1.3680043.8.498.1")
    with pytest.raises(ValueError, match="cannot refer to this kind of DICOM object"):
        dicom_sr_dataset(record, _pred())


@pytest.mark.parametrize(("name", "frames"), [("examples_ybr_color.dcm", [3]),
                                              ("SC_rgb_rle_2frame.dcm", None)])
def test_a_frame_is_referenced_only_for_a_multi_frame_class(tmp_path, name, frames):
    """A US multi-frame clip's region names its frame; a Secondary Capture file holding two
    frames is of a single-frame class, where the standard forbids a frame number."""
    from pydicom.data import get_testdata_file

    from rcdnet_desktop.core.io import read_image

    record = read_image(get_testdata_file(name))
    assert record.frame_count > 1
    ds = pydicom.dcmread(export_dicom_sr(tmp_path / "sr.dcm", record, _pred(frame=2)))
    ref = dict(_content(ds))["Image Region"].ContentSequence[0].ReferencedSOPSequence[0]
    got = ref.get("ReferencedFrameNumber")
    assert (None if got is None else [int(got)]) == frames
