import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from medseg_r.benchmarks.breakdown import main, report

KEYS = ["id", "tags", "dice", "iou", "hd95", "false_positive", "pred_px", "truth_px", "lesions", "lesions_found"]


def _run(out, name, cases, val_dice_by_version, tags=""):
    run = os.path.join(out, "runs", name)
    os.makedirs(os.path.join(run, "eval"))
    with open(os.path.join(run, "eval", "cases.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=KEYS)
        writer.writeheader()
        for i, (dice, px, lesions, found) in enumerate(cases):
            writer.writerow({"id": f"c{i}", "tags": tags, "dice": dice, "truth_px": px, "lesions": lesions,
                             "lesions_found": found})
        writer.writerow({"id": "neg", "tags": "negative", "dice": "", "false_positive": 1.0, "truth_px": 0})
    for version, values in enumerate(val_dice_by_version):
        folder = os.path.join(run, "logs", f"version_{version}")
        os.makedirs(folder)
        with open(os.path.join(folder, "metrics.csv"), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", "step", "train/loss", "val/dice"])
            for epoch, value in values:
                writer.writerow([epoch, epoch * 10, "", value])
                writer.writerow([epoch, epoch * 10 + 1, 0.9, ""])


def test_bands_lesions_found_and_resumed_logs(tmp_path):
    out = str(tmp_path)
    _run(out, "medseg_r_seed0", [(0.1, 10, 2, 1), (0.5, 100, 1, 1), (0.9, 900, 1, 1)],
         [[(0, 0.2), (1, 0.3)], [(1, 0.35), (2, 0.4)]])  # a resumed run: epoch 1 re-logged in version 1
    _run(out, "medseg_r_seed1", [(0.3, 20, 1, 0), (0.7, 120, 1, 1), (0.5, 1000, 1, 1)], [[(0, 0.1)]])
    _run(out, "none_seed0", [(0.0, 10, 2, 0), (0.1, 100, 1, 1), (0.2, 900, 1, 0)], [[]])  # no validation
    text = report(out, edges=[50, 400])
    lines = text.splitlines()
    assert lines[0] == "| reference mask | cases | medseg_r | none |"
    assert lines[2] == "| < 50 px | 1 | 0.200 | 0.000 |"  # mean over seeds of (0.1, 0.3)
    assert lines[3] == "| 50-400 px | 1 | 0.600 | 0.100 |"
    assert lines[4] == "| >= 400 px | 1 | 0.700 | 0.200 |"
    assert lines[5] == "| all | 3 | 0.500 | 0.100 |"
    assert "medseg_r: described lesions touched per seed (0, 1): 0.750, 0.667" in text
    assert "  seed 0 validation Dice per epoch: 0.200, 0.350, 0.400" in text
    assert "none: described lesions touched per seed (0): 0.250" in text
    assert "  seed 0 validation Dice per epoch: none logged (trained without validation)" in text


def test_missing_runs_and_rows_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="no evaluated run"):
        report(str(tmp_path))
    _run(str(tmp_path), "none_seed0", [(0.1, 10, 1, 1)], [])
    with pytest.raises(ValueError, match=r"no runs for rows \['medseg_r'\]"):
        report(str(tmp_path), rows=["medseg_r"])
    with pytest.raises(SystemExit):
        main([str(tmp_path / "elsewhere")])
    assert "no evaluated run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--edges", "0"])


def _lesion(role, bbox):
    return {"role": role, "bbox": bbox}


def test_case_outcomes_put_each_missed_lesion_in_the_first_class_that_holds():
    from medseg_r.benchmarks.breakdown import case_outcomes

    truth = np.zeros((32, 32), bool)
    truth[2:6, 2:6] = True  # described lesion A
    truth[20:24, 20:24] = True  # described lesion B
    lesions = [_lesion("target", [2, 2, 5, 5]), _lesion("target", [20, 20, 23, 23]),
               _lesion("mentioned", [10, 20, 13, 23])]  # a stable scar the report names as not the target
    pred = np.zeros_like(truth)
    assert case_outcomes(pred, truth, lesions) == ["empty", "empty"]
    pred[3, 3] = True
    assert case_outcomes(pred, truth, lesions) == ["found", "another described lesion"]
    pred[21, 11] = True  # also on the scar
    assert case_outcomes(pred, truth, lesions) == ["found", "undescribed lesion"]
    pred[:] = False
    pred[20:24, 12:24] = True  # one region: B found, spilling into the scar's box (x 10-13, y 20-23)
    assert case_outcomes(pred, truth, lesions) == ["another described lesion", "found"]
    pred[22, 15] = False  # cut at column 15 of row 22 only: still one region
    assert case_outcomes(pred, truth, lesions) == ["another described lesion", "found"]
    pred[20:24, 15] = False  # cut through: the piece on the scar stands alone
    assert case_outcomes(pred, truth, lesions) == ["undescribed lesion", "found"]
    pred[24, 15] = True  # touches both pieces only at corners: one region under 8-connectivity
    assert case_outcomes(pred, truth, lesions) == ["another described lesion", "found"]
    pred[:] = False
    pred[30, 0] = True
    assert case_outcomes(pred, truth, lesions) == ["elsewhere", "elsewhere"]


def test_outcome_table_reads_predictions_and_the_manifest(tmp_path):
    out = str(tmp_path)
    data = tmp_path / "data"
    (data / "masks").mkdir(parents=True)
    truth = np.zeros((16, 16), np.uint8)
    truth[1:4, 1:4] = 255
    Image.fromarray(truth).save(data / "masks" / "c0.png")
    with open(data / "manifest.jsonl", "w") as handle:
        handle.write(json.dumps({"id": "c0", "mask": "masks/c0.png", "lesions": [
            _lesion("target", [1, 1, 3, 3]), _lesion("omitted", [10, 10, 12, 12])]}) + "\n")
    _run(out, "medseg_r_seed0", [(0.0, 9, 1, 0)], [], tags="by_texture")
    _run(out, "none_seed0", [(0.0, 9, 1, 0)], [])  # scored before predictions were saved
    pred = np.zeros((16, 16), np.uint8)
    pred[11, 11] = 255  # the mask went to the omitted lesion
    (tmp_path / "runs" / "medseg_r_seed0" / "eval" / "predictions").mkdir()
    Image.fromarray(pred).save(tmp_path / "runs" / "medseg_r_seed0" / "eval" / "predictions" / "c0.png")
    text = report(out)
    assert "| medseg_r | 1 | 0.000 | 0.000 | 1.000 | 0.000 | 0.000 | - (0) | - | 1.000 | - |" in text
    assert "no saved predictions for none" in text


def test_contrast_table_splits_cases_by_size_and_faintest_lesion():
    from medseg_r.benchmarks.breakdown import contrast_table, faintest_cnr

    def case(*cnrs):
        return {"lesions": [{"role": "target", "cnr": c} for c in cnrs]
                + [{"role": "mentioned", "cnr": 0.1}]}  # not described: never the faintest

    manifest = {"a": case(0.5, 3.0), "b": case(2.0), "c": case(1.5), "d": {"lesions": []}}
    assert faintest_cnr(manifest["a"]) == 0.5 and faintest_cnr(manifest["d"]) is None

    def cases(dice_a, found_a):
        return [{"id": "a", "dice": dice_a, "truth_px": 20, "lesions": "2", "lesions_found": found_a},
                {"id": "b", "dice": 0.8, "truth_px": 30, "lesions": "1", "lesions_found": "1"},
                {"id": "c", "dice": 0.6, "truth_px": 200, "lesions": "1", "lesions_found": "1"},
                {"id": "d", "dice": 0.1, "truth_px": 200, "lesions": "1", "lesions_found": "0"}]

    table = {"medseg_r": {0: cases("0.2", "1"), 1: cases("0.4", "2")}, "none": {0: cases("0.0", "0")}}
    lines = contrast_table(table, manifest, ["medseg_r", "none"])
    assert lines[2] == "| cases | n | medseg_r | none |"
    assert lines[4] == "| < 50 px, CNR < 1 | 1 | 0.300 / 0.500 | 0.000 / 0.000 |"
    assert lines[5] == "| < 50 px, CNR >= 1 | 1 | 0.800 / 1.000 | 0.800 / 1.000 |"
    assert lines[6] == "| >= 50 px, CNR < 1 | 0 | - / - | - / - |"
    assert lines[7] == "| >= 50 px, CNR >= 1 | 1 | 0.600 / 1.000 | 0.600 / 1.000 |"  # d: no CNR
    assert contrast_table(table, {}, ["none"]) == []  # a manifest without CNR: no table


def test_reading_table_splits_single_lesion_cases_by_what_the_parser_read():
    from medseg_r.benchmarks.breakdown import cue_read, reading_table
    from medseg_r.report import parse_report

    def lesion(side, zone, words, role="target"):
        return {"role": role, "side": side, "zone": zone, "texture": "solid", "shape": "round",
                "words": {w: "..." for w in words}}

    manifest = {
        "c0": {"report": "A solid round nodule in the right upper zone.",
               "lesions": [lesion("right", "upper", ["location", "texture", "shape"]),
                           lesion("left", "lower", [], role="omitted")]},
        # "high in" is not in the parser's vocabulary: the side is read, the zone is not
        "c1": {"report": "A solid nodule high in the left chest.",
               "lesions": [lesion("left", "upper", ["location", "texture"])]},
        "c2": {"report": "Solid nodules in both lower zones.",  # two described lesions: left out
               "lesions": [lesion("left", "lower", ["location"]), lesion("right", "lower", ["location"])]},
    }
    findings = parse_report(manifest["c0"]["report"]).positive_findings
    assert cue_read(manifest["c0"]["lesions"][0], findings, "location") is True
    assert cue_read(lesion("left", "upper", ["location"]), findings, "location") is False  # wrong side
    assert cue_read(manifest["c1"]["lesions"][0], findings, "shape") is None  # its sentence writes none
    seed0 = {"per_case": {"c0": ["found"], "c1": ["elsewhere"], "c2": ["found", "found"]}}
    seed1 = {"per_case": {"c0": ["empty"], "c1": ["elsewhere"], "c2": ["found", "found"]}}
    lines = reading_table({"medseg_r": [seed0, seed1, None], "none": [seed0]}, manifest,
                          ["medseg_r", "none"])
    assert lines[2] == ("| row | location read (n=1) | location not read (n=1) | texture read (n=2) | "
                        "texture not read (n=0) | shape read (n=1) | shape not read (n=0) |")
    assert lines[4] == "| medseg_r | 0.500 | 0.000 | 0.250 | - | 0.500 | - |"
    assert lines[5] == "| none | 1.000 | 0.000 | 0.500 | - | 1.000 | - |"
    assert reading_table({"none": [None]}, manifest, ["none"]) == []  # no saved predictions
