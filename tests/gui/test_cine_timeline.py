"""The cine timeline, driven as a user does: open a clip, watch every frame get classified in
the background, press J or click "Most suspicious frame", click on the plot; opening another
image stops the sweep, coming back finishes it; the batch review reports a clip on the same
rule. The fake engine's P(malignant) is a frame's mean grey level / 255, so each frame's value
is known."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from rcdnet_desktop.core.clip import clip_summary
from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui.batch.batch_dialog import COLUMNS
from tests.gui.gui_helpers import FLAG_WORDS, FakeEngine, wait_idle, write_png

LEVELS = (40, 60, 200, 90, 120, 70)
"""Grey level of each frame of the test clip: frame 2 is the most suspicious (0.78)."""


def _clip(path: Path, levels=LEVELS) -> Path:
    pages = [Image.fromarray(np.full((90, 120), v, np.uint8)) for v in levels]
    path.parent.mkdir(parents=True, exist_ok=True)
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def _swept(w, n: int) -> bool:
    return len(w.cine_timeline.timeline.plot.values()) == n \
        and w.cine_timeline.sweeper.running is None


def _sweep_frames(engine: FakeEngine, name: str) -> list[int]:
    """Frames of ``name`` sent through predict_prepared in batches of several (the sweep)."""
    return [f for kind, paths, frames, _ in (c[:4] for c in engine.calls)
            if kind == "predict" for p, f in zip(paths, frames, strict=True)
            if Path(p).name == name and len(frames) > 1]


def test_every_frame_is_classified_and_j_jumps_to_the_most_suspicious(make_window, tmp_path,
                                                                      qtbot):
    from PySide6.QtTest import QTest

    w = make_window(FakeEngine())
    w.open_paths([_clip(tmp_path / "clip.tif")])
    timeline = w.cine_timeline.timeline
    qtbot.waitUntil(lambda: _swept(w, len(LEVELS)), timeout=10000)
    assert timeline.isVisible()
    values = timeline.plot.values()
    assert values == pytest.approx({i: v / 255 for i, v in enumerate(LEVELS)})
    assert timeline.plot.threshold() == 0.5  # the card has none: the default
    text = timeline.summary.text()
    assert text == ("1 of 6 classifiable frames suspicious (17%); max P(malignant) 0.78 "
                    "(frame 3), median 0.31; 0 frames: no lesion found; 0 outside intended use")
    assert w.cine.frame() == 0

    QTest.keyClick(w, Qt.Key.Key_J)
    assert w.cine.frame() == 2 and w.controller.current.frame == 2
    assert timeline.plot.current() == 2
    qtbot.waitUntil(lambda: w.prediction.prediction() is not None
                    and w.prediction.prediction().frame == 2, timeout=5000)
    # The viewer's own result for that frame is the sweep's.
    assert w.prediction.prediction().p_malignant == pytest.approx(values[2])

    w.cine.slider.setValue(4)  # the user drags the slider away, then clicks the button
    assert timeline.plot.current() == 4
    qtbot.mouseClick(timeline.worst_button, Qt.MouseButton.LeftButton)
    assert w.cine.frame() == 2
    wait_idle(qtbot, w)


def test_clicking_the_plot_shows_that_frame(make_window, tmp_path, qtbot):
    w = make_window(FakeEngine())
    w.open_paths([_clip(tmp_path / "clip.tif")])
    plot = w.cine_timeline.timeline.plot
    qtbot.waitUntil(lambda: _swept(w, len(LEVELS)), timeout=10000)
    x = round(plot.x_of(4))
    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=QPoint(x, plot.height() // 2))
    assert w.cine.frame() == 4 and w.controller.current.frame == 4
    wait_idle(qtbot, w)


def test_a_single_image_has_no_timeline_and_the_action_is_off(make_window, tmp_path, qtbot):
    w = make_window(FakeEngine())
    w.open_paths([write_png(tmp_path / "one.png", 100)])
    wait_idle(qtbot, w)
    assert not w.cine_timeline.timeline.isVisible()
    assert not w.cine_timeline.go_worst.isEnabled()
    assert w.cine_timeline.sweeper.running is None


def test_opening_another_image_stops_the_sweep_and_coming_back_finishes_it(make_window,
                                                                         tmp_path, qtbot):
    levels = tuple(20 + (5 * i) % 200 for i in range(48))
    engine = FakeEngine(predict_delay=0.02)
    w = make_window(engine)
    clip = _clip(tmp_path / "long.tif", levels)
    still = write_png(tmp_path / "still.png", 100)
    w.open_paths([clip])
    ctl = w.cine_timeline
    qtbot.waitUntil(lambda: 0 < len(ctl.timeline.plot.values()) < len(levels), timeout=10000)
    w.open_paths([still])  # another image: the clip's sweep stops before its next chunk
    assert ctl.sweeper.running is None and not ctl.timeline.isVisible()
    qtbot.waitUntil(lambda: not any(p.activeThreadCount() for p in [ctl.sweeper._pool]),
                    timeout=10000)
    done = len(_sweep_frames(engine, "long.tif"))
    assert done < len(levels)

    w.act.prev.trigger()  # back to the clip (Left / PgUp)
    assert w.controller.current.path == clip
    qtbot.waitUntil(lambda: _swept(w, len(levels)), timeout=20000)
    frames = _sweep_frames(engine, "long.tif")
    assert sorted(frames) == list(range(len(levels)))  # each frame once, none twice
    summary = ctl.summary()
    assert summary == clip_summary([r.prediction for r in ctl.results[w.controller.current.doc_id]
                                    .values()], 0.5)
    assert w.cine_timeline.timeline.summary.text() == summary.text()
    wait_idle(qtbot, w)


def test_batch_review_reports_each_clip_on_the_same_rule(make_window, tmp_path, qtbot):
    root = tmp_path / "study"
    _clip(root / "clip.tif")
    write_png(root / "still.png", 100)
    w = make_window(FakeEngine())
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(root)
    assert dlg.clips.currentData() == "all"  # every frame, by default
    with qtbot.waitSignal(dlg.finished_run, timeout=10000):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    assert dlg.model.rowCount() == 2
    rows = {dlg.model.data(dlg.model.index(r, 0)):
            [dlg.model.data(dlg.model.index(r, c)) for c in range(len(COLUMNS))]
            for r in range(2)}
    clip = rows["clip.tif"]
    assert clip[COLUMNS.index("P(malignant)")] == f"{200 / 255:.2f}"
    summary = next(i.clip for i in dlg.model.items if i.path.name == "clip.tif")
    assert clip[COLUMNS.index("Clip")] == summary.text() == (
        "1 of 6 classifiable frames suspicious (17%); max P(malignant) 0.78 (frame 3), median "
        "0.31; 0 frames: no lesion found; 0 outside intended use")
    assert rows["still.png"][COLUMNS.index("Clip")] == ""
    out = dlg.export_csv(tmp_path / "rows.csv")
    with open(out, newline="") as fh:
        csv_rows = {Path(r["file"]).name: r for r in csv.DictReader(fh)}
    assert csv_rows["clip.tif"]["frame"] == "3" and csv_rows["clip.tif"]["clip_frames"] == "6"
    assert csv_rows["clip.tif"]["clip_summary"] == summary.text()

    dlg.clips.setCurrentIndex(dlg.clips.findData(None))  # first frame only
    with qtbot.waitSignal(dlg.finished_run, timeout=10000):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    first = next(i for i in dlg.model.items if i.path.name == "clip.tif")
    assert first.clip is None and first.prediction.frame == 0


def test_another_device_sweeps_the_clip_again(make_window, tmp_path, qtbot):
    engine = FakeEngine()
    w = make_window(engine)
    w.open_paths([_clip(tmp_path / "clip.tif")])
    qtbot.waitUntil(lambda: _swept(w, len(LEVELS)), timeout=10000)
    assert sorted(_sweep_frames(engine, "clip.tif")) == list(range(len(LEVELS)))
    w.act.device["cpu"].trigger()  # Model > Device: the engine is made again
    qtbot.waitUntil(lambda: len(_sweep_frames(engine, "clip.tif")) == 2 * len(LEVELS)
                    and _swept(w, len(LEVELS)), timeout=10000)
    assert w.cine_timeline.go_worst.isEnabled()
    wait_idle(qtbot, w)


def test_summary_words_while_sweeping_and_partly_done_render_the_clip_summary():
    from rcdnet_desktop.core.clip import ClipSummary
    from rcdnet_desktop.gui.cine.timeline import summary_words

    s = ClipSummary(frames=4, max_p=0.61, max_frame=2, median_p=0.3, suspicious_frames=1,
                    threshold=0.16, flagged_frames=(1, 3), failed_frames=(5,))
    assert summary_words(None, 0, 10, sweeping=True) == "Classifying every frame: 0 of 10..."
    assert summary_words(None, 0, 10, sweeping=False).startswith("Every frame is classified")
    assert summary_words(s, 5, 10, sweeping=True) == (
        f"Classifying every frame: 5 of 10... so far {s.text()}")
    assert summary_words(s, 5, 10, sweeping=False) == (
        f"{s.text()}; 5 frames not classified yet")
    assert s.text() == ("1 of 2 classifiable frames suspicious (50%); max P(malignant) 0.61 "
                        "(frame 3), median 0.30; 0 frames: no lesion found; 2 outside intended "
                        "use; 1 frame could not be classified")


def test_the_plot_maps_frames_and_positions_both_ways(qtbot):
    from rcdnet_desktop.gui.cine.timeline import TimelinePlot

    plot = TimelinePlot()
    qtbot.addWidget(plot)
    plot.resize(400, 60)
    plot.set_clip(120, 0.16)
    assert [plot.frame_at(plot.x_of(f)) for f in (0, 1, 59, 118, 119)] == [0, 1, 59, 118, 119]
    assert plot.frame_at(-50) == 0 and plot.frame_at(5000) == 119


# --- frames outside intended use, frames with no lesion found --------------------------------

FLAGGED = (90, 240, 80, 160, 30, 110)
"""A clip whose frame 1 (shown as frame 2) is flagged by an intended-use check (the fake flags
a frame brighter than 230) and is the brightest, so the most probable; the localiser finds no
lesion on frame 4 (darker than 50)."""


def _flagging_engine() -> FakeEngine:
    return FakeEngine(flag=lambda px: "not_breast_ultrasound" if px.mean() > 230 else "",
                      lesion=lambda px: None if px.mean() < 50 else Box(20, 20, 60, 40))


def test_a_flagged_frame_is_marked_and_shows_its_banner_when_displayed(make_window, tmp_path,
                                                                       qtbot):
    """The user opens the clip: the flagged frame is marked on the timeline, is not the
    "most suspicious frame" although its probability is the highest, and is counted in the
    summary; clicking it on the plot shows it with the amber outside-intended-use banner, and
    J goes back to a classifiable frame, without the banner."""
    w = make_window(_flagging_engine())
    w.open_paths([_clip(tmp_path / "heart.tif", FLAGGED)])
    ctl = w.cine_timeline
    plot = ctl.timeline.plot
    qtbot.waitUntil(lambda: _swept(w, len(FLAGGED)), timeout=10000)
    assert plot.outside_marks() == (1,) and plot.no_lesion_marks() == (4,)
    summary = ctl.summary()
    assert summary.max_frame == 3 and summary.classifiable == 4
    assert ctl.timeline.summary.text() == summary.text()
    assert summary.text().endswith("1 frame: no lesion found; 1 outside intended use")

    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton,
                     pos=QPoint(round(plot.x_of(1)), plot.height() // 2))
    assert w.cine.frame() == 1
    qtbot.waitUntil(lambda: w.prediction.prediction() is not None
                    and w.prediction.prediction().frame == 1, timeout=5000)
    assert w.prediction.warning_text().startswith("Outside intended use")
    assert FLAG_WORDS in w.prediction.warning_text()

    from PySide6.QtTest import QTest

    QTest.keyClick(w, Qt.Key.Key_J)
    assert w.cine.frame() == 3
    qtbot.waitUntil(lambda: w.prediction.prediction() is not None
                    and w.prediction.prediction().frame == 3, timeout=5000)
    assert w.prediction.warning_text() == ""
    wait_idle(qtbot, w)


def test_the_batch_row_of_a_clip_with_a_flagged_frame(make_window, tmp_path, qtbot):
    """Batch review of the same clip: its row is the most suspicious classifiable frame, the
    Clip column the same summary words as the timeline, and the CSV counts both groups."""
    root = tmp_path / "study"
    _clip(root / "heart.tif", FLAGGED)
    w = make_window(_flagging_engine())
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=5000)
    dlg = w.batch_dialog(root)
    with qtbot.waitSignal(dlg.finished_run, timeout=10000):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    item = dlg.model.items[0]
    assert item.prediction.frame == 3 and not item.prediction.outside_intended_use
    assert dlg.model.data(dlg.model.index(0, COLUMNS.index("Clip"))) == item.clip.text()
    row = dlg.model.data(dlg.model.index(0, COLUMNS.index("Status")))
    assert "1 of 6 frames outside intended use (frames 2)" in row
    out = dlg.export_csv(tmp_path / "rows.csv")
    with open(out, newline="") as fh:
        csv_row = next(csv.DictReader(fh))
    assert (csv_row["clip_classifiable"], csv_row["clip_no_lesion"], csv_row["clip_outside"]) \
        == ("4", "1", "1")
    assert csv_row["clip_summary"] == item.clip.text()
