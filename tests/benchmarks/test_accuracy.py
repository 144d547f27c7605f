import pytest

from medseg_r.benchmarks.tables import aggregate, fmt, margins, mean_std


def test_one_seed_has_no_spread_and_prints_the_mean_alone():
    one = mean_std([0.25])
    assert one == {"mean": 0.25, "std": None} and fmt(one) == "0.250"
    two = mean_std([0.2, 0.4, None])  # a missing value (e.g. no small lesion) is left out
    assert two["mean"] == pytest.approx(0.3) and two["std"] == pytest.approx(0.1414, abs=1e-4)
    assert fmt(two) == "0.300±0.141" and fmt(mean_std([])) == "-"


def _seed(dice, by_location):
    subsets = {"by_location": {"dice": by_location, "n": 3}}
    return {"overall": {"dice": dice, "iou": dice / 2, "hd95": 10.0, "small_sensitivity": 0.5},
            "subsets": subsets, "negative_fp_rate": 0.0}


def test_margins_are_per_seed_differences_with_their_median():
    per_seed = {"medseg_r": [_seed(0.6, 0.7), _seed(0.5, 0.6), _seed(0.55, 0.8)],
                "none": [_seed(0.3, 0.2), _seed(0.35, 0.3), _seed(0.4, 0.1)]}
    text = margins(per_seed, ("none", "text_token"), ("overall", "by_location"))
    assert text == ("MedSeg-R - none, Dice per seed: overall +0.300, +0.150, +0.150 (median +0.150); "
                    "by_location +0.500, +0.300, +0.700 (median +0.500)")
    agg = aggregate(per_seed["medseg_r"])
    assert agg["dice_median"] == pytest.approx(0.55) and agg["subset_n"]["by_location"] == 3
