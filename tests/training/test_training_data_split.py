from pathlib import Path

import cv2
import numpy as np
from synth_busi import synthetic_image

from training.cache import load_all
from training.data import load_samples, mask_box, read_mask, scan_class_folders
from training.dedup import find_duplicates
from training.split import check_no_leak, make_split, read_split, write_split


def test_class_folders_attach_masks_and_ignore_normal(busi):
    extra = busi / "benign" / "benign (1)_mask_1.png"
    cv2.imwrite(str(extra), np.full((96, 80), 255, np.uint8))
    samples = scan_class_folders(busi)
    assert len(samples) == 12
    assert all("normal" not in str(s.path) and "_mask" not in s.path.name for s in samples)
    first = next(s for s in samples if s.path.name == "benign (1).png")
    assert len(first.masks) == 2
    union = read_mask(first.masks, (96, 80))
    assert union.all()  # union of the two masks
    assert mask_box(union) == (0, 0, 80, 96)


def test_manifest_and_unreadable_reported(tmp_path, busi):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,mask\n"
                   f"{busi / 'benign' / 'benign (1).png'},benign,"
                   f"{busi / 'benign' / 'benign (1)_mask.png'}\n"
                   "broken.png,malignant,\n")
    samples = load_samples(csv)
    assert [s.label for s in samples] == [0, 1]
    items, rep = load_all(samples, tmp_path / "cache", progress=False)
    assert len(items) == 1 and items[0].box is not None
    assert len(rep.skipped) == 1 and "broken.png" in rep.skipped[0][0]
    # the cache serves the same pixels the second time
    again, _ = load_all(samples[:1], tmp_path / "cache", progress=False)
    assert np.array_equal(again[0].grey, items[0].grey)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def _shifted_crop(img, dx, dy):
    h, w = img.shape
    return cv2.resize(img[dy:h - 2, dx:w - 3], (w, h))


def test_dedup_groups_crops_and_flags_conflicts():
    greys, labels = [], []
    for i in range(8):
        img, _ = synthetic_image(i % 2, 500 + i)
        greys.append(img)
        labels.append(i % 2)
    greys.append(_shifted_crop(greys[0], 3, 2))  # re-crop of image 0, same label
    labels.append(0)
    greys.append(greys[1].copy())  # identical to image 1 (malignant) but labelled benign
    labels.append(0)
    res = find_duplicates(greys, labels)
    assert res.groups[8] == res.groups[0]
    assert res.groups[9] == res.groups[1]
    assert res.n_groups == 8 and res.n_multi == 2
    assert res.conflicts == [res.groups[1]]


def test_split_by_group_stratified_and_roundtrip(tmp_path):
    from training.data import Sample

    rng = np.random.default_rng(1)
    samples, groups = [], []
    for g in range(60):
        label = int(g < 20)  # 20 malignant groups, 40 benign
        for _ in range(int(rng.integers(1, 4))):
            samples.append(Sample(Path(f"/d/{len(samples)}.png"), label, site="d"))
            groups.append(g)

    class DD:
        def __init__(self):
            self.groups = groups
            self.conflicts = []

        def members(self):
            out = {}
            for i, g in enumerate(self.groups):
                out.setdefault(g, []).append(i)
            return out

    rows = make_split(samples, DD(), 0.3, seed=3)
    check_no_leak(rows)
    for label in (0, 1):
        n = sum(r.label == label for r in rows)
        v = sum(r.label == label and r.split == "val" for r in rows)
        assert abs(v / n - 0.3) < 0.06
    write_split(rows, tmp_path / "split.csv", {"d": Path("/d")})
    assert "0.png,malignant" in (tmp_path / "split.csv").read_text()  # relative to the site
    back = read_split(tmp_path / "split.csv", {"d": Path("/d")})
    assert back == rows
    assert make_split(samples, DD(), 0.3, seed=3) == rows  # fixed seed, same split


def test_two_sites_split_each_by_its_own_groups_and_patients(tmp_path):
    import csv

    from synth_busi import write_busi

    from training.pipeline import prepare, save_split

    a = write_busi(tmp_path / "site_a", n_per_class=6, seed=1)
    b = write_busi(tmp_path / "site_b", n_per_class=8, seed=2)
    # Site b gives patient codes: two images per patient, which must stay together.
    files = sorted(p.relative_to(b).as_posix() for p in b.glob("*/*.png") if "_mask" not in p.name
                   and "normal" not in p.parts)
    with (b / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "cls", "patient"])
        for i, f in enumerate(files):
            w.writerow([f, f.split("/")[0], f"{f.split('/')[0]}-P{i // 2}"])
    prep = prepare([a, b], None, None, seed=0, progress=False)
    by_site = {s: [r for r in prep.rows if r.site == s] for s in ("site_a", "site_b")}
    assert len(by_site["site_a"]) == 12 and len(by_site["site_b"]) == 16
    assert {r.group for r in by_site["site_a"]}.isdisjoint({r.group for r in by_site["site_b"]})
    for s, rows in by_site.items():  # each site is split on its own, both classes on both sides
        for label in (0, 1):
            assert {r.split for r in rows if r.label == label} == {"train", "val"}, s
    patient = {str(it.sample.path): it.sample.patient for it in prep.items}
    sides: dict = {}
    for r in by_site["site_b"]:
        sides.setdefault(patient[r.path], set()).add((r.split, r.group))
    assert len(sides) == 8 and all(len(v) == 1 for v in sides.values())
    assert prep.sites("val") == [r.site for r in prep.rows if r.split == "val"]
    # The CSV keeps the site; reading it back against the same folders gives the same split.
    save_split(prep, tmp_path / "split.csv", [a, b])
    again = prepare([a, b], tmp_path / "split.csv", None, progress=False)
    assert again.rows == prep.rows
    assert "site_b" in prep.dedup_summary["sites"]
