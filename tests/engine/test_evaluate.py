import json
import os

import numpy as np
import pytest

from medseg_r.engine.evaluate import case_metrics, confidence_ranking, summarise


def _disc(cx, cy, r, size=64):
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_case_metrics_perfect_partial_missed_and_negative():
    truth = _disc(20, 20, 6)
    perfect = case_metrics(truth, truth)
    assert perfect["dice"] == pytest.approx(1.0) and perfect["iou"] == pytest.approx(1.0) and perfect["hd95"] == 0.0
    half = truth.copy()
    half[:, 20:] = False
    part = case_metrics(half, truth)
    # half of a radius-6 disc (50 of 113 px): Dice 2*50/163, and the farthest missed boundary pixel is
    # one radius (6 px) from the cut
    assert part["dice"] == pytest.approx(100 / 163) and part["iou"] == pytest.approx(50 / 113)
    assert part["hd95"] == pytest.approx(6.0)
    missed = case_metrics(np.zeros_like(truth), truth)
    assert missed["dice"] == 0.0 and missed["hd95"] == pytest.approx(np.hypot(64, 64))
    neg = case_metrics(np.zeros_like(truth), np.zeros_like(truth))
    assert neg == {"pred_px": 0.0, "truth_px": 0.0, "false_positive": 0.0}
    assert case_metrics(truth, np.zeros_like(truth))["false_positive"] == 1.0


def test_small_lesion_sensitivity_counts_components():
    truth = _disc(10, 10, 2) | _disc(40, 40, 2) | _disc(30, 10, 12)
    pred = _disc(10, 10, 2)
    m = case_metrics(pred, truth)
    assert (m["lesions"], m["lesions_found"], m["small_lesions"], m["small_found"]) == (3, 1, 2, 1)


def test_summary_per_subset_and_fp_rate():
    rows = [{"id": "a", "tags": ["small"], **case_metrics(_disc(5, 5, 2), _disc(5, 5, 2))},
            {"id": "b", "tags": ["distractor"], **case_metrics(np.zeros((64, 64), bool), _disc(5, 5, 2))},
            {"id": "c", "tags": ["negative"], **case_metrics(_disc(5, 5, 2), np.zeros((64, 64), bool))},
            {"id": "d", "tags": ["negative"], **case_metrics(np.zeros((64, 64), bool), np.zeros((64, 64), bool))}]
    s = summarise(rows)
    assert s["overall"]["n"] == 2 and s["overall"]["dice"] == pytest.approx(0.5)
    assert s["subsets"]["small"]["dice"] == pytest.approx(1.0) and s["subsets"]["distractor"]["dice"] == 0.0
    assert s["subsets"]["overlap"]["dice"] is None
    assert s["negative_fp_rate"] == 0.5 and s["negatives"] == 2


def test_confidence_ranking_is_spearman_against_real_iou():
    rows = [{"id": str(i), "tags": [], "iou": iou, "predicted_iou": p, "mean_probability": m}
            for i, (iou, p, m) in enumerate([(0.1, 0.9, 0.6), (0.5, 0.5, 0.7), (0.8, 0.2, 0.9), (0.3, 0.7, 0.65)])]
    rows.append({"id": "neg", "tags": ["negative"], "false_positive": 1.0, "predicted_iou": 0.0,
                 "mean_probability": 0.99})  # negatives have no IoU and are left out
    rho = confidence_ranking(rows)
    assert rho["predicted_iou"] == pytest.approx(-1.0) and rho["mean_probability"] == pytest.approx(1.0)
    for r in rows:
        r["mean_probability"] = 0.5  # a constant confidence ranks nothing
    rows[0]["predicted_iou"] = None  # a model without an IoU head
    rho = confidence_ranking(rows)
    assert rho["mean_probability"] is None and rho["predicted_iou"] == pytest.approx(-1.0)
    assert confidence_ranking(rows[:2]) == {"predicted_iou": None, "mean_probability": None}


def test_evaluate_cli_writes_csv_json_and_overlays(tiny_phantom, tmp_path):
    from medseg_r import build_model
    from medseg_r.checkpoint import save_model
    from medseg_r.cli import main

    ckpt = str(tmp_path / "m.ckpt")
    save_model(build_model("sam_tiny", img_size=64), ckpt)
    out = str(tmp_path / "eval")
    assert main(["evaluate", "--checkpoint", ckpt, "--data", tiny_phantom, "--split", "test", "--out", out,
                 "--overlays", "2"]) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    from medseg_r.engine.evaluate import SUBSETS

    assert summary["cases"] == 8 and tuple(summary["subsets"]) == SUBSETS
    assert {"by_location", "by_texture", "by_shape", "phrasing_new", "phrasing_known"} <= set(SUBSETS)
    lines = open(os.path.join(out, "cases.csv")).read().strip().splitlines()
    assert len(lines) == 9 and lines[0].endswith("predicted_iou,mean_probability")
    assert set(summary["confidence_rank_correlation"]) == {"predicted_iou", "mean_probability"}
    assert len(os.listdir(os.path.join(out, "overlays"))) == 2
