"""The shape-visibility probe: crops, which lesions each label set trains on, the by_shape pairs,
the told-apart criterion, and the command end to end on a small phantom."""

import numpy as np
import pytest
import torch

from medseg_r.benchmarks import shape_visibility as sv


@pytest.fixture(scope="module")
def rows(phantom_256):
    return phantom_256, sv.read_rows(str(phantom_256))


def test_crop_is_centred_on_the_box_and_padded_at_the_edge():
    image = np.zeros((64, 64), np.float32)
    image[30:35, 40:45] = 1.0  # box (40, 30, 44, 34): centre (42, 32)
    window = sv.crop(image, (40, 30, 44, 34), size=16)
    assert window.shape == (16, 16)
    ys, xs = np.nonzero(window > window.mean())
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (6, 10, 6, 10)
    moved = sv.crop(image, (40, 30, 44, 34), size=16, shift=(2, 0))
    assert np.nonzero(moved > moved.mean())[1].min() == 4
    corner = sv.crop(image, (0, 0, 1, 1), size=16)  # beyond the image: edge values
    assert corner.shape == (16, 16) and np.isfinite(corner).all()


def test_shown_labels_are_a_subset_of_the_rated_ones(rows):
    _, data = rows
    rated, shown = sv.training_items(data, "rated"), sv.training_items(data, "shown")
    assert shown and len(shown) < len(rated)
    assert all(lesion in [r for _, r in rated] for _, lesion in shown)
    assert all(lesion["shape_shown"] and lesion["size_px"] >= 13 for _, lesion in shown)
    with pytest.raises(ValueError, match="labels"):
        sv.training_items(data, "all")


def test_pairs_share_side_zone_and_texture_and_differ_in_shape(rows):
    _, data = rows
    pairs = sv.shape_pairs(data, split="train")  # this small generation's test split has none
    assert len(pairs) == sum(r["split"] == "train" and r["kind"] == "by_shape" for r in data)
    for _, target, other in pairs:
        assert target["role"] == "target" and other["role"] == "mentioned"
        assert (target["side"], target["zone"], target["texture"]) == \
            (other["side"], other["zone"], other["texture"])
        assert target["shape"] != other["shape"]


class _Fixed(torch.nn.Module):
    """A 'classifier' that reads the crop's centre brightness: bright -> shape 0, dark -> shape 1,
    shape 2 never (probability 0)."""

    def forward(self, x):
        centre = x[:, 0, sv.CROP // 2, sv.CROP // 2]
        return torch.stack([centre * 10, -centre * 10, torch.full_like(centre, -1000.0)], 1)


def test_told_apart_needs_both_directions():
    image = np.zeros((128, 128), np.float32)
    image[20:30, 20:30] = 1.0  # target: bright -> "round"
    target = {"bbox": [20, 20, 29, 29], "shape": "round"}
    other = {"bbox": [80, 80, 89, 89], "shape": "spiculated"}  # dark -> "spiculated"
    images = {"im": image}.__getitem__
    shapes = ["round", "spiculated", "oval"]
    assert sv.told_apart(_Fixed(), shapes, [("im", target, other)], images) == 1.0
    swapped = ({**target, "shape": "spiculated"}, {**other, "shape": "round"})
    assert sv.told_apart(_Fixed(), shapes, [("im", *swapped)], images) == 0.0
    assert sv.told_apart(_Fixed(), ["round"], [("im", target, other)], images) is None
    oval = {**other, "shape": "oval"}  # the target's code is likelier at the target, but "oval"
    # (never predicted) is not likelier at the look-alike: one direction only
    assert sv.told_apart(_Fixed(), ["round", "spiculated", "oval"], [("im", target, oval)],
                         images) == 0.0


def test_the_command_trains_both_label_sets_and_writes_the_table(rows, tmp_path, capsys):
    folder, _ = rows
    out = tmp_path / "shape.md"
    assert sv.main([str(folder), "--epochs", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| rated |" in text and "| shown |" in text
    assert text.strip() in capsys.readouterr().out
    with pytest.raises(SystemExit):
        sv.main([str(folder), "--epochs", "0"])
