"""QIDO-RS, WADO-RS and STOW-RS against a real Orthanc's DICOMweb plugin."""

from __future__ import annotations

import pydicom
from pydicom.uid import generate_uid

from rcdnet_desktop.core import pacs
from rcdnet_desktop.core.pacs import PacsCache, Query
from tests.pacs.conftest import US1_PATIENT, US1_STUDY


def test_echo(web_node):
    assert pacs.echo(web_node) >= 0


def test_find_studies_patients_series(web_node):
    studies = pacs.find(web_node, Query(patient_id=US1_PATIENT))
    assert [m.study_uid for m in studies] == [US1_STUDY]
    assert studies[0].patient_name == "CompressedSamples^US1"
    patients = pacs.find(web_node, Query(level="patient", patient_name="compr"))
    assert [p.patient_id for p in patients] == [US1_PATIENT]
    series = pacs.find(web_node, Query(level="series", study_uid=US1_STUDY))
    assert len(series) == 1 and series[0].modalities == "US"


def test_retrieve_study(web_node, tmp_path):
    study = pacs.find(web_node, Query(patient_id=US1_PATIENT))[0]
    cache = PacsCache(tmp_path)
    result = pacs.retrieve(web_node, [study], cache)
    assert result.complete, result.summary()
    assert len(result.files) == 2 and sorted(result.files) == cache.files()
    assert {pydicom.dcmread(p).SOPInstanceUID for p in result.files} == {
        i.sop_uid for i in result.instances}


def test_store(web_node, orthanc, clean_study):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("US1_UNCR.dcm"))
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    clean_study.append(ds.StudyInstanceUID)
    result = pacs.store(web_node, [ds])
    assert result.ok and result.stored == [ds.SOPInstanceUID], result.summary()
    assert len(orthanc.instances_of_study(ds.StudyInstanceUID)) == 1
