"""The shipped files' figures are measured on the benchmark's test split and stored only on --write."""
import torch

from medseg_r.benchmarks import shipped_scores
from medseg_r.model.shipped import FORMAT, shipped_path

SUMMARY = {"overall": {"dice": 0.51234, "iou": 0.41, "hd95": 33.04},
           "subsets": {"by_location": {"dice": 0.49, "n": 3}, "by_shape": {"dice": None, "n": 0}},
           "negative_fp_rate": 0.0}


class _Model:
    options = {"box_hedge": 0.7, "box_flip": True}
    feature_cache = None


def _shipped(directory, name, dice):
    torch.save({"format": FORMAT, "name": name, "metrics": {"dice": dice}, "state_dict": {}},
               shipped_path(name, str(directory)))


def _fake_run(monkeypatch, tmp_path):
    scored = []
    monkeypatch.setattr(shipped_scores, "make_phantom", lambda *a, **k: None)
    monkeypatch.setattr(shipped_scores, "read_dataset", lambda data, split: (["c1", "c2"], "root"))
    monkeypatch.setattr(shipped_scores, "load_shipped", lambda name, directory: (
        _Model(), torch.load(shipped_path(name, directory), weights_only=False)))

    def fake_evaluate(model, records, **kwargs):
        scored.append((records, kwargs["size"], model.feature_cache is not None))
        return SUMMARY

    monkeypatch.setattr(shipped_scores, "evaluate", fake_evaluate)
    return scored


def test_measures_every_shipped_file_and_stores_nothing_without_write(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    _shipped(weights, "a", 0.4)
    _shipped(weights, "b", 0.3)
    scored = _fake_run(monkeypatch, tmp_path)
    assert shipped_scores.main(["--out", str(tmp_path / "bench"), "--directory", str(weights)]) == 0
    assert scored == [(["c1", "c2"], 256, True)] * 2  # each file, the test split, the shared cache
    printed = capsys.readouterr().out
    assert "| a | 0.400 | 0.512 |" in printed and "| b | 0.300 | 0.512 |" in printed
    assert torch.load(shipped_path("a", str(weights)), weights_only=False)["metrics"] == {"dice": 0.4}


def test_write_stores_the_measured_figures(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    _shipped(weights, "a", 0.4)
    _fake_run(monkeypatch, tmp_path)
    shipped_scores.main(["--out", str(tmp_path / "bench"), "--directory", str(weights), "--write",
                         "--n", "10"])
    stored = torch.load(shipped_path("a", str(weights)), weights_only=False)["metrics"]
    assert stored["dice"] == 0.5123 and stored["hd95"] == 33.0 and stored["negative_fp_rate"] == 0.0
    assert stored["subsets"] == {"by_location": 0.49}  # a subset without cases has no figure
    assert stored["test_split"] == ("phantom seed 0 (10 cases), its 2 test cases; "
                                    "the fp16 shipped weights, box_hedge 0.7, box_flip True")


def test_a_folder_without_shipped_files_is_an_error(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        shipped_scores.main(["--out", str(tmp_path), "--directory", str(tmp_path / "none")])
    assert "no shipped weights" in capsys.readouterr().err


def test_a_folder_with_another_generation_is_refused_not_overwritten(tmp_path, monkeypatch, capsys):
    import json

    import pytest

    weights = tmp_path / "weights"
    weights.mkdir()
    _shipped(weights, "a", 0.4)
    _fake_run(monkeypatch, tmp_path)
    data = tmp_path / "bench" / "data"
    data.mkdir(parents=True)
    (data / "dataset.json").write_text(json.dumps({"n": 600, "seed": 0}))
    with pytest.raises(SystemExit):
        shipped_scores.main(["--out", str(tmp_path / "bench"), "--directory", str(weights)])
    assert "not the benchmark's seed 0 with --n 2000" in capsys.readouterr().err
    assert json.loads((data / "dataset.json").read_text()) == {"n": 600, "seed": 0}
