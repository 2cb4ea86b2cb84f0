"""De-identification that holds: a DICOM ultrasound frame with the patient's name and ID burned
into its header band (written with cv2.putText) exported without the patient as Secondary
Capture, PNG and PDF. With region data the header band is blank in every export and the SC says
the identity was removed; without, the pixels stay, every export says that burned-in text may
remain, and the SC does not claim otherwise."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rcdnet_desktop.core.export.deidentify import (
    BURNED_IN_NOTE,
    METHOD_BLANKED,
    METHOD_NOT_BLANKED,
    blank_outside,
)
from rcdnet_desktop.core.export.formats import write_report
from rcdnet_desktop.core.export.report import ReportOptions, render_report
from rcdnet_desktop.core.io import read_image
from rcdnet_desktop.core.overlay import as_rgb
from rcdnet_desktop.core.types import Box

ROWS, COLS, HEADER = 240, 320, 44
"""The frame, and its header band (rows above the ultrasound region)."""
NAME, PATIENT_ID = "DOE JANE", "PID-7731"
WHEN = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def burned_in_dicom(path: Path, *, regions: list[tuple[int, int, int, int, int]] | None) -> Path:
    """An RGB ultrasound frame: speckle below the header band, the patient's name and ID burned
    into the band in white, and (when given) SequenceOfUltrasoundRegions items
    (x0, y0, x1, y1, spatial format)."""
    import cv2

    rng = np.random.default_rng(7)
    frame = np.zeros((ROWS, COLS, 3), np.uint8)
    frame[HEADER:] = rng.gamma(2.0, 30.0, (ROWS - HEADER, COLS, 1)).clip(0, 255).astype(np.uint8)
    cv2.putText(frame, NAME, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    cv2.putText(frame, PATIENT_ID, (6, 38), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "US"
    ds.PatientName, ds.PatientID = "DOE^JANE", PATIENT_ID
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = frame.tobytes()
    if regions is not None:
        items = []
        for x0, y0, x1, y1, fmt in regions:
            item = Dataset()
            item.RegionSpatialFormat, item.RegionDataType, item.RegionFlags = fmt, 1, 0
            item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
            item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
            item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3
            item.PhysicalDeltaX = item.PhysicalDeltaY = 0.01
            items.append(item)
        ds.SequenceOfUltrasoundRegions = items
    ds.save_as(path, enforce_file_format=True)
    return path


def _maps(shape):
    from tests.core.test_export import make_heatmaps

    return make_heatmaps(*shape)


def _report(record, include_patient=False):
    options = ReportOptions.of_record(record, include_patient=include_patient, when=WHEN)
    return render_report(record.pixels, _maps(record.pixels.shape[:2]), options)


def _header_lit(panel: np.ndarray) -> int:
    """How many pixels of the header band are lit (the burned-in text)."""
    band = panel[:HEADER]
    return int(((band.max(axis=-1) if band.ndim == 3 else band) > 100).sum())


def _pdf_figure(path: Path) -> np.ndarray:
    """The figure image embedded in the PDF (raw RGB, decompressed)."""
    data = path.read_bytes()
    for m in re.finditer(rb"<<(.*?)>>\s*stream\r?\n", data, re.S):
        head = m.group(1)
        if b"/Subtype /Image" not in head:
            continue
        length = int(re.search(rb"/Length (\d+)", head).group(1))
        body = zlib.decompress(data[m.end():m.end() + length])
        w = int(re.search(rb"/Width (\d+)", head).group(1))
        h = int(re.search(rb"/Height (\d+)", head).group(1))
        return np.frombuffer(body, np.uint8).reshape(h, w, 3)
    raise AssertionError("no image in the PDF")


@pytest.fixture
def with_regions(tmp_path):
    pytest.importorskip("cv2")
    # the 2D image below the header band, and a waveform strip at the bottom
    return read_image(burned_in_dicom(tmp_path / "regions.dcm",
                                      regions=[(0, HEADER, COLS - 1, 199, 1),
                                               (40, 210, 279, 235, 4)]))


@pytest.fixture
def without_regions(tmp_path):
    pytest.importorskip("cv2")
    return read_image(burned_in_dicom(tmp_path / "bare.dcm", regions=None))


def test_the_source_really_shows_the_name(with_regions):
    assert _header_lit(with_regions.pixels) > 50
    assert with_regions.image_areas == (Box(0, HEADER, COLS, 200 - HEADER), Box(40, 210, 240, 26))


def test_every_export_blanks_the_header_band(with_regions, tmp_path):
    report = _report(with_regions)
    assert report.pixels_blanked and report.identity_removed
    assert BURNED_IN_NOTE not in report.text
    plain = report.layout.crop(report.image, 0)
    assert _header_lit(plain) == 0
    assert not plain[200:210].any() and not plain[236:].any()  # between and below the regions
    assert not plain[212:230, :40].any()  # beside the waveform strip
    # The heat-map panels are the maps over the blanked frame: the same as over a frame whose
    # header and margins were black from the start (no trace of the text's shapes).
    black = with_regions.pixels.copy()
    black[:HEADER] = 0
    black[200:] = blank_outside(with_regions.pixels, [Box(40, 210, 240, 26)])[200:]
    clean = render_report(black, _maps(black.shape[:2]), ReportOptions(when=WHEN))
    for i in (1, 2):
        assert np.array_equal(report.layout.crop(report.image, i),
                              clean.layout.crop(clean.image, i))
    assert np.array_equal(plain[HEADER:200], as_rgb(with_regions.pixels)[HEADER:200])  # kept

    sc = pydicom.dcmread(write_report("dicom", tmp_path / "sc.dcm", with_regions, report))
    assert (sc.PatientIdentityRemoved, sc.BurnedInAnnotation) == ("YES", "NO")
    assert sc.DeidentificationMethod == METHOD_BLANKED
    assert _header_lit(report.layout.crop(sc.pixel_array, 0)) == 0
    assert b"DOE" not in (tmp_path / "sc.dcm").read_bytes()

    from PIL import Image

    png = np.asarray(Image.open(write_report("png", tmp_path / "r.png", with_regions, report))
                     .convert("RGB"))
    assert _header_lit(report.layout.crop(png, 0)) == 0

    figure = _pdf_figure(write_report("pdf", tmp_path / "r.pdf", with_regions, report))
    panel = report.layout.panels[0]
    assert figure.shape[1] == report.image.shape[1]  # embedded at full resolution
    assert _header_lit(figure[panel.y:panel.y + panel.h, panel.x:panel.x + panel.w]) == 0


def test_without_region_data_nothing_is_claimed(without_regions, tmp_path):
    report = _report(without_regions)
    assert not report.pixels_blanked and not report.identity_removed
    assert BURNED_IN_NOTE in report.text
    assert _header_lit(report.layout.crop(report.image, 0)) > 50  # honest: the text is there
    sc = pydicom.dcmread(write_report("dicom", tmp_path / "sc.dcm", without_regions, report))
    assert (sc.PatientIdentityRemoved, sc.BurnedInAnnotation) == ("NO", "YES")
    assert sc.DeidentificationMethod == METHOD_NOT_BLANKED
    assert BURNED_IN_NOTE in sc.ImageComments


def test_a_report_for_the_pacs_keeps_the_whole_frame(with_regions):
    report = _report(with_regions, include_patient=True)
    assert report.patient_included and not report.pixels_blanked
    assert _header_lit(report.layout.crop(report.image, 0)) > 50
    assert BURNED_IN_NOTE not in report.text


def test_graphics_regions_are_not_image_data(tmp_path):
    """A graphics region (spatial format 5) may hold text: it is blanked like the header."""
    pytest.importorskip("cv2")
    record = read_image(burned_in_dicom(tmp_path / "g.dcm",
                                        regions=[(0, 0, COLS - 1, HEADER - 1, 5),
                                                 (0, HEADER, COLS - 1, ROWS - 1, 1)]))
    assert record.image_areas == (Box(0, HEADER, COLS, ROWS - HEADER),)
    assert _header_lit(_report(record).layout.crop(_report(record).image, 0)) == 0


def test_blank_outside_grey_and_rgb():
    grey = np.full((4, 5), 9, np.uint8)
    out = blank_outside(grey, [Box(1, 1, 2, 2)])
    assert out.sum() == 9 * 4 and out[1:3, 1:3].all() and grey.all()
    rgb = np.full((4, 5, 3), 9, np.uint8)
    assert blank_outside(rgb, [Box(0, 0, 5, 1), Box(4, 3, 9, 9)]).sum() == 9 * 3 * 6
    with pytest.raises(ValueError):
        blank_outside(rgb, [])


def test_cli_says_when_burned_in_text_may_remain(with_regions, without_regions, tmp_path,
                                                  capsys, monkeypatch):
    from tqdm import tqdm

    from rcdnet_desktop.cli import main

    monkeypatch.setattr(tqdm, "monitor_interval", 0)
    out = tmp_path / "out"
    assert main(["classify", str(with_regions.path), "--export", "dicom", "--export", "png",
                 "--export-dir", str(out), "--csv", str(tmp_path / "a.csv")]) == 0
    assert "burned" not in capsys.readouterr().err
    assert main(["classify", str(without_regions.path), "--export", "dicom", "--export", "pdf",
                 "--export-dir", str(out), "--csv", str(tmp_path / "b.csv")]) == 0
    err = capsys.readouterr().err
    assert ("rcdnet: note: 2 file(s) written without the patient keep the source's pixels "
            "whole, so they are not de-identified. " + BURNED_IN_NOTE) in err.splitlines()
