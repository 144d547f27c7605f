import csv
import os

import pytest

from medseg_r.benchmarks.breakdown import main, report

KEYS = ["id", "tags", "dice", "iou", "hd95", "false_positive", "pred_px", "truth_px", "lesions", "lesions_found"]


def _run(out, name, cases, val_dice_by_version):
    run = os.path.join(out, "runs", name)
    os.makedirs(os.path.join(run, "eval"))
    with open(os.path.join(run, "eval", "cases.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=KEYS)
        writer.writeheader()
        for i, (dice, px, lesions, found) in enumerate(cases):
            writer.writerow({"id": f"c{i}", "tags": "", "dice": dice, "truth_px": px, "lesions": lesions,
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
    _run(out, "none_seed0", [(0.0, 10, 2, 0), (0.1, 100, 1, 1), (0.2, 900, 1, 0)], [[(0, 0.1)]])
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
