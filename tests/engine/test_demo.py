"""The demo and the accuracy benchmark end to end at a tiny size (the figures themselves are not asserted:
at this size nothing is learned; the real run is documented in README)."""
import json
import os

import pytest

from medseg_r.benchmarks.accuracy import main as accuracy_main
from medseg_r.engine.demo import run_demo, targets


def test_demo_writes_results_table_and_figure(tmp_path, capsys):
    out = str(tmp_path / "demo")
    payload = run_demo(out, n=30, epochs=1, progress=False)
    results = json.load(open(os.path.join(out, "results.json")))
    assert set(results["models"]) == {"medseg_r", "none", "text_token"}
    for model in results["models"].values():
        assert set(model["overall"]) >= {"dice", "iou", "hd95"}
        assert set(model["subsets"]) == {"small", "overlap", "low_contrast", "distractor"}
        assert "negative_fp_rate" in model
    assert results["config"]["backbone"] == "sam_tiny"
    assert results["seconds"] >= sum(m["train_seconds"] for m in results["models"].values())
    assert results["config"]["model_weights"] == "last" and results["config"]["steps"] == 3  # 21 train cases
    assert results["config"]["precision"] in ("bf16-mixed", "32-true") and results["config"]["deterministic"]
    assert os.path.getsize(os.path.join(out, "figure.png")) > 10_000
    printed = capsys.readouterr().out
    assert "medseg_r" in printed and "Dice [distractor]" in printed and payload["models"]
    assert len(results["targets"]) == 4 and "Against the targets" in printed


def _summary(dice, small, distractor, fp):
    return {"overall": {"dice": dice}, "subsets": {"small": {"dice": small}, "distractor": {"dice": distractor}},
            "negative_fp_rate": fp}


def test_targets_are_margins_checked_against_their_minimum():
    results = {"medseg_r": _summary(0.30, 0.20, None, 0.05), "none": _summary(0.05, 0.1, 0.1, 1.0),
               "text_token": _summary(0.10, 0.16, 0.1, 1.0)}
    rows = {r["what"].split(",")[0]: r for r in targets(results)}
    assert rows["Dice overall"]["value"] == pytest.approx(0.25) and rows["Dice overall"]["met"] is True
    assert rows["Dice [small]"]["value"] == pytest.approx(0.04) and rows["Dice [small]"]["met"] is False
    assert rows["Dice [distractor]"]["value"] is None and rows["Dice [distractor]"]["met"] is None
    fp = rows["FP rate on negative reports"]
    assert fp["value"] == 0.05 and fp["met"] is True and fp["target"] == "<= 0.10"
    assert [r["what"] for r in targets({"medseg_r": results["medseg_r"]})] == ["FP rate on negative reports, MedSeg-R"]


def test_accuracy_benchmark_rows_and_oracle(tmp_path, capsys):
    out = str(tmp_path / "acc")
    assert accuracy_main(["--out", out, "--n", "30", "--epochs", "1", "--seeds", "0", "1",
                          "--rows", "medseg_r", "litemedsam_oracle_box"]) == 0
    payload = json.load(open(os.path.join(out, "accuracy.json")))
    assert set(payload["rows"]) == {"medseg_r", "litemedsam_oracle_box"}
    dice = payload["rows"]["medseg_r"]["overall"]["dice"]
    assert dice["std"] is not None and "generalisation_dice" in payload["rows"]["medseg_r"]
    assert payload["rows"]["litemedsam_oracle_box"]["overall"]["dice"]["mean"] > 0.3  # a box is a strong prompt
    assert len(payload["rows"]["medseg_r"]["dice_per_seed"]) == 2
    assert "| medseg_r |" in capsys.readouterr().out


def test_accuracy_benchmark_rejects_unknown_loss_and_row(tmp_path):
    for bad in (["--loss", "dice_hinge"], ["--rows", "medseg_r", "unet"]):
        with pytest.raises(SystemExit) as info:
            accuracy_main(["--out", str(tmp_path / "acc"), *bad])
        assert info.value.code == 2
    assert not (tmp_path / "acc").exists()  # rejected before any data is generated
