import pytest

from medseg_r.benchmarks.accuracy import _fmt, _mean_std


def test_one_seed_has_no_spread_and_prints_the_mean_alone():
    one = _mean_std([0.25])
    assert one == {"mean": 0.25, "std": None} and _fmt(one) == "0.250"
    two = _mean_std([0.2, 0.4, None])  # a missing value (e.g. no small lesion) is left out
    assert two["mean"] == pytest.approx(0.3) and two["std"] == pytest.approx(0.1414, abs=1e-4)
    assert _fmt(two) == "0.300±0.141" and _fmt(_mean_std([])) == "-"
