import numpy as np
import pytest

from medseg_r.describe.measures import (canonical_section, largest_section, measure_size,
                                        shape_features)

from .conftest import disc_mask, star_mask


def test_row_of_pixels_measures_its_length():
    mask = np.zeros((20, 30), bool)
    mask[5, 3:15] = True
    size = measure_size(mask)
    assert size.longest == pytest.approx(12.0)
    assert size.short_axis == pytest.approx(1.0)
    assert size.unit == "px" and size.voxels == 12


def test_spacing_scales_each_axis():
    mask = np.zeros((40, 40), bool)
    mask[10:14, 5:25] = True  # 4 rows x 20 columns
    size = measure_size(mask, (2.0, 0.5))  # rows 2 mm, columns 0.5 mm: an 8 x 10 mm block
    assert size.longest == pytest.approx(np.hypot(8.0, 10.0), abs=0.2)  # its diagonal
    assert size.short_axis == pytest.approx(8 * 12.806 / 10, abs=0.8)  # chord across the diagonal
    assert size.area == pytest.approx(80 * 1.0)
    tall = measure_size(mask.T, (0.5, 2.0))  # the same block, transposed grid and spacing
    assert tall.longest == pytest.approx(size.longest) and tall.area == size.area
    assert size.unit == "mm"


def test_disc_diameter_and_volume():
    disc = disc_mask((64, 64), (32, 32), 10)
    assert measure_size(disc).longest == pytest.approx(21.0, abs=1.0)
    volume = np.zeros((30, 30, 10), bool)
    volume[5:25, 10:20, 2:6] = True  # 20 x 10 voxels on 4 slices
    size = measure_size(volume, (0.5, 0.5, 2.0))
    assert size.longest == pytest.approx(np.hypot(19, 9) * 0.5 + 0.5 * (19 + 9) / np.hypot(19, 9),
                                         abs=0.05)
    assert size.volume_ml == pytest.approx(800 * 0.5 * 0.5 * 2.0 / 1000)
    assert size.longest_3d > size.longest
    assert largest_section(volume).shape == (30, 30)


def test_empty_mask_cannot_be_measured():
    with pytest.raises(ValueError, match="empty"):
        measure_size(np.zeros((5, 5), bool))


def test_disc_is_circular_and_star_is_not():
    disc = shape_features(disc_mask((80, 80), (40, 40), 25))
    star = shape_features(star_mask((80, 80), (40, 40), 12, 12, 35))
    assert disc["circularity"] > 0.85 and disc["solidity"] > 0.97 and disc["elongation"] > 0.95
    assert star["solidity"] < 0.8 and star["circularity"] < 0.5
    assert star["spectrum_mid"] + star["spectrum_high"] > 5 * (disc["spectrum_mid"]
                                                              + disc["spectrum_high"])


def test_measures_do_not_depend_on_pixel_size():
    small = shape_features(star_mask((60, 60), (30, 30), 7, 10, 20))
    large = shape_features(star_mask((240, 240), (120, 120), 7, 40, 80))
    for name in ("circularity", "solidity", "elongation"):
        assert small[name] == pytest.approx(large[name], abs=0.06), name
    section = canonical_section(disc_mask((30, 30), (15, 15), 5))
    assert 2 * np.sqrt(section.sum() / np.pi) == pytest.approx(40.0, rel=0.1)
