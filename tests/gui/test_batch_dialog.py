"""Batch review: table filling, filter, sort, CSV, cancel, double-click to open."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import Qt

from rcdnet_desktop.core.export.batch_csv import CSV_FIELDS, batch_row
from rcdnet_desktop.core.model.engine import pad_roi
from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui.batch.batch_dialog import COLUMNS, format_eta
from tests.gui.gui_helpers import ROI_MARGIN, FakeEngine, wait_maps, write_png


def _run(qtbot, dlg, timeout=10000):
    with qtbot.waitSignal(dlg.finished_run, timeout=timeout):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)


def test_batch_folder_with_corrupt_file(make_window, image_folder, qtbot, tmp_path):
    engine = FakeEngine()
    w = make_window(engine)
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(image_folder)
    _run(qtbot, dlg)

    assert dlg.model.rowCount() == 5
    assert COLUMNS == ("File", "Decision", "P(malignant)", "Band", "Box", "Clip", "Status")
    rows = {dlg.model.data(dlg.model.index(r, 0)):
            dict(zip(COLUMNS, [dlg.model.data(dlg.model.index(r, c))
                               for c in range(len(COLUMNS))], strict=True))
            for r in range(5)}
    assert set(rows) == {"a_dark.png", "b_bright.png", "c_mid.png", "sub/d_sub.png",
                         "e_corrupt.png"}
    bad = rows["e_corrupt.png"]
    assert bad["Decision"] == bad["Band"] == bad["Box"] == "-"
    assert bad["Status"].startswith("failed: ")
    assert rows["b_bright.png"]["Decision"] == "suspicious"
    assert rows["b_bright.png"]["Status"] == "ok"
    assert rows["a_dark.png"]["Decision"] == "below the cut-off"
    assert rows["a_dark.png"]["Band"] == "moderate (10-50%)"  # mean grey ~38 of 255
    assert rows["b_bright.png"]["Band"] == "high (50-95%)"
    assert {r["Box"] for name, r in rows.items() if name != "e_corrupt.png"} == {"none"}
    assert dlg.progress.value() == 5
    assert dlg.progress_label.text().startswith("Done: 5 files")

    dlg.filter.setCurrentText("Failed only")
    assert [i.path.name for i in dlg.visible_items()] == ["e_corrupt.png"]
    dlg.filter.setCurrentText("Suspicious only")
    assert dlg.visible_items() and all(i.prediction.suspicious for i in dlg.visible_items())
    dlg.filter.setCurrentText("Below the cut-off only")
    assert dlg.visible_items() and not any(i.prediction.suspicious
                                           for i in dlg.visible_items())
    dlg.filter.setCurrentText("All")

    # Sort by probability (numerically, failures first when ascending), and by band: the
    # bands are ranges of that probability, so the same order.
    for col in (COLUMNS.index("P(malignant)"), COLUMNS.index("Band")):
        dlg.table.sortByColumn(col, Qt.SortOrder.DescendingOrder)
        probs = [i.prediction.p_malignant for i in dlg.visible_items() if i.prediction]
        assert probs == sorted(probs, reverse=True)

    out = tmp_path / "results.csv"
    dlg.export_csv(out)
    with out.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 5
    failed = [r for r in table if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["file"].endswith("e_corrupt.png")
    assert failed[0]["error"] and failed[0]["p_malignant"] == ""
    ok = {r["file"].split("/")[-1]: r for r in table if r["status"] == "ok"}
    assert float(ok["b_bright.png"]["p_malignant"]) > 0.5
    assert ok["b_bright.png"]["decision"] == "suspicious"
    # The same columns and spelling as `rcdnet classify` (one writer for both).
    assert list(table[0]) == list(CSV_FIELDS)
    assert table == [batch_row(i) for i in dlg.visible_items()]
    with pytest.raises(FileExistsError):
        dlg.export_csv(out)  # never overwrites without being asked

    # Double-click opens the image in the viewer.
    view_row = next(r for r in range(dlg.proxy.rowCount())
                    if dlg.proxy.data(dlg.proxy.index(r, 0)) == "c_mid.png")
    idx = dlg.proxy.index(view_row, 0)
    rect = dlg.table.visualRect(idx)
    qtbot.mouseClick(dlg.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(dlg.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert w.controller.current is not None and w.controller.current.path.name == "c_mid.png"
    wait_maps(qtbot, w)


def test_batch_action_asks_for_the_folder(make_window, image_folder, qtbot):
    w = make_window(FakeEngine())
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    w.ask_folder = lambda: str(image_folder)
    w.act.batch.trigger()  # the toolbar button / Ctrl+B
    assert len(w.batch_dialogs) == 1
    dlg = w.batch_dialogs[0]
    assert dlg.folder == image_folder and dlg.isVisible()
    _run(qtbot, dlg)
    assert dlg.model.rowCount() == 5


def test_cancel_keeps_partial_results(make_window, tmp_path, qtbot):
    folder = tmp_path / "many"
    for i in range(40):
        write_png(folder / f"img{i:02d}.png", 30 + 5 * i, size=(40, 50))
    engine = FakeEngine(predict_delay=0.05)  # 8 files per forward pass: 0.4 s per chunk
    w = make_window(engine)
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(folder)
    with qtbot.waitSignal(dlg.finished_run, timeout=20000):
        dlg.start()
        qtbot.waitUntil(lambda: dlg.model.rowCount() >= 1, timeout=10000)
        qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
    n = dlg.model.rowCount()
    assert 1 <= n < 40
    assert dlg.progress_label.text().startswith(f"Cancelled: {n} of 40")
    assert dlg.export_button.isEnabled()
    assert all(i.prediction is not None for i in dlg.model.items)
    out = tmp_path / "partial.csv"
    dlg.export_csv(out)
    assert len(out.read_text().strip().splitlines()) == n + 1
    assert not dlg.is_running()


def test_batch_uses_lesion_boxes(make_window, tmp_path, qtbot):
    folder = tmp_path / "boxes"
    a = write_png(folder / "a.png", 100, size=(100, 100))
    write_png(folder / "b.png", 100, size=(100, 100))
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([a])
    wait_maps(qtbot, w)
    w.controller.set_box(Box(10, 10, 40, 40))
    wait_maps(qtbot, w)
    dlg = w.batch_dialog(folder)
    _run(qtbot, dlg)
    by_name = {i.path.name: i for i in dlg.model.items}
    assert by_name["a.png"].prediction.box == Box(10, 10, 40, 40)
    assert by_name["a.png"].prediction.roi == pad_roi(Box(10, 10, 40, 40), (100, 100),
                                                      ROI_MARGIN)
    assert by_name["b.png"].prediction.roi is None
    assert by_name["a.png"].prediction.mode == "lesion box"


def test_batch_band_and_box_columns(make_window, tmp_path, qtbot):
    """Drawn box -> "user", localiser's box -> "auto", nothing found -> "none"; CSV too."""
    folder = tmp_path / "auto"
    drawn = write_png(folder / "drawn.png", 200, size=(120, 160))
    write_png(folder / "found.png", 200, size=(120, 160))
    write_png(folder / "plain.png", 30, size=(120, 160))
    lesion = Box(60, 45, 40, 30)  # inside the darker centre square of write_png's images

    def localiser(px):  # finds the lesion on the bright images only
        return lesion if px.mean() > 100 else None

    engine = FakeEngine(lesion=localiser)
    w = make_window(engine)
    w.open_paths([drawn])
    wait_maps(qtbot, w)
    assert w.prediction.prediction().box_source == "auto"
    w.controller.set_box(Box(5, 5, 40, 30))
    wait_maps(qtbot, w)
    dlg = w.batch_dialog(folder)
    _run(qtbot, dlg)
    col = {name: COLUMNS.index(name) for name in COLUMNS}
    rows = {}
    for r in range(dlg.model.rowCount()):
        rows[dlg.model.data(dlg.model.index(r, 0))] = r
    items = {i.path.name: i for i in dlg.model.items}

    def cell(name, column):
        return dlg.model.data(dlg.model.index(rows[name], col[column]))

    assert cell("drawn.png", "Box") == "user"
    assert cell("found.png", "Box") == "auto"
    assert cell("plain.png", "Box") == "none"
    assert items["found.png"].prediction.box == lesion
    assert items["drawn.png"].prediction.box == Box(5, 5, 40, 30)
    for name, item in items.items():
        p = item.prediction
        assert cell(name, "Band") == p.band.label
        assert cell(name, "Decision") == ("suspicious" if p.suspicious else "below the cut-off")
    # The bright image classified on its (darker) lesion box, and on the drawn bright corner:
    # different regions, different bands.
    assert cell("found.png", "Band") != cell("drawn.png", "Band")
    tip = dlg.model.data(dlg.model.index(rows["found.png"], col["Box"]),
                         Qt.ItemDataRole.ToolTipRole)
    assert "found automatically" in tip

    out = tmp_path / "auto.csv"
    dlg.export_csv(out)
    with out.open(newline="") as fh:
        table = {r["file"].split("/")[-1]: r for r in csv.DictReader(fh)}
    assert table["found.png"]["box_source"] == "auto"
    assert [int(table["found.png"][k]) for k in ("box_x", "box_y", "box_w", "box_h")] == \
        [60, 45, 40, 30]
    assert table["drawn.png"]["box_source"] == "user"
    assert table["plain.png"]["box_source"] == "none" and table["plain.png"]["box_x"] == ""
    assert table["found.png"]["band"] == items["found.png"].prediction.band.name


def test_viewer_stays_responsive_during_batch(make_window, tmp_path, qtbot):
    folder = tmp_path / "slow"
    for i in range(40):  # about 4 s of batch work: room for the viewer on a loaded machine
        write_png(folder / f"s{i:02d}.png", 40 + 5 * i, size=(40, 50))
    engine = FakeEngine(delay=0.02, predict_delay=0.1)
    w = make_window(engine)
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(folder)
    with qtbot.waitSignal(dlg.finished_run, timeout=20000):
        dlg.start()
        qtbot.waitUntil(lambda: dlg.model.rowCount() >= 1, timeout=10000)
        w.open_paths([write_png(tmp_path / "viewer.png", 150)])
        wait_maps(qtbot, w, timeout=5000)
        assert dlg.is_running()  # the viewer got its maps while the batch was still going
    assert engine.max_active == 1  # never two model calls at once


def test_eta_words():
    assert format_eta(None) == "estimating time left..."
    assert format_eta(12.4) == "about 12 s left"
    assert format_eta(75) == "about 1 min 15 s left"
    assert format_eta(3 * 3600 + 120) == "about 3 h 02 min left"


def _choose(qtbot, combo, text: str) -> None:
    """Pick ``text`` in a combo box as a user does: open it, go to the entry, press Enter."""
    combo.setFocus()
    index = combo.findText(text)
    assert index >= 0, text
    while combo.currentIndex() != index:
        key = Qt.Key.Key_Down if combo.currentIndex() < index else Qt.Key.Key_Up
        qtbot.keyClick(combo, key)


def test_filters_follow_the_decision_at_the_cut_off(make_window, tmp_path, qtbot):
    """A result at 0.31 is suspicious at a 0.2 cut-off although "benign" is the more probable
    class: "Suspicious only" shows it, "Below the cut-off only" does not."""
    folder = tmp_path / "cut"
    write_png(folder / "low.png", 30)  # 0.12: below the cut-off
    write_png(folder / "mid.png", 80)  # 0.31: suspicious at 0.2, below 0.5
    write_png(folder / "high.png", 200)  # 0.78
    (folder / "broken.png").write_bytes(b"not an image")
    w = make_window(FakeEngine(threshold=0.2, flag=lambda px: "blank" if px.mean() > 150
                               else ""))
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(folder)
    _run(qtbot, dlg)
    names = lambda: sorted(i.path.name for i in dlg.visible_items())  # noqa: E731
    _choose(qtbot, dlg.filter, "Suspicious only")
    assert names() == ["high.png", "mid.png"]
    _choose(qtbot, dlg.filter, "Below the cut-off only")
    assert names() == ["low.png"]
    _choose(qtbot, dlg.filter, "Outside intended use only")
    assert names() == ["high.png"]
    _choose(qtbot, dlg.filter, "Failed only")
    assert names() == ["broken.png"]
    _choose(qtbot, dlg.filter, "All")
    assert len(names()) == 4
    assert dlg.summary.text() == ("4 shown; 2 suspicious, 1 below the cut-off, 1 outside "
                                  "intended use, 1 failed")


def test_continue_after_cancel_reviews_only_the_files_not_done(make_window, tmp_path, qtbot):
    folder = tmp_path / "many"
    for i in range(30):
        write_png(folder / f"img{i:02d}.png", 30 + 5 * i, size=(40, 50))
    engine = FakeEngine(predict_delay=0.05)
    w = make_window(engine)
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(folder)
    with qtbot.waitSignal(dlg.finished_run, timeout=20000):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dlg.model.rowCount() >= 1, timeout=10000)
        qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
    done = {str(i.path) for i in dlg.model.items}
    assert 1 <= len(done) < 30
    assert dlg.start_button.text() == "Continue"
    calls_before = len(engine.calls)
    _run(qtbot, dlg, timeout=20000)  # the same button
    assert sorted(i.path.name for i in dlg.model.items) == [f"img{i:02d}.png"
                                                          for i in range(30)]
    reviewed = [p for kind, paths, *_ in engine.calls[calls_before:] if kind == "predict"
                for p in paths]
    assert not done & set(reviewed)  # the files in the table are not classified again
    assert len(reviewed) == len(set(reviewed)) == 30 - len(done)
    assert dlg.progress_label.text().startswith("Done: 30 files")
    assert dlg.start_button.text() == "Run again"
    _run(qtbot, dlg, timeout=20000)  # a whole run again: from the first file
    assert dlg.model.rowCount() == 30
    assert {i.path.name for i in dlg.model.items} == {f"img{i:02d}.png" for i in range(30)}


def test_changed_options_after_cancel_start_from_the_beginning(make_window, tmp_path, qtbot):
    folder = tmp_path / "many"
    for i in range(30):
        write_png(folder / f"img{i:02d}.png", 30 + 5 * i, size=(40, 50))
    w = make_window(FakeEngine(predict_delay=0.05))
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(folder)
    with qtbot.waitSignal(dlg.finished_run, timeout=20000):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dlg.model.rowCount() >= 1, timeout=10000)
        qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
    assert dlg.start_button.text() == "Continue"
    qtbot.mouseClick(dlg.recursive, Qt.MouseButton.LeftButton)
    assert dlg.start_button.text() == "Run again"
    _run(qtbot, dlg, timeout=20000)
    assert dlg.model.rowCount() == 30


def test_columns_fit_the_names_and_an_empty_clip_column_is_hidden(make_window, tmp_path,
                                                                  qtbot):
    """At 1280 x 720, without cine clips: no Clip column; the file names are whole."""
    from rcdnet_desktop.gui.batch.batch_dialog import COL_CLIP, COL_FILE, COL_STATUS

    folder = tmp_path / "names"
    names = ["breast_ultrasound_left_upper_outer_quadrant.png", "b.png"]
    for i, n in enumerate(names):
        write_png(folder / n, 60 + 40 * i)
    w = make_window(FakeEngine())
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(folder)
    dlg.resize(1280, 680)
    _run(qtbot, dlg)
    table = dlg.table
    assert table.isColumnHidden(COL_CLIP)
    text_width = table.fontMetrics().horizontalAdvance(names[0])
    assert table.columnWidth(COL_FILE) >= text_width
    assert table.columnWidth(COL_STATUS) >= table.fontMetrics().horizontalAdvance("ok") + 100
