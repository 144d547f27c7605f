import numpy as np
import pytest

from medseg_r.inference.postprocess import fill_holes, keep_largest
from medseg_r.inference.stats import finding_statistics
from medseg_r.report import parse_report


def test_keep_largest_and_fill_holes():
    mask = np.zeros((20, 20), bool)
    mask[2:10, 2:10] = True
    mask[5, 5] = False  # a hole
    mask[15:17, 15:17] = True  # a small second component
    assert keep_largest(mask).sum() == 63 and not keep_largest(mask)[16, 16]
    assert keep_largest(mask, 2).sum() == 67
    assert fill_holes(mask)[5, 5] and fill_holes(np.stack([mask] * 3, axis=-1), slice_axis=-1)[5, 5, 1]
    with pytest.raises(ValueError):
        keep_largest(mask, 0)


def test_a_volume_is_filled_in_its_axial_slices():
    """The predictor's volumes are ``[Z, H, W]``: a ring drawn on one axial slice is filled there (the
    other axes' planes cut the ring into lines, which enclose nothing)."""
    ring = np.zeros((5, 32, 32), bool)
    ring[2, 8:24, 8:24] = True
    ring[2, 10:22, 10:22] = False
    filled = fill_holes(ring)
    assert filled[2, 10:22, 10:22].all() and filled.sum() == 16 * 16
    assert fill_holes(ring, slice_axis=-1).sum() == ring.sum()  # sagittal planes: nothing enclosed


def test_components_are_assigned_to_the_finding_whose_side_covers_them():
    """Radiological display: the patient's right lung is on the image's left."""
    report = parse_report("Nodule in the right lung. Mass in the left lung. No effusion.")
    mask = np.zeros((100, 100), bool)
    mask[40:44, 20:24] = True  # image left = patient's right
    mask[50:60, 70:80] = True  # image right = patient's left
    prob = mask * 0.9
    stats = finding_statistics(mask, prob, report, spacing=(0.5, 0.5))
    right, left = stats["findings"]
    assert right["location"]["side"] == "right" and right["area_px"] == 16 and right["area_mm2"] == 4.0
    assert left["area_px"] == 100 and left["mean_probability"] == pytest.approx(0.9)
    assert stats["total"]["components"] == 2 and stats["unassigned"]["components"] == 0


def test_volume_statistics_use_cranio_caudal_zones_and_ml():
    report = parse_report("Nodule in the right upper lobe. Nodule in the right lower lobe.")
    stack = np.zeros((10, 50, 50), bool)
    stack[8, 20:25, 10:15] = True  # cranial slice
    stack[1, 20:30, 10:20] = True  # caudal slice
    stats = finding_statistics(stack, stack * 1.0, report, spacing=(1.0, 1.0), slice_mm=2.0)
    upper, lower = stats["findings"]
    assert upper["voxels"] == 25 and lower["voxels"] == 100
    assert lower["volume_ml"] == pytest.approx(0.2)


def test_a_single_slice_has_an_area_not_an_invented_volume():
    report = parse_report("Nodule in the right upper lobe.")
    one = np.zeros((1, 20, 20), bool)
    one[0, 5:9, 5:9] = True
    stats = finding_statistics(one, one * 1.0, report, spacing=(0.5, 0.5), slice_mm=None)
    assert stats["total"]["voxels"] == 16 and stats["total"]["area_mm2"] == 4.0 and "volume_ml" not in stats["total"]


def test_a_mask_placed_by_the_users_prompt_is_credited_only_where_the_finding_lies():
    report = parse_report("Mass in the left lower lobe.")
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:30] = True  # image upper left: the patient's right upper zone
    mask[75:85, 70:80] = True  # image lower right: the patient's left lower zone
    plain = finding_statistics(mask, mask * 1.0, report)
    assert plain["findings"][0]["area_px"] == 500  # one finding, no prompt: every component is its own
    prompted = finding_statistics(mask, mask * 1.0, report, prompted=True)
    assert prompted["findings"][0]["area_px"] == 100 and prompted["unassigned"]["area_px"] == 400
