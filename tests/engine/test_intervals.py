import pytest

from medseg_r.engine.intervals import case_dice, margin_interval, seed_mean

HEADER = "id,tags,dice,iou,hd95,false_positive\n"


def _write(path, rows):
    path.write_text(HEADER + "".join(f"{r}\n" for r in rows))
    return str(path)


def test_a_paired_bootstrap_interval_over_the_described_cases(tmp_path):
    a = case_dice(_write(tmp_path / "a.csv", ["c1,small;by_shape,0.9,,,", "c2,small,0.5,,,",
                                               "c3,by_shape,0.7,,,", "neg,negative,,,,0"]))
    b = case_dice(_write(tmp_path / "b.csv", ["c1,small;by_shape,0.6,,,", "c2,small,0.5,,,",
                                               "c3,by_shape,0.4,,,", "neg,negative,,,,1"]))
    assert set(a) == {"c1", "c2", "c3"} and a["c1"] == ({"small", "by_shape"}, 0.9)
    n, (low, high) = margin_interval(a, b, "by_shape")  # both differences 0.3: no spread
    assert n == 2 and low == pytest.approx(0.3) and high == pytest.approx(0.3)
    n, (low, high) = margin_interval(a, b, None)  # 0.3, 0, 0.3: mean 0.2
    assert n == 3 and 0.0 <= low < 0.2 < high <= 0.3 + 1e-9
    assert margin_interval(a, b, "by_texture")[0] == 0


def test_seed_mean_averages_each_case_over_the_runs_that_all_scored_it(tmp_path):
    first = _write(tmp_path / "s0.csv", ["c1,small,0.8,,,", "c2,small,0.2,,,"])
    second = _write(tmp_path / "s1.csv", ["c1,small,0.6,,,"])
    mean = seed_mean([first, second])
    assert set(mean) == {"c1"} and mean["c1"][1] == pytest.approx(0.7)
    assert seed_mean([first, str(tmp_path / "missing.csv")]) is None and seed_mean([]) is None
