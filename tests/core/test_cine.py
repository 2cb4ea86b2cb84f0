"""Cine clips: the one rule for a clip's result, the frames sampled, the frame-by-frame sweep
through the engine, and a clip in a batch review (its one row)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcdnet_desktop.core.batch import review
from rcdnet_desktop.core.cine import classify_frames, clip_item, sample_frames
from rcdnet_desktop.core.clip import ClipSummary, clip_summary
from rcdnet_desktop.core.errors import UnreadableImageError
from rcdnet_desktop.core.export.batch_csv import batch_row
from rcdnet_desktop.core.model.engine import NO_LESION_WARNING
from rcdnet_desktop.core.types import Box, ImageRecord, Prediction


def _pred(frame: int, p: float, checks: tuple[str, ...] = (), threshold: float = 0.5,
          no_lesion: bool = False) -> Prediction:
    """A frame's prediction decided at ``threshold`` (as the engine decides at the card's);
    ``no_lesion``: the localiser found nothing and the whole frame was classified."""
    return Prediction(p_benign=1 - p, p_malignant=p, device="cpu", model_version="t",
                      frame=frame, checks=checks, suspicious=p >= threshold,
                      warnings=(NO_LESION_WARNING,) if no_lesion else (),
                      box=None if no_lesion else Box(10, 10, 40, 40),
                      box_source="none" if no_lesion else "auto")


# --- the rule --------------------------------------------------------------------------------


def test_clip_summary_maximum_median_share_and_count():
    probs = [0.10, 0.37, 0.58, 0.30, 0.45, 0.40]
    s = clip_summary([_pred(i, p, threshold=0.40) for i, p in enumerate(probs)],
                     threshold=0.40)
    assert s.frames == s.classifiable == 6
    assert (s.max_p, s.max_frame) == (0.58, 2)
    assert s.median_p == pytest.approx((0.37 + 0.40) / 2)
    assert s.suspicious_frames == 3  # 0.58, 0.45 and 0.40: the threshold itself counts
    assert s.suspicious_share == pytest.approx(0.5)
    assert s.threshold == 0.40
    assert s.flagged_frames == s.no_lesion_frames == s.failed_frames == ()


def test_the_decision_is_the_frames_own_not_a_comparison_made_here():
    """A frame is counted suspicious when its prediction says so (the engine decided it at
    the card's cut-off), whatever threshold the summary is given for display."""
    preds = [_pred(0, 0.30, threshold=0.2), _pred(1, 0.10, threshold=0.2)]
    assert clip_summary(preds, threshold=0.5).suspicious_frames == 1


def test_clip_summary_takes_the_frames_in_any_order_and_the_earliest_maximum():
    preds = [_pred(7, 0.9), _pred(3, 0.2), _pred(5, 0.9), _pred(1, 0.1)]
    s = clip_summary(preds, 0.5)
    assert (s.max_p, s.max_frame) == (0.9, 5)
    assert s.median_p == pytest.approx(0.55)


def test_frames_outside_intended_use_or_without_a_lesion_are_counted_not_summarised():
    """A cardiac frame (flagged) and frames with no lesion found are counted on their own; the
    maximum, median and share are over the classifiable frames only."""
    preds = [_pred(0, 0.20), _pred(1, 0.95, checks=("not_breast_ultrasound",)),
             _pred(2, 0.80, no_lesion=True), _pred(3, 0.60), _pred(4, 0.30),
             _pred(5, 0.70, checks=("blank",), no_lesion=True)]
    s = clip_summary(preds, 0.5, failed=[6])
    assert s.frames == 6 and s.classifiable == 3
    assert s.flagged_frames == (1, 5)  # flagged and no lesion: outside intended use first
    assert s.no_lesion_frames == (2,)
    assert s.failed_frames == (6,)
    assert (s.max_p, s.max_frame) == (0.60, 3)  # not the flagged 0.95, nor the 0.80
    assert s.median_p == pytest.approx(0.30)
    assert s.suspicious_frames == 1 and s.suspicious_share == pytest.approx(1 / 3)
    assert s.text() == ("1 of 3 classifiable frames suspicious (33%); max P(malignant) 0.60 "
                        "(frame 4), median 0.30; 1 frame: no lesion found; 2 outside intended "
                        "use; 1 frame could not be classified")


def test_a_breast_clip_with_many_frames_without_a_lesion():
    """40 frames, 15 with no lesion found: the share is over the 25 classifiable ones."""
    preds = [_pred(i, 0.9 if i in (3, 20) else 0.2, no_lesion=i >= 25) for i in range(40)]
    s = clip_summary(preds, 0.5)
    assert s.text() == ("2 of 25 classifiable frames suspicious (8%); max P(malignant) 0.90 "
                        "(frame 4), median 0.20; 15 frames: no lesion found; 0 outside "
                        "intended use")
    assert s.suspicious_share == pytest.approx(2 / 25)


def test_a_clip_with_no_classifiable_frame_still_has_a_row_but_no_share():
    preds = [_pred(0, 0.3, checks=("not_breast_ultrasound",)), _pred(1, 0.7, no_lesion=True)]
    s = clip_summary(preds, 0.5)
    assert s.classifiable == 0 and s.suspicious_share is None and s.suspicious_frames == 0
    assert (s.max_p, s.max_frame) == (0.7, 1)  # over every frame classified
    assert s.text() == ("no classifiable frame of 2 frames; 1 frame: no lesion found; "
                        "1 outside intended use")


def test_clip_summary_of_one_frame_and_of_none():
    s = clip_summary([_pred(0, 0.2)], 0.5)
    assert (s.frames, s.max_frame, s.median_p, s.suspicious_frames) == (1, 0, 0.2, 0)
    assert s.text().startswith("0 of 1 classifiable frame suspicious (0%)")
    with pytest.raises(ValueError, match="at least one"):
        clip_summary([], 0.5)


def test_clip_summary_in_words_numbers_frames_as_the_viewer_does():
    s = ClipSummary(frames=34, max_p=0.581, max_frame=10, median_p=0.372, suspicious_frames=4,
                    threshold=0.5)
    assert s.text() == ("4 of 34 classifiable frames suspicious (12%); max P(malignant) 0.58 "
                        "(frame 11), median 0.37; 0 frames: no lesion found; 0 outside "
                        "intended use")
    one_in_300 = ClipSummary(300, 0.6, 0, 0.1, 1, 0.5)
    assert "suspicious (<1%)" in one_in_300.text()
    assert "suspicious (>99%)" in ClipSummary(300, 0.6, 0, 0.6, 299, 0.5).text()
    assert "suspicious (100%)" in ClipSummary(3, 0.6, 0, 0.6, 3, 0.5).text()


def test_sample_frames_every_frame_or_n_evenly_spaced():
    assert sample_frames(5) == sample_frames(5, "all") == [0, 1, 2, 3, 4]
    assert sample_frames(30, 3) == [5, 15, 25]
    assert sample_frames(30, 1) == [15]
    assert sample_frames(10, 4) == [1, 3, 6, 8]
    assert sample_frames(4, 10) == [0, 1, 2, 3]  # more than the clip has: every frame
    assert sample_frames(1, 3) == [0]
    evenly = sample_frames(300, 7)
    gaps = {b - a for a, b in zip(evenly, evenly[1:], strict=False)}
    assert len(evenly) == 7 and max(gaps) - min(gaps) <= 1
    for bad in (0, -2, "some", 2.5, True):
        with pytest.raises(ValueError, match="number of frames"):
            sample_frames(10, bad)


# --- the sweep -------------------------------------------------------------------------------


class Clip:
    """A synthetic clip whose frames brighten one by one; it records what was decoded."""

    def __init__(self, n: int = 11, bad: tuple[int, ...] = ()) -> None:
        rng = np.random.default_rng(3)
        base = rng.integers(30, 90, (96, 128), np.uint8)
        self.frames = [np.clip(base.astype(int) + 12 * i, 0, 255).astype(np.uint8)
                       for i in range(n)]
        self.bad = bad
        self.events: list[tuple[str, int]] = []
        self.record = ImageRecord(path=Path("clip.dcm"), pixels=self.frames[0], frame_count=n,
                                  source_format="DICOM", frame_loader=self.load)

    def load(self, i: int) -> np.ndarray:
        self.events.append(("decode", i))
        if i in self.bad:
            raise UnreadableImageError(Path("clip.dcm"), f"frame {i}: damaged")
        return self.frames[i].copy()


class Spy:
    """The engine, with each forward pass recorded among the clip's decodes."""

    def __init__(self, engine, clip: Clip) -> None:
        self.engine, self.clip = engine, clip

    def prepare(self, *args, **kwargs):
        return self.engine.prepare(*args, **kwargs)

    def predict_prepared(self, items):
        self.clip.events.append(("predict", len(items)))
        return self.engine.predict_prepared(items)


def test_every_frame_classified_as_one_by_one_in_chunks(engine):
    clip = Clip(11)
    chunks = list(classify_frames(Spy(engine, clip), clip.record, chunk=4))
    assert [len(c) for c in chunks] == [4, 4, 3]
    results = [r for c in chunks for r in c]
    assert [r.frame for r in results] == list(range(11))
    for r in results:
        assert r.error == "" and r.prediction.frame == r.frame
        single = engine.predict(clip.frames[r.frame])
        assert r.prediction.p_malignant == pytest.approx(single.p_malignant, abs=1e-5)
    # Bounded memory: frames are decoded one at a time, at most one chunk ahead of the model
    # (frame 0 is the record's own pixels, never decoded again).
    decoded_since_predict = 0
    for kind, _n in clip.events:
        if kind == "decode":
            decoded_since_predict += 1
            assert decoded_since_predict <= 4
        else:
            decoded_since_predict = 0
    assert [n for kind, n in clip.events if kind == "decode"] == list(range(1, 11))


def test_a_frame_that_cannot_be_decoded_is_reported_and_the_sweep_goes_on(engine):
    clip = Clip(5, bad=(2,))
    results = [r for c in classify_frames(engine, clip.record, chunk=2) for r in c]
    assert [r.frame for r in results] == [0, 1, 2, 3, 4]
    assert results[2].prediction is None and "damaged" in results[2].error
    assert all(r.prediction is not None for r in results if r.frame != 2)


def test_the_sweep_stops_when_cancelled_and_takes_a_list_of_frames(engine):
    clip = Clip(9)
    stop = threading.Event()
    got = []
    for chunk in classify_frames(engine, clip.record, chunk=2, cancelled=stop.is_set):
        got += chunk
        stop.set()
    assert [r.frame for r in got] == [0, 1]
    some = [r.frame for c in classify_frames(engine, clip.record, frames=[8, 3]) for r in c]
    assert some == [8, 3]


# --- a clip in a batch review ----------------------------------------------------------------


def test_clip_item_is_the_worst_frame_with_the_summary(engine):
    clip = Clip(6, bad=(4,))
    item = clip_item(engine, clip.record, threshold=0.5, chunk=4)
    preds = [r.prediction for c in classify_frames(engine, Clip(6, bad=(4,)).record)
             for r in c if r.prediction is not None]
    expected = clip_summary(preds, 0.5, failed=[4])
    assert item.clip == expected and expected.frames == 5
    assert item.prediction.frame == expected.max_frame
    assert item.prediction.p_malignant == pytest.approx(expected.max_p)
    assert any(w.startswith("1 frame could not be classified (frames 5; frame 5:")
               and "damaged" in w for w in item.prediction.warnings)
    row = batch_row(item)
    assert row["status"] == "ok" and row["frame"] == str(expected.max_frame + 1)  # counted from 1
    assert row["p_malignant"] == f"{expected.max_p:.4f}"
    assert row["clip_frames"] == "5"
    assert row["clip_median"] == f"{expected.median_p:.4f}"
    assert row["clip_suspicious_share"] == f"{expected.suspicious_share:.4f}"
    assert row["clip_classifiable"] == "5"
    assert row["clip_no_lesion"] == row["clip_outside"] == "0"
    assert row["clip_summary"] == expected.text()
    assert row["clip_summary"].endswith("; 1 frame could not be classified")


class Marking:
    """The engine, with frame 1 flagged as another organ and frame 3 without a lesion found,
    and frame 1 the most probable of all."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def prepare(self, *args, **kwargs):
        return self.engine.prepare(*args, **kwargs)

    def predict_prepared(self, items):
        out = []
        for p in self.engine.predict_prepared(items):
            if p.frame == 1:
                p = replace(p, p_malignant=0.99, p_benign=0.01, suspicious=True,
                            checks=("not_breast_ultrasound",), warnings=("another organ",))
            elif p.frame == 3:
                p = replace(p, box=None, roi=None, box_source="none",
                            warnings=(NO_LESION_WARNING,))
            out.append(p)
        return out


def test_a_clip_row_is_its_most_suspicious_classifiable_frame_with_its_own_flags(engine):
    """The flagged frame is the most probable, but the row is a classifiable frame's, with
    that frame's own checks (none); the flagged and no-lesion frames are counted and named."""
    item = clip_item(Marking(engine), Clip(6).record, threshold=0.5)
    s = item.clip
    assert s.flagged_frames == (1,) and s.no_lesion_frames == (3,) and s.classifiable == 4
    assert item.prediction.frame not in (1, 3) and item.prediction.frame == s.max_frame
    assert item.prediction.checks == () and not item.prediction.outside_intended_use
    assert "1 of 6 frames outside intended use (frames 2)" in item.prediction.warnings
    assert "1 of 6 frames: no lesion found (frames 4)" in item.prediction.warnings
    row = batch_row(item)
    assert (row["clip_classifiable"], row["clip_no_lesion"], row["clip_outside"]) == \
        ("4", "1", "1")
    assert "1 frame: no lesion found; 1 outside intended use" in row["clip_summary"]


def test_clip_item_of_n_frames_classifies_those_frames(engine):
    clip = Clip(30)
    item = clip_item(engine, clip.record, threshold=0.5, frames=3)
    assert item.clip.frames == 3 and item.prediction.frame in (5, 15, 25)
    assert sorted(i for kind, i in clip.events if kind == "decode") == [5, 15, 25]


def test_a_clip_where_no_frame_could_be_classified_fails_with_the_reason(engine):
    clip = Clip(3, bad=(0, 1, 2))
    clip.record.frame_loader = clip.load
    clip.record.pixels_frame = -1  # frame 0 decoded through the loader too, and damaged
    item = clip_item(engine, clip.record, threshold=0.5)
    assert item.status == "failed" and item.clip is None
    assert "no frame of the clip could be classified (frame 1:" in item.error
    assert "damaged" in item.error


def test_a_cancelled_clip_gives_no_item(engine):
    stop = threading.Event()
    stop.set()
    assert clip_item(engine, Clip(5).record, 0.5, cancelled=stop.is_set) is None


def _tiff_clip(path: Path, n: int) -> Path:
    pages = [Image.fromarray(np.full((80, 96), 20 + 20 * i, np.uint8)) for i in range(n)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def test_review_sweep_gives_one_row_per_clip_and_leaves_single_images_alone(tmp_path, engine):
    _tiff_clip(tmp_path / "a_clip.tif", 5)
    Image.fromarray(np.full((80, 96), 90, np.uint8)).save(tmp_path / "b_single.png")
    items = list(review([tmp_path], engine, sweep="all", chunk=1))
    assert [(i.path.name, i.clip is not None) for i in items] == [
        ("a_clip.tif", True), ("b_single.png", False)]
    assert items[0].clip.frames == 5
    rows = [batch_row(i) for i in items]
    assert rows[0]["frame"] == str(items[0].clip.max_frame + 1)
    assert rows[1]["frame"] == "1" and rows[1]["clip_frames"] == ""
    single_default = next(iter(review([tmp_path / "b_single.png"], engine)))
    assert items[1].prediction == single_default.prediction
    # Without a sweep, a clip is its one frame, asked for.
    plain = list(review([tmp_path / "a_clip.tif"], engine, frame=3))
    assert len(plain) == 1 and plain[0].clip is None and batch_row(plain[0])["frame"] == "4"
    two = next(iter(review([tmp_path / "a_clip.tif"], engine, sweep=2)))
    assert two.clip.frames == 2 and two.prediction.frame in (1, 3)


def test_review_sweep_with_heat_maps_gives_the_worst_frame_maps(tmp_path, engine):
    _tiff_clip(tmp_path / "clip.tif", 4)
    (item,) = review([tmp_path], engine, sweep="all", explain=True)
    assert item.clip is not None and item.record is not None
    assert item.heatmaps.prediction.frame == item.clip.max_frame
    assert item.heatmaps.prediction == item.prediction


def test_review_sweep_uses_the_given_box_on_every_frame(tmp_path, engine):
    from rcdnet_desktop.core.types import Box

    path = _tiff_clip(tmp_path / "clip.tif", 3)
    box = Box(10, 10, 40, 30)
    (item,) = review([path], engine, sweep="all", rois={path: box})
    assert item.prediction.box_source == "user" and item.prediction.box == box


def test_review_cancelled_during_a_sweep_yields_nothing_for_that_clip(tmp_path, engine):
    _tiff_clip(tmp_path / "a_clip.tif", 9)
    Image.fromarray(np.full((80, 96), 90, np.uint8)).save(tmp_path / "b_single.png")
    stop = threading.Event()

    class StopAfterOnePass:
        card = engine.card

        def prepare(self, *args, **kwargs):
            return engine.prepare(*args, **kwargs)

        def predict_prepared(self, items):
            assert items  # never called for nothing
            stop.set()  # the user presses Cancel while the clip's first chunk runs
            return engine.predict_prepared(items)

    spy = StopAfterOnePass()
    items = list(review([tmp_path], spy, sweep="all", cancel=stop, chunk=1))
    assert items == [] and stop.is_set()
