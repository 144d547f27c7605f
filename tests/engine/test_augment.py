"""Training-time augmentation: translation over cached features (no cache miss, features and masks
move alike); warps and re-toning of the image for image localisers."""

import pytest
import torch

from medseg_r.engine.augment import ShiftedFeatures, draw_shift, shift_batch, warp_and_tone


class _Cache:
    """Features = the canvas pooled to 4 x 4 px cells, channels-last; counts lookups by content."""

    def __init__(self):
        self.seen = []

    def features(self, model, canvas, site):
        self.seen.append(canvas.clone())
        pooled = torch.nn.functional.avg_pool2d(canvas, 4)  # [B, 3, H/4, W/4]
        return pooled.permute(0, 2, 3, 1)


def test_shifted_view_reads_the_unshifted_entry_and_shifts_its_features():
    cache = _Cache()
    canvas = torch.rand(2, 3, 32, 32)
    pixels = (8, -4)  # two cells down, one cell left
    shifted = canvas.roll(pixels, dims=(-2, -1))
    got = ShiftedFeatures(cache, pixels).features(None, shifted, "neck")
    assert torch.equal(cache.seen[0], canvas)  # the cache is asked for the original image
    direct = _Cache().features(None, shifted, "neck")
    assert torch.allclose(got, direct, atol=1e-6)  # same as encoding the shifted image
    with pytest.raises(ValueError, match="whole cells"):
        ShiftedFeatures(cache, (2, 0)).features(None, canvas.roll((2, 0), dims=(-2, -1)), "neck")


def test_shift_batch_moves_images_and_masks_and_keeps_the_reports():
    batch = {"image": torch.rand(1, 3, 16, 16), "mask": torch.zeros(1, 1, 16, 16), "report": ["r"]}
    batch["mask"][0, 0, 3, 5] = 1
    out = shift_batch(batch, (4, -4))
    assert out["mask"][0, 0, 7, 1] == 1 and out["mask"].sum() == 1
    assert torch.equal(out["image"], batch["image"].roll((4, -4), dims=(-2, -1)))
    assert out["report"] is batch["report"]
    assert "attributes" not in out
    batch["attributes"] = torch.zeros(1, 2, 16, 16, dtype=torch.long)
    batch["attributes"][0, :, 3, 5] = 7  # lesion labels move with the mask
    assert shift_batch(batch, (4, -4))["attributes"][0, :, 7, 1].tolist() == [7, 7]


def test_draw_shift_is_whole_cells_within_range_and_seeded():
    draws = {draw_shift(torch.Generator().manual_seed(s), 3, 4) for s in range(200)}
    assert all(dy % 4 == 0 and dx % 4 == 0 and abs(dy) <= 12 and abs(dx) <= 12 for dy, dx in draws)
    assert len(draws) > 20
    assert draw_shift(torch.Generator().manual_seed(7), 3, 4) == draw_shift(
        torch.Generator().manual_seed(7), 3, 4)


def _lesion_batch(n=4, size=64):
    batch = {"image": torch.rand(n, 3, size, size) * 0.5, "mask": torch.zeros(n, 1, size, size),
             "attributes": torch.zeros(n, 2, size, size, dtype=torch.long), "report": ["r"] * n}
    batch["mask"][:, :, 20:32, 36:48] = 1
    batch["attributes"][:, 0, 20:32, 36:48] = 3
    batch["attributes"][:, 1, 20:32, 36:48] = 5
    batch["image"][:, :, 20:32, 36:48] = 0.9
    return batch


def test_warp_and_tone_moves_mask_labels_and_image_together():
    batch = _lesion_batch()
    out = warp_and_tone(batch, torch.Generator().manual_seed(3), 1.0)
    assert out["report"] is batch["report"]
    assert out["image"].shape == batch["image"].shape and out["mask"].dtype == batch["mask"].dtype
    assert 0 <= float(out["image"].min()) and float(out["image"].max()) <= 1
    assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    assert out["attributes"].dtype == torch.long
    assert set(out["attributes"].unique().tolist()) <= {0, 3, 5}
    for i in range(4):
        lesion = out["mask"][i, 0] > 0
        area = int(lesion.sum())
        assert 0.6 * 144 < area < 1.5 * 144  # zoom within about 15 % per side
        labelled = out["attributes"][i, 0] == 3
        # the labels and the bright pixels stay on the warped lesion
        assert (lesion & labelled).sum() > 0.8 * area
        assert out["image"][i, 0][lesion].mean() > out["image"][i, 0][~lesion].mean() + 0.2
    assert not torch.equal(out["mask"], batch["mask"])  # the draw really warped


def test_warp_and_tone_is_seeded_and_off_at_zero_strength():
    batch = _lesion_batch()
    first = warp_and_tone(batch, torch.Generator().manual_seed(5), 0.5)
    again = warp_and_tone(batch, torch.Generator().manual_seed(5), 0.5)
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["mask"], again["mask"])
    assert warp_and_tone(batch, torch.Generator().manual_seed(5), 0.0) is batch
