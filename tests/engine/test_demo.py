"""The demo and the accuracy benchmark end to end at a tiny size (the figures themselves are not asserted:
at this size nothing is learned; the real runs are documented in README)."""
import json
import os

import pytest

from medseg_r.benchmarks.accuracy import main as accuracy_main
from medseg_r.benchmarks.breakdown import report as breakdown_report
from medseg_r.engine.demo import SHIPPED, run_demo, targets
from medseg_r.model.shipped import shipped_path


@pytest.mark.slow  # 1-2 minutes on 2 cores: CI runs it after the default run
def test_demo_trains_three_models_and_writes_results_table_and_figure(tmp_path, capsys):
    out = str(tmp_path / "demo")
    payload = run_demo(out, n=30, epochs=1, progress=False, train_models=True, precision="32-true")
    results = json.load(open(os.path.join(out, "results.json")))
    assert set(results["models"]) == {"medseg_r", "none", "text_token"}
    params = {name: m["params"]["trainable"] for name, m in results["models"].items()}
    assert len(set(params.values())) == 1  # capacity-matched: the same parameters for all three
    for model in results["models"].values():
        assert set(model["overall"]) >= {"dice", "iou", "hd95"}
        assert {"by_location", "by_texture", "by_shape", "small", "phrasing_new"} <= set(model["subsets"])
        assert "negative_fp_rate" in model
    config = results["config"]
    assert config["backbone"] == "litemedsam" and config["models"] == "trained here"
    assert config["encoded_images"] == 6  # the test images: the localisers train on images alone
    assert results["seconds"] >= sum(m["seconds"] for m in results["models"].values())
    assert os.path.getsize(os.path.join(out, "figure.png")) > 10_000
    printed = capsys.readouterr().out
    assert "trainable parameters" in printed and "Dice [by_texture]" in printed and payload["models"]
    assert len(results["targets"]) == 5 and "Against the targets" in printed
    assert all(len(t["ci95"]) == 2 and t["n"] >= 1 for t in results["targets"] if t["value"] is not None)
    again = run_demo(out, n=30, epochs=1, progress=False, train_models=True, precision="32-true")
    assert again["models"]["medseg_r"]["overall"] == payload["models"]["medseg_r"]["overall"]


@pytest.mark.skipif(any(not os.path.isfile(shipped_path(n)) for n in SHIPPED.values()),
                    reason="the shipped phantom weights are not in this checkout")
def test_demo_evaluates_the_shipped_models_on_fresh_cases(tmp_path, capsys):
    out = str(tmp_path / "demo")
    run_demo(out, n=30, progress=False, precision="32-true")
    results = json.load(open(os.path.join(out, "results.json")))
    config = results["config"]
    assert config["encoded_images"] == 6 and config["seed"] == 1  # test split only, not seed 0
    manifest = open(os.path.join(out, "data", "manifest.jsonl")).read().splitlines()
    assert len(manifest) == config["test_cases"] == 6  # only the test cases are drawn to be scored
    assert config["models"].startswith("shipped") and "phantom" in config["trained_on"]
    assert "shipped weights" in capsys.readouterr().out


def test_demo_refuses_an_unknown_precision(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        run_demo(str(tmp_path / "d"), n=30, precision="fp8")


@pytest.mark.parametrize("held, name", [
    ({"results.json": '{"mine": 1}'}, "a results.json the demo did not write"),
    ({"figure.png": "my figure"}, "a figure.png the demo did not write"),
    ({"notes.txt": "mine"}, "notes.txt"),
    ({"data": "a file, not the demo's data folder"}, "data"),
    ({"eval/medseg_r/summary.json": '{"mine": 1}'}, "eval/medseg_r"),
    ({"eval/notes.txt": "mine"}, "eval/notes.txt"),
])
def test_demo_refuses_a_folder_it_did_not_write_and_leaves_it_as_it_was(tmp_path, held, name):
    out = tmp_path / "d"
    out.mkdir()
    for file, text in held.items():
        (out / file).parent.mkdir(parents=True, exist_ok=True)
        (out / file).write_text(text)
    with pytest.raises(ValueError, match=name):
        run_demo(str(out), n=30, progress=False, precision="32-true")
    assert sorted(os.listdir(out)) == sorted({f.split("/")[0] for f in held})
    assert all((out / file).read_text() == text for file, text in held.items())


def test_an_earlier_demo_s_folder_is_accepted(tmp_path):
    from medseg_r.io.output_folders import check_demo_folder

    out = tmp_path / "d"
    for folder in ("data", "feature_cache", "eval"):
        (out / folder).mkdir(parents=True)
    (out / "figure.png").write_bytes(b"png")
    (out / ".DS_Store").write_bytes(b"a file browser's")
    (out / "eval" / "medseg_r" / "overlays").mkdir(parents=True)  # an earlier demo's scores
    (out / "eval" / "medseg_r" / "summary.json").write_text(json.dumps({"overall": {}, "subsets": {}}))
    check_demo_folder(str(out))  # interrupted before its results.json
    (out / "results.json").write_text(json.dumps({"models": {}, "targets": [], "config": {}}))
    check_demo_folder(str(out))
    check_demo_folder(str(tmp_path / "new"))
    (tmp_path / "empty").mkdir()
    check_demo_folder(str(tmp_path / "empty"))


def test_a_negative_seed_is_refused_before_anything_is_written(tmp_path):
    from medseg_r.data.phantom import make_phantom

    with pytest.raises(ValueError, match="seed must be >= 0"):
        make_phantom(str(tmp_path / "p"), n=5, seed=-1)
    assert not (tmp_path / "p").exists()


def _summary(dice, **subsets):
    return {"overall": {"dice": dice},
            "subsets": {k: {"dice": subsets.get(k)} for k in ("small", "by_location", "by_texture",
                                                            "by_shape")}}


def test_targets_are_margins_checked_against_their_minimum():
    results = {"medseg_r": _summary(0.50, small=0.3, by_location=0.6, by_texture=0.4),
               "none": _summary(0.25), "text_token": _summary(0.4, small=0.25, by_location=0.4,
                                                                by_texture=0.35)}
    rows = {r["what"].split(",")[0]: r for r in targets(results)}
    assert rows["Dice overall"]["value"] == pytest.approx(0.25) and rows["Dice overall"]["met"] is True
    assert rows["Dice [by_location]"]["value"] == pytest.approx(0.2) and rows["Dice [by_location]"]["met"]
    assert rows["Dice [by_texture]"]["value"] == pytest.approx(0.05) and not rows["Dice [by_texture]"]["met"]
    assert rows["Dice [by_shape]"]["value"] is None and rows["Dice [by_shape]"]["met"] is None
    assert targets({"medseg_r": results["medseg_r"]}) == []


def test_targets_carry_each_margin_s_interval_when_given_the_cases(tmp_path):
    both = {"c1": ({"small", "by_shape"}, 0.9), "c3": ({"by_shape"}, 0.7)}
    less = {"c1": ({"small", "by_shape"}, 0.6), "c3": ({"by_shape"}, 0.4)}
    results = {"medseg_r": _summary(0.7, by_shape=0.8), "none": _summary(0.5),
               "text_token": _summary(0.6, by_shape=0.5)}
    rows = {r["what"].split(",")[0]: r for r in targets(results, {"medseg_r": both, "none": less,
                                                                  "text_token": less})}
    assert rows["Dice [by_shape]"]["n"] == 2 and rows["Dice [by_shape]"]["ci95"] == pytest.approx([0.3, 0.3])
    assert "ci95" not in rows["Dice [small]"]  # no margin measured (no subset figure): no interval
    assert "ci95" not in {k for r in targets(results) for k in r}  # without the cases: none


@pytest.mark.slow  # 1-2 minutes on 2 cores: CI runs it after the default run
def test_accuracy_benchmark_rows_oracle_and_zone_box(tmp_path, capsys):
    out = str(tmp_path / "acc")
    assert accuracy_main(["--out", out, "--n", "20", "--extra-n", "20", "--generalisation-n", "10",
                          "--epochs", "1",
                          "--seeds", "0", "1",
                          "--rows", "medseg_r", "litemedsam_oracle_box", "zone_box",
                          "decoder_boxes"]) == 0
    payload = json.load(open(os.path.join(out, "accuracy.json")))
    assert set(payload["rows"]) == {"medseg_r", "litemedsam_oracle_box", "zone_box", "decoder_boxes"}
    rows = payload["rows"]
    # the fine-tuned decoder alone is scored with the reference boxes, as the oracle row
    assert rows["decoder_boxes"]["overall"]["dice"]["mean"] > 0.4
    assert rows["decoder_boxes"]["params"]["trainable"] > 0
    assert rows["medseg_r"]["overall"]["dice"]["std"] is not None and "generalisation_dice" in rows["medseg_r"]
    assert rows["medseg_r"]["train_fit_n"] > 0 and "train_fit_dice" not in rows["zone_box"]
    assert len(rows["medseg_r"]["dice_per_seed"]) == 2 and rows["medseg_r"]["params"]["trainable"] > 0
    # a true box is a strong prompt; a whole lung zone is not
    assert rows["litemedsam_oracle_box"]["overall"]["dice"]["mean"] > 0.4
    assert rows["zone_box"]["overall"]["dice"]["mean"] < rows["litemedsam_oracle_box"]["overall"]["dice"]["mean"]
    assert "| medseg_r |" in capsys.readouterr().out
    tests = [json.loads(line) for line in open(os.path.join(out, "data", "manifest.jsonl"))]
    tests = {r["id"] for r in tests if r["split"] == "test"}
    predictions = os.path.join(out, "runs", "medseg_r_seed1", "eval", "predictions")
    assert {name[:-4] for name in os.listdir(predictions)} == tests  # what the breakdown reads
    text = breakdown_report(out)
    assert "where the mask went" in text and "no saved predictions" not in text


def test_accuracy_benchmark_rejects_an_unknown_row(tmp_path):
    with pytest.raises(SystemExit) as info:
        accuracy_main(["--out", str(tmp_path / "acc"), "--rows", "medseg_r", "unet"])
    assert info.value.code == 2
    assert not (tmp_path / "acc").exists()  # rejected before any data is generated


def test_a_demo_of_another_seed_or_a_users_data_folder_is_refused_before_a_file_changes(tmp_path):
    from medseg_r.data.phantom import make_phantom

    out = tmp_path / "d"
    make_phantom(str(out / "data"), n=30, seed=1, size=64, splits=("test",), progress=False)
    before = {p: p.read_bytes() for p in (out / "data").rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="holds a phantom of --n 30 --seed 1"):
        run_demo(str(out), n=30, seed=2, progress=False, precision="32-true")
    assert {p: p.read_bytes() for p in (out / "data").rglob("*") if p.is_file()} == before
    mine = tmp_path / "mine"
    (mine / "data" / "images").mkdir(parents=True)
    (mine / "data" / "manifest.jsonl").write_text('{"id": "x", "image": "images/case_00008.png"}\n')
    (mine / "data" / "images" / "case_00008.png").write_bytes(b"the user's image")
    (mine / "data" / "README.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and not an earlier make-data's folder"):
        run_demo(str(mine), n=30, progress=False, precision="32-true")
    assert (mine / "data" / "images" / "case_00008.png").read_bytes() == b"the user's image"
    with pytest.raises(ValueError, match="--out must name a folder"):
        run_demo("", n=30, progress=False, precision="32-true")
