"""C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE against a real Orthanc."""

from __future__ import annotations

import threading
from dataclasses import replace

import pydicom
import pytest

from rcdnet_desktop.core import pacs
from rcdnet_desktop.core.pacs import PacsCache, Query
from tests.pacs.conftest import US1_PATIENT, US1_STUDY


def test_echo(dimse_node):
    assert pacs.echo(dimse_node) >= 0


def test_find_studies_us_by_default(dimse_node):
    matches = pacs.find(dimse_node, Query())
    assert {m.patient_id for m in matches} >= {US1_PATIENT, "98279"}
    us1 = next(m for m in matches if m.study_uid == US1_STUDY)
    assert us1.patient_name == "CompressedSamples^US1"
    assert us1.instances == 2
    assert "US" in us1.modalities


def test_find_by_name_prefix_any_case(dimse_node):
    matches = pacs.find(dimse_node, Query(patient_name="compressed"))
    assert [m.patient_id for m in matches] == [US1_PATIENT]


def test_find_date_range_and_levels(dimse_node):
    q = Query(date_from="2004-01-01", date_to="20041231")
    assert [m.study_uid for m in pacs.find(dimse_node, q)] == [US1_STUDY]
    assert pacs.find(dimse_node, Query(date_from="20300101")) == []
    patients = pacs.find(dimse_node, Query(level="patient", patient_id=US1_PATIENT))
    assert [(p.level, p.patient_id) for p in patients] == [("patient", US1_PATIENT)]
    series = pacs.find(dimse_node, Query(level="series", study_uid=US1_STUDY))
    assert len(series) == 1 and series[0].modalities == "US" and series[0].instances == 2


def test_find_other_modality_finds_nothing(dimse_node):
    assert pacs.find(dimse_node, Query(modality="CT")) == []


def _study(node):
    return next(m for m in pacs.find(node, Query()) if m.study_uid == US1_STUDY)


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_study_into_cache(dimse_node, tmp_path, method):
    node = replace(dimse_node, retrieve=method)
    cache = PacsCache(tmp_path / "cache")
    seen = []
    result = pacs.retrieve(node, [_study(node)], cache, progress=seen.append)
    assert result.complete, result.summary()
    assert len(result.instances) == 2 and result.expected == 2
    assert sorted(result.files) == cache.files()
    for path in result.files:
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == US1_STUDY
        assert ds.pixel_array.ndim >= 2  # whole and decodable (one is JPEG 2000)
    assert [p.received for p in seen][-1] == 2
    assert not list((tmp_path / "cache").glob(".incoming-*"))


def test_retrieve_series(dimse_node, tmp_path):
    series = pacs.find(dimse_node, Query(level="series", study_uid=US1_STUDY))
    result = pacs.retrieve(dimse_node, series, PacsCache(tmp_path))
    assert result.complete and len(result.instances) == 2


def test_retrieve_cancelled_before_start_leaves_nothing_half_written(dimse_node, tmp_path):
    cancel = threading.Event()
    cancel.set()
    cache = PacsCache(tmp_path / "cache")
    result = pacs.retrieve(dimse_node, [_study(dimse_node)], cache, cancel=cancel)
    assert result.cancelled and not result.problem
    assert all(p.suffix == ".dcm" for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert not list((tmp_path / "cache").glob(".incoming-*"))


def test_store_and_find_it_in_orthanc(dimse_node, orthanc, clean_study, tmp_path):
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(pydicom.data.get_testdata_file("US1_UNCR.dcm"))
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    clean_study.append(ds.StudyInstanceUID)
    result = pacs.store(dimse_node, [ds])
    assert result.ok and result.stored == [ds.SOPInstanceUID]
    held = orthanc.instances_of_study(ds.StudyInstanceUID)
    assert [h["SOPInstanceUID"] for h in held] == [ds.SOPInstanceUID]
