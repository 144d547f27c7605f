"""Translation augmentation over cached features: no cache miss, features and masks move alike."""

import pytest
import torch

from medseg_r.engine.augment import ShiftedFeatures, draw_shift, shift_batch


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
