import pytest

from medseg_r.benchmarks import hedge


class _Model:
    img_size = 64

    def __init__(self):
        from medseg_r.model.options import ModelOptions

        self.config = ModelOptions()


def test_sweep_scores_the_model_once_per_value_with_that_value_set(monkeypatch):
    seen = []

    def fake_evaluate(model, records, **kwargs):
        seen.append(model.config.box_hedge)
        dice = 0.5 + model.config.box_hedge / 10
        return {"overall": {"dice": dice, "hd95": 12.0},
                "subsets": {"by_shape": {"dice": dice}, "small": {"dice": None}}}

    monkeypatch.setattr(hedge, "evaluate", fake_evaluate)
    model = _Model()
    rows = hedge.sweep(model, ["case"], root="r", values=[0.0, 0.2])
    assert seen == [0.0, 0.2] and model.config.box_hedge == 0.7  # the model's own value is back
    rows = hedge.sweep(model, ["case"], root="r", values=[0.0, 0.7])
    assert [r["dice"] for r in rows] == pytest.approx([0.5, 0.57])
    table = hedge.render(rows, subsets=("small", "by_shape"))
    assert table.splitlines()[3] == "| 0.7 | 0.570 | 12.0 | - | 0.570 |"


def test_values_outside_zero_one_are_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exc:
        hedge.main(["run.ckpt", "--data", "d", "--values", "0.5", "1.5"])
    assert exc.value.code == 2 and "box_hedge values must be in [0, 1]" in capsys.readouterr().err
