"""core.context: the patient and study words of the banner and of the image list's headings;
core.io.dicom_tags: the header rows of the tag panel."""

from __future__ import annotations

import numpy as np
from PIL import Image

from rcdnet_desktop.core import context
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.io.dicom_tags import MAX_VALUE_CHARS, PIXEL_DATA_NOTE, header_rows
from tests.dicom_samples import US_WITH_REGIONS, patient_dicom


def test_dates_and_names_read_as_people_write_them():
    assert context.format_date("20110525") == "2011-05-25"
    assert context.format_date("1994.11.05") == "1994-11-05"  # ACR-NEMA style
    assert context.format_date("") == "" and context.format_date("2011") == "2011"


def test_banner_of_a_dicom_with_patient_data(tmp_path):
    rec = read_image(patient_dicom(tmp_path / "a.dcm", PatientSex="F"))
    b = context.banner(rec)
    assert b.patient == "DOE, JANE  \N{MIDDLE DOT}  ID PID-001  \N{MIDDLE DOT}  born 1970-01-25" \
        "  \N{MIDDLE DOT}  sex F"
    assert b.study == ("Study 2024-03-01  \N{MIDDLE DOT}  Breast ultrasound  \N{MIDDLE DOT}  US"
                       "  \N{MIDDLE DOT}  Philips Medical Systems CX50")
    assert context.patient_title(rec) == "DOE, JANE  \N{MIDDLE DOT}  ID PID-001"
    assert context.study_title(rec) == "2024-03-01  \N{MIDDLE DOT}  Breast ultrasound"


def test_banner_of_the_pydicom_ultrasound_file():
    b = context.banner(read_image(US_WITH_REGIONS))
    assert b.patient.startswith("OB  \N{MIDDLE DOT}  ID 11-05-25-142825")
    assert "birth date not recorded" in b.patient  # said, not left out
    assert "Study 2011-05-25" in b.study and "CX50" in b.study


def test_a_plain_image_has_no_patient_data(tmp_path):
    p = tmp_path / "scan.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(p)
    rec = read_image(p)
    assert context.banner(rec).text == context.NO_PATIENT_DATA
    assert context.patient_title(rec) == context.FILES_WITHOUT_PATIENT


def test_header_rows_nest_sequences_and_abbreviate():
    rows = header_rows(US_WITH_REGIONS)
    by_keyword = {r.keyword: r for r in rows}
    assert by_keyword["PatientName"].value == "OB^^^^"
    assert by_keyword["PatientName"].tag == "(0010,0010)" and by_keyword["PatientName"].vr == "PN"
    seq = by_keyword["SequenceOfUltrasoundRegions"]
    assert (seq.depth, seq.vr, seq.value) == (0, "SQ", "2 items")
    inside = [r for r in rows if r.keyword == "PhysicalDeltaX"]
    assert inside and all(r.depth == 2 for r in inside)
    assert by_keyword["FileMetaInformationVersion"].value == "binary data, 2 bytes"
    long = by_keyword["SoftwareVersions"].value
    assert long.endswith("characters)") and len(long) < MAX_VALUE_CHARS + 30
    assert rows[-1].keyword == "PixelData" and rows[-1].value == PIXEL_DATA_NOTE
    assert by_keyword["Modality"].matches("modal") and not by_keyword["Modality"].matches("xyz")
