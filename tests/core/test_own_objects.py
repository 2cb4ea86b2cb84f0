"""The SR says what the model can know in standard codes, and the program knows its own
objects when they come back: written with the app's writers from a synthetic ultrasound DICOM,
read back through ``read_image`` (the path every caller takes)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pydicom
import pytest

from rcdnet_desktop.core import dicom_codes as dc
from rcdnet_desktop.core.bands import band_for
from rcdnet_desktop.core.export.dicom_sc import export_dicom_sc
from rcdnet_desktop.core.export.dicom_sr import export_dicom_sr
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.io.own import OTHER_SR_NOTE, OWN_NOTE, not_classified, own_object
from rcdnet_desktop.core.lexicon import DESCRIPTORS
from rcdnet_desktop.core.measure import Calibration, Measurement, measure_all
from rcdnet_desktop.core.types import Box, Descriptor, Prediction
from tests.dicom_samples import US_MM_PER_PIXEL, patient_dicom

DESCRIBED = (Descriptor("shape", "irregular", 0.81), Descriptor("margin", "not circumscribed", 0.7),
             Descriptor("margin spiculated", "yes", 0.6), Descriptor("margin angular", "no", 0.6),
             Descriptor("echo pattern", "hypoechoic", 0.66),
             Descriptor("posterior features", "shadowing", 0.55),
             Descriptor("calcifications", "present", 0.58))
BOX = Box(300, 120, 150, 100)  # inside the calibrated region (x 120-800, y 60-350)


def _pred(**kw) -> Prediction:
    # P = 0.35 at a card cut-off of 0.158: suspicious, although below 0.5.
    base = dict(p_benign=0.65, p_malignant=0.35, device="cpu", model_version="3.0.0",
                box=BOX, box_source="user", band=band_for(0.35), threshold=0.158,
                descriptors=DESCRIBED)
    base.update(kw)
    return Prediction(**base)


@pytest.fixture
def study(tmp_path):
    """A calibrated ultrasound image, its SR (with two calipers) and its SC, in one folder."""
    source = patient_dicom(tmp_path / "study" / "us.dcm")
    record = read_image(source)
    calipers = measure_all(Calibration.of(record),
                           [Measurement(300, 200, 400, 200), Measurement(350, 120, 350, 220)])
    sr = export_dicom_sr(tmp_path / "study" / "us_rcdnet_sr.dcm", record, _pred(),
                         include_patient=True, measurements=calipers)
    sc = export_dicom_sc(tmp_path / "study" / "us_rcdnet.dcm", record,
                         np.zeros((40, 60, 3), np.uint8), include_patient=True)
    return record, sr, sc, calipers


def _items(ds):
    out = []

    def walk(items):
        for item in items:
            out.append(item)
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return out


def _code(seq):
    return (seq[0].CodingSchemeDesignator, seq[0].CodeValue)


# --- the code table -------------------------------------------------------------------------


def test_every_standard_code_is_in_pydicoms_tables_with_its_meaning():
    from pydicom.sr._concepts_dict import concepts

    table = [c for pair in dc.LEXICON.values() for c in pair]
    table += [dc.PROCEDURE, dc.FINDING, dc.FINDING_SITE, dc.PROBABILITY, dc.COMMENT, dc.WIDTH,
              dc.HEIGHT, dc.LENGTH, dc.PRESENT, dc.ABSENT]
    for c in table:
        if c.scheme == dc.SCHEME:
            continue
        meanings = {meaning.lower() for d in concepts[c.scheme].values()
                    for value, (meaning, _cids) in d.items() if value == c.value}
        assert c.meaning.lower() in meanings, (c, meanings)


def test_every_lexicon_class_has_codes_and_private_codes_are_few():
    assert set(dc.LEXICON) == {(n, v) for n, vs in DESCRIPTORS.items() for v in vs}
    private = [c.value for c in dc.private_concepts()]
    assert sorted(private) == sorted(["DECISION", "SUSPICIOUS", "BELOW-CUTOFF", "BAND",
                                      "OVAL-OR-ROUND", "NONCIRCUMSCRIBED", "HETEROGENEOUS",
                                      "ECHO-OTHER"])
    assert all(len(c.meaning) <= 64 for pair in dc.LEXICON.values() for c in pair)
    assert all(len(c.value) <= 16 for c in dc.private_concepts())  # a Code Value (SH)
    assert len(dc.band_code("a very long band name indeed", "x").value) <= 16


def test_the_manufacturer_is_the_reports_software_name():
    from rcdnet_desktop.core.export.report import SOFTWARE_NAME

    assert dc.MANUFACTURER == SOFTWARE_NAME


# --- what the SR codes --------------------------------------------------------------------------


def test_sr_codes_the_decision_band_lexicon_and_sizes_never_a_pathology(study):
    _record, sr, _sc, _calipers = study
    ds = pydicom.dcmread(sr)
    items = _items(ds)
    names = [_code(i.ConceptNameCodeSequence) for i in items]
    assert ("DCM", "111042") not in names  # Pathology: the model cannot know one
    values = [_code(i.ConceptCodeSequence) for i in items if "ConceptCodeSequence" in i]
    assert ("SCT", "30807003") not in values and ("SCT", "21594007") not in values
    coded = {_code(i.ConceptNameCodeSequence): i for i in items if i.ValueType == "CODE"}
    decision = coded[("99RCDNET", "DECISION")].ConceptCodeSequence
    assert _code(decision) == ("99RCDNET", "SUSPICIOUS")  # 0.35 at a cut-off below it
    band = coded[("99RCDNET", "BAND")].ConceptCodeSequence[0]
    assert band.CodeMeaning == "moderate (10-50%)"
    pairs = {(_code(i.ConceptNameCodeSequence), _code(i.ConceptCodeSequence))
             for i in items if i.ValueType == "CODE"}
    assert (("SCT", "300842002"), ("SCT", "49608001")) in pairs  # Shape: Irregular
    assert (("DCM", "111037"), ("SCT", "129742005")) in pairs  # Margins: Spiculated lesion
    assert (("DCM", "111343"), ("SCT", "272519000")) in pairs  # Angular margins: Absent
    assert (("DCM", "111360"), ("DCM", "111364")) in pairs  # Echo pattern: Hypoechoic
    assert (("DCM", "111366"), ("DCM", "111369")) in pairs  # Posterior shadowing
    assert (("SCT", "309587003"), ("SCT", "52101004")) in pairs  # Calcification: Present
    nums = {}
    for i in items:
        if i.ValueType == "NUM":
            mv = i.MeasuredValueSequence[0]
            nums.setdefault(i.ConceptNameCodeSequence[0].CodeMeaning, []).append(
                (float(mv.NumericValue), mv.MeasurementUnitsCodeSequence[0].CodeValue))
    assert nums["Probability of cancer"] == [(0.35, "1")]
    assert nums["Width"][0] == (pytest.approx(150 * US_MM_PER_PIXEL, abs=0.01), "mm")
    assert nums["Height"][0] == (pytest.approx(100 * US_MM_PER_PIXEL, abs=0.01), "mm")
    lengths = sorted(v for v, _ in nums["Length"])
    assert lengths == pytest.approx([100 * US_MM_PER_PIXEL] * 2, abs=0.01)
    texts = {i.ConceptNameCodeSequence[0].CodeMeaning: i.TextValue
             for i in items if i.ValueType == "TEXT"}
    assert texts["Algorithm Parameters"] == "suspicious cut-off 0.158"
    comments = [i.TextValue for i in items if i.ValueType == "TEXT"
                and i.ConceptNameCodeSequence[0].CodeMeaning == "Comment"]
    assert "At or above the suspicious cut-off (0.16)." in comments
    assert any(c.startswith("Lexicon: shape: irregular (81%)") for c in comments)


def test_an_uncalibrated_image_has_no_box_size_and_calipers_in_pixels(study, tmp_path):
    record = replace(study[0], regions=(), pixel_spacing=None)
    calipers = measure_all(Calibration.of(record), [Measurement(0, 0, 30, 40)])
    ds = pydicom.dcmread(export_dicom_sr(tmp_path / "sr.dcm", record, _pred(),
                                         measurements=calipers))
    nums = {i.ConceptNameCodeSequence[0].CodeMeaning: i.MeasuredValueSequence[0]
            for i in _items(ds) if i.ValueType == "NUM"}
    assert "Width" not in nums and "Height" not in nums
    assert float(nums["Length"].NumericValue) == 50.0
    assert nums["Length"].MeasurementUnitsCodeSequence[0].CodeValue == "{pixels}"


@pytest.mark.parametrize("tool", ["dsrdump", "dciodvfy"])
def test_the_full_sr_passes_dcmtk_and_dicom3tools(study, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (./scripts/test-services installs it)")
    run = subprocess.run([tool, str(study[1])], capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    if tool == "dsrdump":
        assert "suspicious" in out and "Caliper 1" in out
    else:
        assert [line for line in out.splitlines() if line.startswith("Error")] == [], out


# --- the program's own objects, read back --------------------------------------------------


def test_own_sr_read_over_its_source_image(study):
    record, sr, _sc, calipers = study
    got = read_image(sr)
    assert got.path == sr and got.has_image
    assert np.array_equal(got.pixels, record.pixels)  # the source, found in the folder
    assert got.regions == record.regions
    doc = got.stored
    assert doc.own and doc.kind == "Comprehensive SR"
    r = doc.result
    assert r.p_malignant == pytest.approx(0.35) and r.suspicious is True
    assert r.band == "moderate (10-50%)"
    assert r.descriptors == tuple((d.name, d.value) for d in DESCRIBED)
    assert r.box == BOX
    assert r.box_mm == pytest.approx((150 * US_MM_PER_PIXEL, 100 * US_MM_PER_PIXEL), abs=0.01)
    assert [m.label for m in r.calipers] == ["Caliper 1", "Caliper 2"]
    assert r.calipers[0].points == ((300, 200), (400, 200))
    assert r.calipers[0].value == pytest.approx(calipers[0].length.value, abs=0.01)
    assert not_classified(got) == OWN_NOTE
    words = "\n".join(doc.lines())
    assert "Decision at the model's cut-off (0.16): suspicious" in words
    assert "Calibrated probability of malignancy: 0.35" in words
    assert "Lexicon: shape: irregular; margin: not circumscribed" in words
    assert "Caliper 1 (Length): 26.2 mm" in words
    assert "  Decision support only - not a diagnosis." in doc.lines()
    assert "enign" not in words and "alignant" not in words.replace("of malignancy", "")


def test_own_sr_without_its_source_is_shown_in_words(study, tmp_path):
    alone = tmp_path / "elsewhere" / "alone"
    alone.mkdir(parents=True)
    moved = shutil.copy(study[1], alone / "sr.dcm")
    got = read_image(moved)
    assert not got.has_image and got.stored.own
    assert got.patient.patient_id == "PID-001"
    assert "Decision at the model's cut-off (0.16): suspicious" in got.stored.lines()


def test_own_secondary_capture_is_recognised(study):
    record, _sr, sc, _ = study
    got = read_image(sc)
    assert own_object(got.study) == "sc" and not_classified(got) == OWN_NOTE
    assert own_object(record.study) == "" and not_classified(record) == ""


def test_a_capture_by_another_program_is_an_image(study, tmp_path):
    ds = pydicom.dcmread(study[2])
    ds.Manufacturer = "Other Vendor"
    ds.save_as(tmp_path / "other_sc.dcm")
    assert not_classified(read_image(tmp_path / "other_sc.dcm")) == ""


def _other_tool_sr(record, path):
    """A TID 1500 report by another tool (highdicom): a lesion's long axis on the image."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    source = pydicom.dcmread(record.path)
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array([[10, 10], [60, 10], [60, 40], [10, 40], [10, 10]], np.float32),
        source_image=hd.sr.SourceImageForRegion.from_source_image(source))
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Nodule A"),
        referenced_region=region, finding_type=codes.SCT.Mass,
        measurements=[hd.sr.Measurement(name=codes.SCT.LongAxis, value=17.5,
                                        unit=codes.UCUM.Millimeter)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(codes.DCM.Margins,
                                                             codes.SCT.CircumscribedLesion)])
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name="Reader^One"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.SCT.UltrasonographyOfBreast, imaging_measurements=[group])
    sr = hd.sr.EnhancedSR(evidence=[source], content=report[0], series_instance_uid=hd.UID(),
                          series_number=5, sop_instance_uid=hd.UID(), instance_number=1,
                          manufacturer="Other Vendor")
    sr.save_as(path, enforce_file_format=True)
    return path


def test_another_tools_tid1500_sr_is_shown_as_text(study):
    record = study[0]
    path = _other_tool_sr(record, record.path.parent / "other_sr.dcm")
    got = read_image(path)
    assert not got.stored.own and got.stored.result is None
    assert got.has_image  # its source is in the folder
    assert not_classified(got) == OTHER_SR_NOTE
    words = "\n".join(got.stored.lines())
    assert "Enhanced SR, by Other Vendor" in words
    assert "Nodule A - Mass" in words
    assert "Long axis: 17.5 mm" in words
    assert "Margins: Circumscribed lesion" in words


def test_a_basic_text_sr_is_shown_as_its_outline(tmp_path):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from tests.dicom_samples import US_WITH_REGIONS

    source = pydicom.dcmread(US_WITH_REGIONS)
    root = hd.sr.ContainerContentItem(name=codes.DCM.ImagingMeasurementReport)
    root.ContentSequence = [hd.sr.TextContentItem(
        name=codes.DCM.Finding, value="No abnormality seen",
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)]
    sr = hd.sr.EnhancedSR(evidence=[source], content=root, series_instance_uid=hd.UID(),
                          series_number=1, sop_instance_uid=hd.UID(), instance_number=1)
    sr.save_as(tmp_path / "text_sr.dcm", enforce_file_format=True)
    got = read_image(tmp_path / "text_sr.dcm")
    assert not got.has_image
    assert "Finding: No abnormality seen" in got.stored.lines()


def test_batch_skips_own_objects_with_the_reason(study, engine):
    from rcdnet_desktop.core.batch import review

    folder = study[0].path.parent
    items = {i.path.name: i for i in review([folder], engine)}
    assert items["us.dcm"].status == "ok"
    for name in ("us_rcdnet.dcm", "us_rcdnet_sr.dcm"):
        assert items[name].status == "skipped" and OWN_NOTE in items[name].error


def test_a_report_without_its_image_goes_over_it_only_when_it_refers_to_it(study, tmp_path):
    from rcdnet_desktop.core.io.sr import over_source

    alone = tmp_path / "elsewhere" / "alone"
    alone.mkdir(parents=True)
    report = read_image(shutil.copy(study[1], alone / "sr.dcm"))
    record = study[0]
    shown = over_source(report, record)
    assert shown.path == report.path and shown.stored is report.stored and shown.has_image
    assert np.array_equal(shown.pixels, record.pixels)
    other = read_image(patient_dicom(tmp_path / "other.dcm"))
    assert over_source(report, other) is None
    assert over_source(record, other) is None  # not a report


def test_the_export_table_writes_the_reports_calipers_into_the_sr(study, tmp_path):
    """File > Export DICOM and ``classify --export sr`` write through the export table: the
    calipers drawn on the report reach the SR."""
    from datetime import datetime

    from rcdnet_desktop.core.export.formats import write_report
    from rcdnet_desktop.core.export.report import ReportOptions, render_report
    from rcdnet_desktop.core.types import HeatMaps

    record = study[0]
    zeros = np.zeros(record.pixels.shape[:2], np.float32)
    maps = HeatMaps(zeros, zeros, "fast", _pred())
    calipers = measure_all(Calibration.of(record), [Measurement(300, 200, 400, 200)])
    options = ReportOptions.of_record(record, when=datetime(2026, 1, 2, 3, 4, 5),
                                      measurements=calipers)
    report = render_report(record.frame(maps.prediction.frame), maps, options)
    assert report.measurements == calipers
    ds = pydicom.dcmread(write_report("sr", tmp_path / "sr.dcm", record, report))
    lengths = [i for i in _items(ds) if i.ValueType == "NUM"
               and i.ConceptNameCodeSequence[0].CodeMeaning == "Length"]
    assert len(lengths) == 1


def test_the_source_is_found_in_a_folder_beside_the_reports(study, tmp_path):
    """A PACS cache files each series in a folder of its own within the study's."""
    series = tmp_path / "cache" / "study" / "sr-series"
    series.mkdir(parents=True)
    images = tmp_path / "cache" / "study" / "us-series"
    images.mkdir()
    shutil.copy(study[0].path, images / "1.dcm")
    got = read_image(shutil.copy(study[1], series / "2.dcm"))
    assert got.has_image and np.array_equal(got.pixels, study[0].pixels)
