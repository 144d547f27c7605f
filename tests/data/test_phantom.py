"""The phantom benchmark: interface, subsets that need each prior, distractor rules, anatomy."""
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from medseg_r.data.phantom import make_phantom
from medseg_r.data.phantom.generate import KINDS, case_kind, split_and_position
from medseg_r.data.phantom.reports import KNOWN, NEW
from medseg_r.report.parser import parse_report

LESION_KEYS = {"side", "zone", "texture", "shape", "shape_shown", "size_px", "size_mm", "area_px",
               "bbox", "contrast", "cnr", "density", "lidc_annotation_id", "described", "role",
               "sentence", "words", "tags"}
ROW_KEYS = {"id", "image", "mask", "report", "split", "tags", "lesions", "kind", "phrasing",
            "oov_words", "incidental", "vessel_dots"}
SIZE_WORDS = {w for bank in (KNOWN, NEW) for words in bank["size"].values() for w in words}


@pytest.fixture(scope="module")
def phantom(phantom_256):
    out = phantom_256
    with open(out / "manifest.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    with open(out / "dataset.json", encoding="utf-8") as handle:
        meta = json.load(handle)
    return out, rows, meta


def _mask(root, row):
    return np.asarray(Image.open(os.path.join(root, row["mask"]))) > 127


def _positive(report):
    return [f for f in parse_report(report).findings if not f.negated]


def _targets(row):
    return [lesion for lesion in row["lesions"] if lesion["described"]]


def _look_alikes(row):
    """The target of a subset case and its mentioned look-alikes (granulomas excluded)."""
    return [lesion for lesion in row["lesions"]
            if lesion["role"] in ("target", "mentioned") and lesion["size_mm"] > 6]


def _same_cell(row, target):
    return [lesion for lesion in _look_alikes(row)
            if (lesion["side"], lesion["zone"]) == (target["side"], target["zone"])]


def _no_size(report):
    return not re.search(r"\d\s*(mm|cm)\b", report) and not any(w in report for w in SIZE_WORDS)


def _kind(rows, kind):
    chosen = [r for r in rows if r["kind"] == kind]
    assert len(chosen) >= 5, f"the fixture holds only {len(chosen)} {kind} cases"
    return chosen


def test_manifest_rows_and_dataset_json(phantom):
    root, rows, meta = phantom
    assert [r["id"] for r in rows] == [f"case_{i:05d}" for i in range(60)]
    for i, row in enumerate(rows):
        assert row["split"] == split_and_position(i)[0]
        assert set(row) == ROW_KEYS
        for lesion in row["lesions"]:
            assert set(lesion) == LESION_KEYS
            x0, y0, x1, y1 = lesion["bbox"]
            assert 0 <= x0 <= x1 < 256 and 0 <= y0 <= y1 < 256
            assert lesion["area_px"] <= (x1 - x0 + 1) * (y1 - y0 + 1)
            assert lesion["size_mm"] == pytest.approx(lesion["size_px"] * 350 / 256, abs=0.06)
    splits = [r["split"] for r in rows]
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (42, 6, 12)
    assert meta["augment_flip"] is False and "heart" in meta["augment_flip_reason"]
    assert meta["mm_per_px"] == pytest.approx(350 / 256) and meta["size"] == 256


def test_mask_holds_exactly_the_target_lesions(phantom):
    root, rows, _ = phantom
    for row in rows:
        mask = _mask(root, row)
        targets = _targets(row)
        assert mask.sum() == sum(t["area_px"] for t in targets), row["id"]
        inside = np.zeros_like(mask)
        for t in targets:
            x0, y0, x1, y1 = t["bbox"]
            inside[y0:y1 + 1, x0:x1 + 1] = True
            assert mask[y0:y1 + 1, x0:x1 + 1].any()
        assert not (mask & ~inside).any(), row["id"]
        assert (row["kind"] == "negative") == (not targets) == ("negative" in row["tags"])


def test_every_split_holds_each_subset_at_one_sixth():
    counts = {s: {k: 0 for k in KINDS} for s in ("train", "val", "test")}
    phrasings = {"known": 0, "new": 0}
    for i in range(600):
        split, kind, phrasing = case_kind(i, seed=0)
        counts[split][kind] += 1
        if split == "test":
            phrasings[phrasing] += 1
        else:
            assert phrasing == "known"
    for split, total in (("train", 420), ("val", 60), ("test", 120)):
        for kind in ("by_location", "by_texture", "by_shape"):
            assert 0.15 <= counts[split][kind] / total <= 0.2, (split, kind)
        assert counts[split]["negative"] / total == pytest.approx(0.1)
    assert phrasings == {"known": 60, "new": 60}


def test_by_location_cases_differ_only_in_location(phantom):
    _, rows, _ = phantom
    for row in _kind(rows, "by_location"):
        lesions = _look_alikes(row)
        target = _targets(row)
        assert len(target) == 1 and len(lesions) >= 2
        assert len({(l["texture"], l["shape"]) for l in lesions}) == 1
        assert len({(l["side"], l["zone"]) for l in lesions}) == len(lesions)
        sizes = [l["size_px"] for l in lesions]
        assert max(sizes) / min(sizes) <= 1.1 / 0.9 + 1e-6
        assert _no_size(row["report"]), row["report"]
        if row["phrasing"] == "known":
            (finding,) = _positive(row["report"])
            assert finding.location.side == target[0]["side"]
            assert finding.location.zones == [target[0]["zone"]]


def test_by_texture_cases_differ_only_in_texture(phantom):
    _, rows, _ = phantom
    for row in _kind(rows, "by_texture"):
        (target,) = _targets(row)
        same_cell = _same_cell(row, target)
        assert len(same_cell) >= 2 and len({l["texture"] for l in same_cell}) == len(same_cell)
        assert len({l["shape"] for l in same_cell}) == 1
        sizes = [l["size_px"] for l in same_cell]
        assert max(sizes) / min(sizes) <= 1.1 / 0.9 + 1e-6
        assert target["words"]["texture"] in row["report"].lower()
        assert _no_size(row["report"]), row["report"]
        other_words = {w for bank in (KNOWN, NEW) for code, words in bank["texture"].items()
                       if code != target["texture"] for w in words}
        other_words -= set(target["words"]["texture"].split())
        pattern = r"(?<![\w-]){}(?![\w-])"
        found = [w for w in other_words
                 if re.search(pattern.format(re.escape(w)), row["report"], re.IGNORECASE)]
        assert not found, row["report"]
        if row["phrasing"] == "known":
            (finding,) = _positive(row["report"])
            assert finding.texture == [target["texture"]]
            assert finding.location.side == target["side"]
            assert finding.location.zones == [target["zone"]]


def test_by_shape_cases_differ_only_in_shape(phantom):
    _, rows, _ = phantom
    for row in _kind(rows, "by_shape"):
        (target,) = _targets(row)
        same_cell = _same_cell(row, target)
        assert len(same_cell) == 2 and len({l["texture"] for l in same_cell}) == 1
        assert {l["shape"] for l in same_cell} <= {"round", "lobulated", "spiculated"}
        assert len({l["shape"] for l in same_cell}) == 2
        assert min(l["size_px"] for l in same_cell) >= 12
        assert _no_size(row["report"]), row["report"]
        assert target["words"]["shape"] in row["report"].lower()
        if row["phrasing"] == "known":
            (finding,) = _positive(row["report"])
            other = next(l["shape"] for l in same_cell if not l["described"])
            assert target["shape"] in finding.shape and other not in finding.shape
            assert finding.texture == [target["texture"]]
            assert finding.location.zones == [target["zone"]]


def test_shape_shown_marks_the_lesions_whose_image_shows_their_rated_shape(phantom):
    _, rows, _ = phantom
    shown = hidden = 0
    for row in rows:
        for lesion in row["lesions"]:
            if row["kind"] == "by_shape" and lesion in _look_alikes(row):
                assert lesion["shape_shown"] is True, lesion  # built to show it
            if lesion["shape_shown"]:
                shown += 1
                assert lesion["shape"] in ("round", "lobulated", "spiculated")
                assert lesion["size_px"] >= 13 and lesion["texture"] != "ground_glass"
            else:
                hidden += 1
    assert shown and hidden > shown  # most rated shapes are drawn too small or soft to show


def test_shape_shown_follows_outline_size_and_edges():
    from medseg_r.data.phantom.render import Lesion

    def lesion(**kw):
        base = dict(mask=np.zeros((256, 256), bool), side="right", zone="upper", texture="solid",
                    shape="spiculated", ill_defined=False, size_px=20.0, density=1.0,
                    annotation_id=1, outline_shape="spiculated")
        return Lesion(**{**base, **kw})

    assert lesion().shape_shown
    assert not lesion(outline_shape=None).shape_shown  # the outline does not show it
    assert not lesion(outline_shape="round").shape_shown
    assert not lesion(size_px=10.0).shape_shown  # too small
    assert lesion(size_px=26.0, mask=np.zeros((512, 512), bool)).shape_shown
    assert not lesion(size_px=20.0, mask=np.zeros((512, 512), bool)).shape_shown  # 10 px at 256
    assert not lesion(texture="ground_glass").shape_shown  # hazy edges
    assert not lesion(ill_defined=True).shape_shown
    assert lesion(ill_defined=True, texture="calcified").shape_shown  # calcified: always sharp


def test_distractors_are_what_a_report_omits_or_names_as_not_the_target(phantom):
    _, rows, _ = phantom
    roles = set()
    for row in rows:
        for lesion in row["lesions"]:
            roles.add(lesion["role"])
            if lesion["role"] == "omitted":
                assert lesion["texture"] == "calcified" and lesion["size_mm"] <= 5.5
                assert lesion["sentence"] is None
            elif lesion["role"] == "mentioned":
                assert lesion["sentence"] in row["report"]
                assert _positive(lesion["sentence"]) == [], lesion["sentence"]
        if row["phrasing"] == "known":
            assert len(_positive(row["report"])) == len(_targets(row)), row["report"]
        has_distractor = any(not lesion["described"] for lesion in row["lesions"])
        assert ("distractor" in row["tags"]) == has_distractor
    assert roles == {"target", "mentioned", "omitted"}


def test_textures_keep_their_look(phantom):
    _, rows, _ = phantom
    contrast = {}
    for row in rows:
        for lesion in row["lesions"]:
            if lesion["size_mm"] >= 8:
                contrast.setdefault(lesion["texture"], []).append(lesion["contrast"])
    median = {t: float(np.median(v)) for t, v in contrast.items()}
    assert median["calcified"] > 1.2 * median["solid"], median
    assert median["solid"] > 1.5 * median["ground_glass"], median


def test_generation_is_deterministic_and_works_at_64_px(tmp_path):
    for name in ("a", "b"):
        make_phantom(str(tmp_path / name), n=10, seed=5, size=64, progress=False)
    for path in ("manifest.jsonl", "images/case_00007.png", "masks/case_00009.png"):
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()
    lines = (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert _mask(tmp_path / "a", row).sum() == sum(t["area_px"] for t in _targets(row))


def test_a_finished_generation_is_kept(tmp_path):
    out = str(tmp_path / "p")
    make_phantom(out, n=12, seed=5, size=64, progress=False)
    image = tmp_path / "p" / "images" / "case_00000.png"
    stamp = image.stat().st_mtime_ns
    make_phantom(out, n=12, seed=5, size=64, progress=False)  # same settings: nothing rewritten
    assert image.stat().st_mtime_ns == stamp
    # another seed: refused before a file changes (overwritten one by one under the old manifest, an
    # interrupted run left a mix of two generations that passed for a finished one)
    with pytest.raises(ValueError, match="holds a phantom of --n 12 --seed 5 --size 64"):
        make_phantom(out, n=12, seed=6, size=64, progress=False)
    assert image.stat().st_mtime_ns == stamp


def test_missing_case_files_are_drawn_again_and_an_interrupted_others_files_removed(tmp_path):
    """make-data trusted its manifest: a deleted mask stayed missing ('12 of 12 cases'), and a
    generation of other settings interrupted before its dataset.json left its extra case images
    beside the new ones."""
    out = tmp_path / "p"
    make_phantom(str(out), n=12, seed=5, size=64, progress=False)
    mask = out / "masks" / "case_00001.png"
    kept = out / "images" / "case_00000.png"
    wanted, stamp = mask.read_bytes(), kept.stat().st_mtime_ns
    mask.unlink()
    make_phantom(str(out), n=12, seed=5, size=64, progress=False)
    assert mask.read_bytes() == wanted and kept.stat().st_mtime_ns == stamp  # only the missing case
    stale = tmp_path / "q"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "case_00030.png").write_bytes(kept.read_bytes())  # killed: no dataset.json
    make_phantom(str(stale), n=12, seed=5, size=64, progress=False)
    assert not (stale / "images" / "case_00030.png").exists()
    assert sorted(p.name for p in (stale / "images").iterdir()) == sorted(p.name for p in (out / "images").iterdir())


def test_describes_copy_of_a_phantom_is_not_taken_for_the_phantom(tmp_path):
    # describe --data writes a dataset.json of kind phantom whose images stay in the original folder
    out = tmp_path / "described"
    out.mkdir()
    meta = {"kind": "phantom", "n": 12, "seed": 5, "size": 64, "reports": "described"}
    (out / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="reports that medseg-r describe wrote"):
        make_phantom(str(out), n=12, seed=5, size=64, progress=False)


def test_a_test_split_alone_is_drawn_as_in_a_full_generation(tmp_path):
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    make_phantom(full, n=20, seed=5, size=64, progress=False)
    make_phantom(part, n=20, seed=5, size=64, splits=("test",), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "full" / "manifest.jsonl").read_text().splitlines()]
    part_rows = [json.loads(line) for line in (tmp_path / "part" / "manifest.jsonl").read_text().splitlines()]
    assert part_rows == [r for r in rows if r["split"] == "test"] and len(part_rows) == 4
    for row in part_rows:
        for key in ("image", "mask"):
            assert (tmp_path / "part" / row[key]).read_bytes() == (tmp_path / "full" / row[key]).read_bytes()
    assert not (tmp_path / "part" / "images" / "case_00000.png").exists()  # a train case
    assert json.loads((tmp_path / "part" / "dataset.json").read_text())["splits"] == ["test"]
    test_image = tmp_path / "part" / "images" / "case_00008.png"
    stamp = test_image.stat().st_mtime_ns
    make_phantom(part, n=20, seed=5, size=64, progress=False)  # asked for all: the rest is drawn
    assert (tmp_path / "part" / "manifest.jsonl").read_text() == (tmp_path / "full" / "manifest.jsonl").read_text()
    assert test_image.stat().st_mtime_ns == stamp  # the test cases were kept, not drawn again
    assert json.loads((tmp_path / "part" / "dataset.json").read_text())["splits"] == ["train", "val", "test"]
    stamps = {f: f.stat().st_mtime_ns for f in (tmp_path / "part").rglob("*") if f.is_file()}
    make_phantom(part, n=20, seed=5, size=64, splits=("val",), progress=False)  # held: nothing to do
    assert {f: f.stat().st_mtime_ns for f in (tmp_path / "part").rglob("*") if f.is_file()} == stamps


@pytest.mark.parametrize("splits", [(), ("training",)])
def test_unknown_splits_are_refused(tmp_path, splits):
    with pytest.raises(ValueError, match="splits"):
        make_phantom(str(tmp_path), n=10, seed=5, size=64, splits=splits, progress=False)


def test_a_split_that_gets_no_case_is_refused(tmp_path):
    with pytest.raises(ValueError, match="none of the 1 case"):
        make_phantom(str(tmp_path / "p"), n=1, seed=5, size=64, splits=("test",), progress=False)
    assert not (tmp_path / "p").exists()
