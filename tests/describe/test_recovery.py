import pytest

from medseg_r.describe.recovery import evaluate, match


def test_match_uses_boxes_and_takes_each_description_once():
    truth = [{"bbox": [10, 10, 20, 20]}, {"bbox": [40, 40, 50, 52]}, {"bbox": [0, 0, 3, 3]}]
    centres = [(45.0, 44.0), (15.0, 15.2), (16.0, 14.0)]
    assert match(truth, centres) == [1, 0, None]


@pytest.mark.slow
def test_phantom_recovery_on_a_small_test_split(tmp_path):
    from medseg_r.data.phantom import make_phantom

    make_phantom(str(tmp_path / "phantom"), n=100, seed=0, progress=False)
    summary = evaluate(str(tmp_path / "phantom"), split="test")
    assert summary["matched"] == 1.0 and summary["count"] == 1.0
    assert summary["side"] >= 0.95 and summary["side_and_zone"] >= 0.9
    assert summary["size"] >= 0.85
    assert summary["negative_cases_all_negative"] in (None, 1.0)
