"""The headless CLI: rows per file, bad files, ROI boxes, heat-map files, exports, exit codes."""

from __future__ import annotations

import csv
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop import cli
from rcdnet_desktop.core.export.batch_csv import CSV_FIELDS


def _ultrasound_like(seed: int, size=(160, 200)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.gamma(2.0, 30.0, size).clip(0, 255)
    yy, xx = np.mgrid[: size[0], : size[1]]
    img[(yy - 80) ** 2 / 900 + (xx - 100) ** 2 / 1600 < 1] *= 0.3  # a dark "lesion"
    return img.astype(np.uint8)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "study"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(_ultrasound_like(1)).save(d / "a.png")
    Image.fromarray(_ultrasound_like(2)).save(d / "sub" / "b.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (d / "notes.txt").write_text("not an image")
    return d


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_classify_folder_writes_one_row_per_image_and_survives_a_corrupt_file(folder, tmp_path):
    out = tmp_path / "out.csv"
    assert cli.main(["classify", str(folder), "--recursive", "--csv", str(out)]) == 0
    rows = _rows(out)
    assert [Path(r["file"]).name for r in rows] == ["a.png", "corrupt.png", "b.png"]
    assert list(rows[0]) == list(CSV_FIELDS)
    by_name = {Path(r["file"]).name: r for r in rows}
    bad = by_name["corrupt.png"]
    assert bad["status"] == "failed" and "corrupt.png" in bad["error"] and bad["decision"] == ""
    for name in ("a.png", "b.png"):
        r = by_name[name]
        assert r["status"] == "ok" and r["error"] == ""
        p_m, p_b = float(r["p_malignant"]), float(r["p_benign"])
        assert 0 <= p_m <= 1 and abs(p_m + p_b - 1) < 1e-3
        assert r["decision"] == ("suspicious" if r["suspicious"] == "yes" else "below_cutoff")
        assert r["device"] == "cpu-onnx"  # the bundle's ONNX graphs on the CPU


def test_untrained_weights_say_so_in_capitals(folder, model_bundle, monkeypatch, capsys):
    card_path = model_bundle / "model_card.json"
    card = json.loads(card_path.read_text())
    card.update(untrained=True, version="0.0.0-untrained")
    card_path.write_text(json.dumps(card))
    monkeypatch.setenv("RCDNET_MODEL_DIR", str(model_bundle))
    assert cli.main(["classify", str(folder / "a.png")]) == 0
    row = list(csv.DictReader(capsys.readouterr().out.splitlines()))[0]
    assert row["decision"].startswith("UNTRAINED ") and "UNTRAINED" in row["warnings"]


def test_without_recursion_subfolders_are_skipped_and_json_is_printed(folder, capsys):
    assert cli.main(["classify", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["file"]).name for r in rows) == ["a.png", "corrupt.png"]


def test_rois_and_heatmaps(folder, tmp_path):
    rois = tmp_path / "rois.csv"
    rois.write_text("file,x,y,w,h\nstudy/a.png,60,40,80,70\n")
    hm = tmp_path / "maps"
    out = tmp_path / "out.csv"
    assert cli.main(["classify", str(folder / "a.png"), str(folder / "sub" / "b.png"),
                     "--rois", str(rois), "--heatmaps", str(hm), "--csv", str(out)]) == 0
    assert sorted(p.name for p in hm.iterdir()) == ["a_heatmaps.png", "b_heatmaps.png"]
    with Image.open(hm / "a_heatmaps.png") as im:
        assert im.width >= 3 * 200 and im.height > 160  # three panels at the image's own size
    assert len(_rows(out)) == 2


def test_export_choices_are_the_export_table():
    from rcdnet_desktop.core.export.formats import EXPORT_FORMATS

    classify = cli.build_parser()._subparsers._group_actions[0].choices["classify"]
    export = next(a for a in classify._actions if a.dest == "export")
    assert list(export.choices) == [f.key for f in EXPORT_FORMATS]


def test_export_writes_every_format_where_the_source_allows(folder, tmp_path):
    from pydicom.data import get_testdata_file

    from rcdnet_desktop.core.export.formats import EXPORT_FORMATS

    dicom = get_testdata_file("CT_small.dcm")
    out_dir, out = tmp_path / "exports", tmp_path / "out.csv"
    args = ["classify", str(folder / "a.png"), dicom, "--csv", str(out),
            "--export-dir", str(out_dir)]
    for f in EXPORT_FORMATS:
        args += ["--export", f.key]
    assert cli.main(args) == 0
    names = sorted(p.name for p in out_dir.iterdir())
    expected = [f"a_{f.name_tag}{f.suffix}" for f in EXPORT_FORMATS if not f.needs_dicom_source]
    expected += [f"CT_small_{f.name_tag}{f.suffix}" for f in EXPORT_FORMATS]
    assert names == sorted(expected)
    pdf = (out_dir / "a_rcdnet.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    # The report says what the model card's cut-off means, as the viewer's does.
    text = b"".join(zlib.decompress(m) for m in re.findall(
        rb"/FlateDecode.*?stream\r?\n(.*?)endstream", pdf, re.S) if m[:1] == b"x")
    assert b"suspicious cut-off" in text and b"internal validation" in text
    a, ct = _rows(out)
    assert "dicom not written" in a["warnings"] and "DICOM source" in a["warnings"]
    assert "not written" not in ct["warnings"]


def test_export_dir_without_export_is_a_usage_error(folder, tmp_path, capsys):
    assert cli.main(["classify", str(folder / "a.png"), "--export-dir",
                     str(tmp_path)]) == cli.EXIT_USAGE
    assert "--export FORMAT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["classify", str(folder / "a.png"), "--export", "tiff"])
    assert exc.value.code == 2


def test_roi_box_changes_the_input(folder, tmp_path, capsys):
    rois = tmp_path / "rois.csv"
    rois.write_text(f"{folder / 'a.png'},60,40,80,70\n")
    cli.main(["classify", str(folder / "a.png"), "--json"])
    whole = json.loads(capsys.readouterr().out)[0]
    cli.main(["classify", str(folder / "a.png"), "--json", "--rois", str(rois)])
    boxed = json.loads(capsys.readouterr().out)[0]
    assert whole["p_malignant"] != boxed["p_malignant"]


@pytest.mark.parametrize("content, message", [
    ("file,x,y,w,h\na.png,1,2,3\n", "expected file,x,y,w,h"),
    ("a.png,one,2,3,4\n", "must be numbers"),
    ("a.png,1,2,0,4\n", "w, h > 0"),
])
def test_bad_roi_file_is_a_usage_error(folder, tmp_path, capsys, content, message):
    rois = tmp_path / "rois.csv"
    rois.write_text(content)
    assert cli.main(["classify", str(folder), "--rois", str(rois)]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_nothing_readable_exits_one(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"garbage")
    assert cli.main(["classify", str(tmp_path / "x.png"), str(tmp_path / "missing.jpg")]) == 1
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "missing.jpg" in rows[1]["error"]


def test_empty_folder_exits_one(tmp_path):
    assert cli.main(["classify", str(tmp_path)]) == 1


def test_usage_errors_exit_two(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["classify", "x.png", "--device", "tpu"])
    assert exc.value.code == 2


def test_dicom_cine_frame(tmp_path, capsys):
    from pydicom.data import get_testdata_file

    cine = get_testdata_file("examples_ybr_color.dcm")
    assert cli.main(["classify", cine, "--frame", "3", "--json"]) == 0  # counted from 1
    row = json.loads(capsys.readouterr().out)[0]
    assert row["status"] == "ok" and row["frame"] == "3"
    assert cli.main(["classify", cine, "--frame", "0"]) == 2  # there is no frame 0
    assert "counted from 1" in capsys.readouterr().err


def test_frame_beyond_a_clip_fails_it_naming_the_frame_count(folder, tmp_path, capsys):
    """--frame 41 on a 30-frame clip is that file's error, not its last frame; single-frame
    images use their only frame."""
    import shutil

    from pydicom.data import get_testdata_file

    shutil.copy(get_testdata_file("examples_ybr_color.dcm"), folder / "cine.dcm")
    assert cli.main(["classify", str(folder), "--frame", "41", "--json"]) == 0
    rows = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}
    cine = rows["cine.dcm"]
    assert cine["status"] == "failed" and cine["frame"] == ""
    assert cine["error"].endswith("frame 41 requested but the clip has 30 frames (1-30)")
    assert rows["a.png"]["status"] == "ok" and rows["a.png"]["frame"] == "1"


def test_self_test_passes(capsys):
    assert cli.main(["self-test"]) == 0
    assert "self-test passed" in capsys.readouterr().out


# --- lesion boxes found automatically, and the columns that report them ----------------------

NEW_COLUMNS = ("box_source", "box_x", "box_y", "box_w", "box_h", "band", "suspicious")


@pytest.fixture
def fake_localiser_engine(monkeypatch, engine):
    """Make ``rcdnet classify`` use the bundled classifier with a fake localiser."""
    from rcdnet_desktop.core.model.engine import InferenceEngine
    from tests.core.localiser_helpers import FakeLocaliser

    def make(device=None):
        return InferenceEngine(model=engine.model, card=engine.card, device="cpu",
                               localiser=FakeLocaliser())

    monkeypatch.setattr(cli, "load_engine", make)


def test_csv_has_the_box_and_band_columns_empty_for_the_whole_image(folder, tmp_path):
    from rcdnet_desktop.core.bands import band_for

    out = tmp_path / "out.csv"
    assert cli.main(["classify", str(folder), "--no-auto-box", "--csv", str(out)]) == 0
    rows = _rows(out)
    assert list(rows[0]) == list(CSV_FIELDS)
    assert set(NEW_COLUMNS) <= set(rows[0])
    assert list(CSV_FIELDS[:8]) == ["file", "decision", "p_malignant", "p_benign", "device",
                                        "status", "error", "warnings"]
    by_name = {Path(r["file"]).name: r for r in rows}
    ok = by_name["a.png"]
    assert ok["box_source"] == "none"
    assert [ok[k] for k in ("box_x", "box_y", "box_w", "box_h")] == ["", "", "", ""]
    assert ok["band"] == band_for(float(ok["p_malignant"])).name
    from rcdnet_desktop.core.bands import suspicious_threshold
    from rcdnet_desktop.core.model.card import CARD_FILE, ModelCard, default_model_dir

    t = suspicious_threshold(ModelCard.read(default_model_dir() / CARD_FILE))
    assert ok["suspicious"] == ("yes" if float(ok["p_malignant"]) >= t else "no")
    bad = by_name["corrupt.png"]
    assert all(bad[k] == "" for k in NEW_COLUMNS)


def test_automatic_box_in_the_rows_and_a_roi_file_box_wins(folder, tmp_path, capsys,
                                                           fake_localiser_engine):
    from tests.core.localiser_helpers import blob_box

    rois = tmp_path / "rois.csv"
    rois.write_text("file,x,y,w,h\nstudy/a.png,60,40,80,70\n")
    b_png = folder / "sub" / "b.png"
    assert cli.main(["classify", str(folder / "a.png"), str(b_png), "--json",
                     "--rois", str(rois)]) == 0
    a, b = json.loads(capsys.readouterr().out)
    assert a["box_source"] == "user"
    assert [a[k] for k in ("box_x", "box_y", "box_w", "box_h")] == ["60", "40", "80", "70"]
    assert b["box_source"] == "auto"
    assert tuple(int(b[k]) for k in ("box_x", "box_y", "box_w", "box_h")) == \
        blob_box((160, 200)).as_tuple()
    assert b["band"] in ("very low", "low", "moderate", "high", "very high")


def test_no_auto_box_classifies_whole_images(folder, capsys, fake_localiser_engine):
    assert cli.main(["classify", str(folder / "a.png"), "--json"]) == 0
    auto = json.loads(capsys.readouterr().out)[0]
    assert cli.main(["classify", str(folder / "a.png"), "--json", "--no-auto-box"]) == 0
    whole = json.loads(capsys.readouterr().out)[0]
    assert auto["box_source"] == "auto" and whole["box_source"] == "none"
    assert whole["box_x"] == "" and auto["p_malignant"] != whole["p_malignant"]


def test_self_test_fails_on_weights_that_verify_but_behave_differently(tmp_path, monkeypatch,
                                                                       capsys):
    """Zeroed weights whose sha256 is written into every place of the card still fail: the
    bundled samples no longer give the probabilities recorded at bundle time."""
    import hashlib
    import json
    import shutil

    import torch

    from rcdnet_desktop.core.model.card import CARD_FILE, default_model_dir

    bundle = tmp_path / "bundle"
    shutil.copytree(default_model_dir(), bundle)
    card = json.loads((bundle / CARD_FILE).read_text())
    weights = bundle / card["weights"]["file"]
    state = torch.load(weights, weights_only=True)
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, weights)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    card["weights"]["sha256"] = sha
    for section in (card["guard"], card["lexicon"], card["self_test"],
                    card["onnx"]["classifier"]):
        section["weights_sha256"] = sha
    (bundle / CARD_FILE).write_text(json.dumps(card))
    monkeypatch.setenv("RCDNET_MODEL_DIR", str(bundle))
    monkeypatch.setenv("RCDNET_BACKEND", "torch")
    assert cli.main(["self-test"]) != 0
    out = capsys.readouterr().out
    assert "self-test FAILED" in out and "differs from the recorded" in out


def test_an_export_failing_unexpectedly_costs_only_that_export(folder, tmp_path, monkeypatch):
    """Whatever an export's library raises, the run goes on and every row is written."""
    from rcdnet_desktop import cli_outputs

    real = cli_outputs.write_report

    def flaky(key, path, record, *args, **kwargs):
        if record.path.name == "a.png":
            raise KeyError("No IOD found")
        return real(key, path, record, *args, **kwargs)

    monkeypatch.setattr(cli_outputs, "write_report", flaky)  # the export table's writer
    out = tmp_path / "out.csv"
    assert cli.main(["classify", str(folder), "--recursive", "--csv", str(out), "--export", "png",
                     "--export-dir", str(tmp_path / "exports")]) == 0
    rows = {Path(r["file"]).name: r for r in _rows(out)}
    assert set(rows) == {"a.png", "b.png", "corrupt.png"}
    assert rows["a.png"]["status"] == rows["b.png"]["status"] == "ok"
    assert "png not written: unexpected KeyError" in rows["a.png"]["warnings"]
    assert [p.name for p in (tmp_path / "exports").glob("*.png")] == ["b_rcdnet.png"]
