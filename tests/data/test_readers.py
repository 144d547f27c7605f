"""Every data set format, from tiny fixture files the tests write themselves."""
import csv
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from medseg_r.data.datasets import SegmentationDataset, collate
from medseg_r.data.readers import read_dataset


def _png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def _box_in_canvas(mask, size):
    """Bounding box (y0, y1, x0, x1) of a mask tensor ``[1, S, S]``."""
    ys, xs = np.nonzero(mask[0].numpy())
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def _assert_case_mask(mask, i, size=32, w=60):
    """The fixture box (rows 5+i..15+i, columns 10..20 of a 60 px wide image) where the resize puts it."""
    scale = size / w
    y0, y1, x0, x1 = _box_in_canvas(mask, size)
    for got, want in ((y0, (5 + i) * scale), (y1, (15 + i) * scale), (x0, 10 * scale), (x1, 20 * scale)):
        assert abs(got - want) <= 1.0, (got, want)
    assert set(torch.unique(mask).tolist()) == {0.0, 1.0}


def _case(i, h=40, w=60):
    img = np.full((h, w), 40, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[5 + i:15 + i, 10:20] = 255
    img[mask > 0] = 200
    return img, mask


def test_jsonl_manifest_with_splits_and_tags(tmp_path):
    rows = []
    for i, split in enumerate(["train", "train", "test"]):
        img, mask = _case(i)
        _png(tmp_path / "img" / f"{i}.png", img)
        _png(tmp_path / "msk" / f"{i}.png", mask)
        rows.append({"image": f"img/{i}.png", "mask": f"msk/{i}.png", "report": "nodule in the left upper lobe",
                     "split": split, "tags": ["small"]})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    train, root = read_dataset(str(tmp_path / "m.jsonl"), split="train")
    assert [r.id for r in train] == ["0", "1"] and train[0].tags == ["small"]
    sample = SegmentationDataset(train, root=root, size=64)[0]
    assert sample["image"].shape == (3, 64, 64) and sample["mask"].shape == (1, 64, 64)
    assert sample["mask"][0, 40:].sum() == 0  # 40x60 resized to 43x64, padded at the bottom
    batch = collate([SegmentationDataset(train, root=root, size=64)[i] for i in range(2)])
    assert batch["image"].shape == (2, 3, 64, 64) and len(batch["report"]) == 2


def test_csv_manifest(tmp_path):
    img, mask = _case(0)
    _png(tmp_path / "a.png", img)
    _png(tmp_path / "a_mask.png", mask)
    with open(tmp_path / "m.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["image", "mask", "report", "split", "target"])
        w.writerow(["a.png", "a_mask.png", "round nodule", "val", "nodule"])
    records, root = read_dataset(str(tmp_path / "m.csv"))
    assert records[0].target == "nodule" and records[0].split == "val"
    _assert_case_mask(SegmentationDataset(records, root=root, size=32)[0]["mask"], 0)


def test_manifest_missing_column_is_a_clear_error(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.png", "report": "x"}))
    with pytest.raises(ValueError, match="row 1: missing mask"):
        read_dataset(str(tmp_path / "m.jsonl"))


@pytest.mark.parametrize("table", ["xlsx", "csv"])
def test_lvit_layout_with_mask_prefix(tmp_path, table):
    import pandas as pd

    for i in range(2):
        img, mask = _case(i)
        _png(tmp_path / "img" / f"covid_{i}.png", img)
        _png(tmp_path / "labelcol" / f"mask_covid_{i}.png", mask)
    frame = pd.DataFrame({"Image": ["mask_covid_0.png", "mask_covid_1.png"],
                          "Description": ["Bilateral pulmonary infection, two infected areas, upper left lung and "
                                          "upper right lung.", "Unilateral pulmonary infection, one infected area, "
                                                               "lower left lung."]})
    if table == "xlsx":
        pytest.importorskip("openpyxl")
        frame.to_excel(tmp_path / "Train_text.xlsx", index=False)
    else:
        frame.to_csv(tmp_path / "Train_text.csv", index=False)
    records, root = read_dataset(str(tmp_path), split="train")
    assert [r.id for r in records] == ["covid_0", "covid_1"]
    assert records[1].report.startswith("Unilateral")
    _assert_case_mask(SegmentationDataset(records, root=root, size=32)[1]["mask"], 1)


def test_medvlsm_json_prompt_choice(tmp_path):
    img, mask = _case(0)
    _png(tmp_path / "images" / "p1.jpg", np.stack([img] * 3, -1))
    _png(tmp_path / "masks" / "p1.png", mask)
    ann = [{"img_name": "p1.jpg", "mask_name": "p1.png",
            "prompts": {"p0": "polyp", "p5": "one small pink round polyp, located in center of the image"}}]
    (tmp_path / "train.json").write_text(json.dumps(ann))
    records, _ = read_dataset(str(tmp_path / "train.json"), prompt="p5")
    assert records[0].report.startswith("one small pink")
    with pytest.raises(ValueError, match="no prompt 'p9'"):
        read_dataset(str(tmp_path / "train.json"), prompt="p9")


def test_unknown_format_and_missing_path(tmp_path):
    (tmp_path / "data.parquet").write_text("x")
    with pytest.raises(ValueError, match="no reader"):
        read_dataset(str(tmp_path / "data.parquet"))
    with pytest.raises(FileNotFoundError):
        read_dataset(str(tmp_path / "nowhere.jsonl"))


def test_mismatched_mask_is_a_clear_error(tmp_path):
    img, _ = _case(0)
    _png(tmp_path / "a.png", img)
    _png(tmp_path / "b.png", np.zeros((10, 10), np.uint8))
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.png", "mask": "b.png", "report": "x"}))
    records, root = read_dataset(str(tmp_path / "m.jsonl"))
    with pytest.raises(ValueError, match="does not match"):
        SegmentationDataset(records, root=root, size=32)[0]


def test_flip_augmentation_swaps_sides_in_the_report(tmp_path):
    img, mask = _case(0)
    _png(tmp_path / "a.png", img)
    _png(tmp_path / "a_m.png", mask)
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.png", "mask": "a_m.png",
                                                  "report": "nodule in the right upper lobe; polyp in upper left of the image"}))
    records, root = read_dataset(str(tmp_path / "m.jsonl"))
    ds = SegmentationDataset(records, root=root, size=64, augment=True, seed=0)
    plain = SegmentationDataset(records, root=root, size=64)[0]
    flips = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        sample = ds[0]
        flipped = ds.flipped(0)
        flips.append(flipped)
        sides = [f.location.side for f in sample["report"].findings]
        regions = [f.location.image_region for f in sample["report"].findings]
        if flipped:
            assert torch.equal(sample["image"], plain["image"].flip(-1))
            assert torch.equal(sample["mask"], plain["mask"].flip(-1))
            assert sides[0] == "left" and regions[1] == "top_right"
            # the text follows the flip too (a baseline that reads only the text is told the truth)
            assert sample["report"].text == "nodule in the left upper lobe; polyp in upper right of the image"
        else:
            assert torch.equal(sample["image"], plain["image"]) and sides[0] == "right" and regions[1] == "top_left"
    assert any(flips) and not all(flips)
    assert plain["report"].findings[0].location.side == "right"  # the cached report was not mutated


def test_reports_that_cannot_be_mirrored_are_never_flipped(tmp_path):
    img, mask = _case(0)
    _png(tmp_path / "a.png", img)
    _png(tmp_path / "a_m.png", mask)
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.png", "mask": "a_m.png",
                                                  "report": "Hypodense lesion in the right hepatic lobe."}))
    records, root = read_dataset(str(tmp_path / "m.jsonl"))
    ds = SegmentationDataset(records, root=root, size=64, augment=True, seed=0)
    plain = SegmentationDataset(records, root=root, size=64)[0]
    for epoch in range(6):
        ds.set_epoch(epoch)
        sample = ds[0]
        assert torch.equal(sample["image"], plain["image"])  # a mirrored liver is impossible anatomy
        assert sample["report"].findings[0].location.side == "right"


def test_a_data_set_can_forbid_flips(tmp_path):
    from medseg_r.data.datasets import flip_allowed

    assert flip_allowed(str(tmp_path)) is True  # no dataset.json: allowed
    (tmp_path / "dataset.json").write_text(json.dumps({"augment_flip": False}))
    assert flip_allowed(str(tmp_path)) is False


def test_lesion_labels_are_resized_and_flipped_with_the_mask(tmp_path):
    from medseg_r.report.schema import SHAPE_CODES, TEXTURE_CODES

    rows = []
    for i in range(2):
        img, mask = _case(i)
        _png(tmp_path / "img" / f"{i}.png", img)
        _png(tmp_path / "msk" / f"{i}.png", mask)
        lesion = {"bbox": [10, 5 + i, 19, 14 + i], "texture": "calcified", "shape": "lobulated"}
        rows.append({"image": f"img/{i}.png", "mask": f"msk/{i}.png", "split": "train",
                     "report": "nodule in the right upper lobe", "lesions": [lesion] if i == 0 else []})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    records, root = read_dataset(str(tmp_path / "m.jsonl"), split="train")
    assert records[0].lesions[0]["texture"] == "calcified" and records[1].lesions == []
    plain = SegmentationDataset(records, root=root, size=32)
    flipping = SegmentationDataset(records, root=root, size=32, augment=True)
    seed = next(s for s in range(50) if SegmentationDataset(records, root=root, size=32, augment=True,
                                                             seed=s).flipped(0))
    flipping.seed = seed
    for dataset, flipped in ((plain, False), (flipping, True)):
        sample = dataset[0]
        labels, mask = sample["attributes"], sample["mask"][0] > 0.5
        assert labels.shape == (2, 32, 32) and labels.dtype == torch.long
        assert torch.equal(labels[0] > 0, mask) and torch.equal(labels[1] > 0, mask)
        assert set(labels[0].unique().tolist()) == {0, TEXTURE_CODES.index("calcified") + 1}
        assert set(labels[1].unique().tolist()) == {0, SHAPE_CODES.index("lobulated") + 1}
        assert (sample["report"].findings[0].location.side == "left") == flipped
    assert int(plain[1]["attributes"].sum()) == 0  # a record without lesions: no label
    batch = collate([plain[0], plain[1]])
    assert batch["attributes"].shape == (2, 2, 32, 32)


@pytest.mark.parametrize("item, message", [
    ({"image": "k0.png", "mask_name": "k0.png", "prompts": {"p0": "x"}}, "item 0: no img_name"),
    ({"img_name": "k0.png", "prompts": {"p0": "x"}}, "item 0: no mask_name"),
    ("k0.png", "item 0: expected an object"),
])
def test_a_medvlsm_item_without_its_names_is_one_clear_error(tmp_path, item, message):
    import json

    from medseg_r.data.readers import read_dataset

    (tmp_path / "d.json").write_text(json.dumps([item]))
    with pytest.raises(ValueError, match=message):
        read_dataset(str(tmp_path / "d.json"))


def test_dataset_options_a_reader_does_not_take_are_named(tmp_path):
    import json

    from medseg_r.data.readers import dataset_option_names, read_dataset

    (tmp_path / "d.json").write_text(json.dumps([{"img_name": "a.png", "mask_name": "a.png",
                                                  "prompts": {"p0": "x", "p5": "y"}}]))
    assert dataset_option_names(str(tmp_path / "d.json")) == ["prompt"]
    with pytest.raises(ValueError, match=r"dataset option\(s\) promt do not apply to .*d.json "
                                         r"\(it reads prompt\)"):
        read_dataset(str(tmp_path / "d.json"), promt="p5")
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.png", "mask": "a.png", "report": "x"}))
    with pytest.raises(ValueError, match=r"window do not apply .* \(it reads no options\)"):
        read_dataset(str(tmp_path / "m.jsonl"), window=[0, 100])


@pytest.mark.parametrize("options, message", [
    ({"window": "abc"}, "window \\[level, width\\] must be two numbers"),
    ({"window": [1]}, "window \\[level, width\\] must be two numbers"),
    ({"window": [40, 0]}, "window: the width must be positive"),
    ({"empty_fraction": -1}, "empty_fraction must be a number >= 0"),
    ({"percentiles": [99, 1]}, "percentiles must rise within 0-100"),
])
def test_volume_dataset_options_are_checked_by_name(tmp_path, options, message):
    import json

    from medseg_r.data.readers import read_dataset

    (tmp_path / "cases.jsonl").write_text(json.dumps({"image": "ct.nii.gz", "mask": "m.nii.gz"}))
    with pytest.raises(ValueError, match=f"dataset option {message}"):
        read_dataset(str(tmp_path), **options)


def test_cases_without_a_split_beside_split_ones_are_said_to_be_in_none(tmp_path):
    # a row whose split cell was left blank was dropped from training and evaluation without a word
    from medseg_r.data.readers import DataWarning, split_counts

    rows = []
    for i, split in enumerate(["train", "train", "", "Val "]):
        img, mask = _case(i)
        _png(tmp_path / "img" / f"{i}.png", img)
        _png(tmp_path / "msk" / f"{i}.png", mask)
        rows.append({"image": f"img/{i}.png", "mask": f"msk/{i}.png", "report": "nodule", "split": split})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.warns(DataWarning, match=r"1 case\(s\) name no split \(e.g. 2\): they are in none of the "
                                         r"splits \(train 2, 'Val ' 1, \(no split\) 1\)"):
        train, _ = read_dataset(str(tmp_path / "m.jsonl"), split="train")
    assert [r.id for r in train] == ["0", "1"]
    assert split_counts(read_dataset(str(tmp_path / "m.jsonl"))[0]) == "train 2, 'Val ' 1, (no split) 1"


def test_an_lvit_folder_lists_every_missing_file_and_refuses_two_tables(tmp_path):
    # it stopped at the first missing file, and took the first of two tables by name order
    import pandas as pd

    img, mask = _case(0)
    _png(tmp_path / "img" / "covid_0.png", img)
    _png(tmp_path / "labelcol" / "mask_covid_0.png", mask)
    _png(tmp_path / "img" / "covid_2.png", img)  # its mask is missing
    pd.DataFrame({"Image": ["mask_covid_0.png", "mask_covid_1.png", "mask_covid_2.png"],
                  "Description": ["a", "b", "c"]}).to_csv(tmp_path / "Train_text.csv", index=False)
    with pytest.raises(ValueError, match=r"Train_text.csv: 2 row\(s\) name files that are not there: no image "
                                         r"for mask_covid_1.png in img/; mask mask_covid_2.png not found"):
        read_dataset(str(tmp_path))
    (tmp_path / "~$Train_text.xlsx").write_bytes(b"lock")  # an open spreadsheet's lock file: not a table
    pd.DataFrame({"Image": ["mask_covid_0.png"], "Description": ["a"]}).to_csv(tmp_path / "Val_text.csv",
                                                                               index=False)
    with pytest.raises(ValueError, match=r"2 text tables \(Train_text.csv, Val_text.csv\): an LViT folder "
                                         r"holds one"):
        read_dataset(str(tmp_path))
