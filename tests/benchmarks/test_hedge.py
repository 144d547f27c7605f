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
    assert exc.value.code == 2 and "box_hedge must be in [0, 1], got 1.5" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [("box_region", 1.0, "box_region must be in [0, 1)"),
                                                    ("box_threshold", 0.0, "box_threshold must be in (0, 1)")])
def test_region_and_threshold_values_are_checked_by_the_options_own_rules(option, value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        hedge.main(["run.ckpt", "--data", "d", "--option", option, "--values", "0.5", str(value)])
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("option", ["box_region", "box_threshold"])
def test_region_and_threshold_are_swept_with_their_default_values(option, monkeypatch, capsys):
    seen = []

    def fake_evaluate(model, records, **kwargs):
        seen.append(getattr(model.config, option))
        return {"overall": {"dice": 0.5, "hd95": None}, "subsets": {}}

    monkeypatch.setattr(hedge, "evaluate", fake_evaluate)
    monkeypatch.setattr(hedge, "read_dataset", lambda data, split: (["case"], "r"))
    import medseg_r.model.shipped as shipped
    monkeypatch.setattr(shipped, "load_any", lambda path: (_Model(), None))
    assert hedge.main(["run.ckpt", "--data", "d", "--option", option]) == 0
    assert seen == list(hedge.DEFAULT_VALUES[option])
    assert capsys.readouterr().out.splitlines()[0].startswith(f"| {option} | Dice |")


def test_box_flip_is_swept_as_a_boolean_and_restored(monkeypatch, capsys):
    seen = []

    def fake_evaluate(model, records, **kwargs):
        seen.append(model.config.box_flip)
        return {"overall": {"dice": 0.6 if model.config.box_flip else 0.5, "hd95": None}, "subsets": {}}

    monkeypatch.setattr(hedge, "evaluate", fake_evaluate)
    model = _Model()
    rows = hedge.sweep(model, ["case"], root="r", values=[0.0, 1.0], option="box_flip")
    assert seen == [False, True] and model.config.box_flip is True
    assert hedge.render(rows, subsets=(), option="box_flip").splitlines()[2:] == [
        "| 0 | 0.500 | - |  |", "| 1 | 0.600 | - |  |"]
    with pytest.raises(ValueError, match="option must be one of"):
        hedge.sweep(model, ["case"], root="r", values=[1.0], option="box_margin")
    with pytest.raises(SystemExit):
        hedge.main(["run.ckpt", "--data", "d", "--option", "box_flip", "--values", "0.5"])
    assert "box_flip values must be 0 or 1" in capsys.readouterr().err


def test_a_shipped_name_is_loaded_as_the_shipped_weights(monkeypatch, capsys):
    import medseg_r.model.shipped as shipped

    loaded = []
    monkeypatch.setattr(shipped, "shipped_names", lambda *a, **k: ["litemedsam_phantom_none"])
    monkeypatch.setattr(shipped, "load_shipped", lambda name, **k: (loaded.append(name) or _Model(), {}))
    monkeypatch.setattr(hedge, "read_dataset", lambda data, split: (["case"], "r"))
    monkeypatch.setattr(hedge, "evaluate", lambda model, records, **kwargs: {
        "overall": {"dice": 0.5, "hd95": None}, "subsets": {}})
    assert hedge.main(["litemedsam_phantom_none", "--data", "d", "--option", "box_flip"]) == 0
    assert loaded == ["litemedsam_phantom_none"] and "| 1 | 0.500 |" in capsys.readouterr().out
