"""core.io.dicomdir: a CD/USB study's DICOMDIR opens the images it lists, in its order; missing
references are skipped with a notice; find_images expands it too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rcdnet_desktop.core.errors import UnreadableImageError
from rcdnet_desktop.core.io import dicomdir, find_images, read_image
from tests.dicom_samples import TEST_FILES, make_disc, patient_dicom


@pytest.fixture
def disc(tmp_path) -> tuple[Path, list[Path]]:
    a = patient_dicom(tmp_path / "src" / "a.dcm", name="DOE^JANE", patient_id="P1")
    b = patient_dicom(tmp_path / "src" / "b.dcm", name="ROE^ANN", patient_id="P2",
                      study="1.2.826.0.1.3680043.8.498.2")
    root = tmp_path / "disc"
    return root, make_disc(root, [a, b, TEST_FILES / "CT_small.dcm"])


def test_a_dicomdir_lists_its_images(disc):
    root, files = disc
    contents = dicomdir.read_dicomdir(root / "DICOMDIR")
    assert list(contents.images) == files and contents.missing == ()
    assert [str(read_image(p).patient.name) for p in contents.images[:2]] == ["DOE^JANE",
                                                                             "ROE^ANN"]


def test_the_dicomdir_file_and_its_folder_open_the_same_images(disc):
    root, files = disc
    assert dicomdir.expand([root / "DICOMDIR"]).paths == files
    assert dicomdir.expand([root]).paths == files
    assert find_images([root / "DICOMDIR"]) == files
    assert find_images(root, recursive=True) == files


def test_missing_references_are_skipped_with_a_notice(disc):
    root, files = disc
    files[1].unlink()
    out = dicomdir.expand([root])
    assert out.paths == [files[0], files[2]]
    assert len(out.notices) == 1
    assert "1 of the 3 images listed in the DICOMDIR" in out.notices[0]
    assert "/".join(files[1].relative_to(root).parts) in out.notices[0]


def test_find_images_reads_the_index_once_and_says_what_it_missed(disc, monkeypatch):
    """The viewer and ``rcdnet classify`` get the files and the notices from one reading."""
    root, files = disc
    files[1].unlink()
    reads = []
    real = dicomdir.read_dicomdir
    monkeypatch.setattr(dicomdir, "read_dicomdir", lambda p: reads.append(p) or real(p))
    notices: list[str] = []
    assert find_images([root], recursive=True, notices=notices) == [files[0], files[2]]
    assert reads == [root / "DICOMDIR"]
    assert len(notices) == 1 and "1 of the 3 images listed in the DICOMDIR" in notices[0]


def test_classify_says_what_a_dicomdir_could_not_find(disc, tmp_path, capsys):
    from rcdnet_desktop.cli import main

    root, files = disc
    files[1].unlink()
    main(["classify", str(root / "DICOMDIR"), "--device", "cpu",
          "--csv", str(tmp_path / "rows.csv")])
    err = capsys.readouterr().err
    assert "1 of the 3 images listed in the DICOMDIR" in err


def test_file_ids_match_without_regard_to_case(disc):
    root, files = disc
    first = root / files[0].relative_to(root).parts[0]
    first.rename(first.with_name(first.name.lower()))
    assert len(dicomdir.read_dicomdir(root / "DICOMDIR").images) == 3


def test_a_damaged_index_leaves_the_folder_to_be_scanned(tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    shutil.copy(TEST_FILES / "CT_small.dcm", folder / "IM0001")
    (folder / "DICOMDIR").write_bytes(b"not a dicom directory")
    out = dicomdir.expand([folder])
    assert out.paths == [folder] and "Cannot use the DICOMDIR" in out.notices[0]
    assert find_images(folder) == [folder / "IM0001"]
    with pytest.raises(UnreadableImageError):
        dicomdir.read_dicomdir(folder / "DICOMDIR")


def test_pydicoms_own_dicomdir():
    index = TEST_FILES / "dicomdirtests" / "DICOMDIR"
    contents = dicomdir.read_dicomdir(index)
    assert len(contents.images) > 10 and not contents.missing
    assert all(p.is_file() and index.parent in p.parents for p in contents.images)


def test_a_pipe_named_dicomdir_is_not_opened(tmp_path):
    import os

    folder = tmp_path / "usb"
    folder.mkdir()
    shutil.copy(TEST_FILES / "CT_small.dcm", folder / "IM0001")
    os.mkfifo(folder / "DICOMDIR")
    out = dicomdir.expand([folder])  # would wait for a writer if the pipe were opened
    assert out.paths == [folder]
    assert "named pipe" in out.notices[0] and "Cannot use the DICOMDIR" in out.notices[0]


def test_a_listed_pipe_is_handed_to_the_reader_which_refuses_it(disc):
    import os

    root, files = disc
    files[1].unlink()
    os.mkfifo(files[1])
    assert dicomdir.read_dicomdir(root / "DICOMDIR").images == tuple(files)
    with pytest.raises(UnreadableImageError, match="named pipe"):
        read_image(files[1])
