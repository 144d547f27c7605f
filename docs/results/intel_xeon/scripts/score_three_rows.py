"""Score the accuracy benchmark's three main rows (`medseg_r_attr_tuned`, `none_attr_tuned`,
`text_token_attr_tuned`) on its test split, seeds 0, 1 and 2, with this version's code, and write
one table (three_rows_seeds012.md).

Seed 0: the shipped files (the benchmark's seed-0 runs; fp16 weights). Seeds 1 and 2: the runs
trained on this Xeon by localiser_seeds.py + decoder_seeds.py (MedSeg-R, stop 53) and
baseline_seeds.py (the baselines, stop 56), one thread each. The test split and its encoded images:
/work/bench (shipped_scores' --out: the same generation as /work/bench_acc/data).

    python score_three_rows.py          # writes /work/bench_acc/eval56/ROW_seedN/{cases.csv,summary.json}
    python score_three_rows.py --table  # the table from those files"""
import json
import os
import sys

import numpy as np

EVAL = "/work/bench_acc/eval56"
ROWS = {"medseg_r_attr_tuned": "litemedsam_phantom", "none_attr_tuned": "litemedsam_phantom_none",
        "text_token_attr_tuned": "litemedsam_phantom_text_token"}
SEEDS = (0, 1, 2)
SUBSETS = ("small", "by_location", "by_texture", "by_shape", "phrasing_new", "phrasing_known")


def score() -> None:
    import torch

    from medseg_r.data.readers import read_dataset
    from medseg_r.engine.evaluate import evaluate
    from medseg_r.model import load_model
    from medseg_r.model.feature_cache import FeatureCache
    from medseg_r.model.shipped import load_shipped

    test, root = read_dataset("/work/bench/data", split="test")
    for row, shipped in ROWS.items():
        for seed in SEEDS:
            out = os.path.join(EVAL, f"{row}_seed{seed}")
            if os.path.isfile(os.path.join(out, "summary.json")):
                continue
            model = load_shipped(shipped)[0] if seed == 0 else \
                load_model(f"/work/bench_acc/runs/{row}_seed{seed}/model.ckpt")
            model.feature_cache = FeatureCache("/work/bench/feature_cache")
            params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            with torch.no_grad():
                s = evaluate(model, test, root=root, size=256, out_dir=out)
            s["trainable_params"] = params
            with open(os.path.join(out, "summary.json"), "w") as f:
                json.dump(s, f, indent=1)
            print(row, seed, round(s["overall"]["dice"], 4), params, flush=True)


def table() -> str:
    runs = {(row, seed): json.load(open(os.path.join(EVAL, f"{row}_seed{seed}", "summary.json")))
            for row in ROWS for seed in SEEDS}
    def dice(row, seed, subset=None):
        s = runs[row, seed]
        return (s["overall"] if subset is None else s["subsets"][subset])["dice"]
    lines = ["| row | Dice per seed 0, 1, 2 | median | mean ± sd | IoU | HD95 px | "
             + " | ".join(SUBSETS) + " | neg. FP | trainable params |",
             "|---" * (8 + len(SUBSETS)) + "|"]
    for row in ROWS:
        d = [dice(row, s) for s in SEEDS]
        mean = lambda key: np.mean([runs[row, s]["overall"][key] for s in SEEDS])
        subs = [np.mean([dice(row, s, sub) for s in SEEDS]) for sub in SUBSETS]
        fp = np.mean([runs[row, s]["negative_fp_rate"] for s in SEEDS])
        params = sorted({runs[row, s]["trainable_params"] for s in SEEDS})
        lines.append(f"| {row} | {', '.join(f'{v:.3f}' for v in d)} | **{np.median(d):.3f}** | "
                     f"{np.mean(d):.3f} ± {np.std(d, ddof=1):.3f} | {mean('iou'):.3f} | {mean('hd95'):.1f} | "
                     + " | ".join(f"{v:.3f}" for v in subs)
                     + f" | {fp:.3f} | {', '.join(f'{p:,}' for p in params)} |")
    lines += ["", "| MedSeg-R minus | target | seed 0 | seed 1 | seed 2 | median |", "|---|---|---|---|---|---|"]
    for other, subset, target in (("none_attr_tuned", None, 0.20), ("text_token_attr_tuned", "by_location", 0.10),
                                  ("text_token_attr_tuned", "by_texture", 0.10),
                                  ("text_token_attr_tuned", "by_shape", 0.10),
                                  ("text_token_attr_tuned", "small", 0.10)):
        m = [dice("medseg_r_attr_tuned", s, subset) - dice(other, s, subset) for s in SEEDS]
        lines.append(f"| {other}, {subset or 'overall'} | +{target:.2f} | "
                     + " | ".join(f"{v:+.3f}" for v in m) + f" | {np.median(m):+.3f} |")
    d = [dice("medseg_r_attr_tuned", s) for s in SEEDS]
    lines.append(f"| MedSeg-R's Dice | >= 0.60 | " + " | ".join(f"{v:.3f}" for v in d)
                 + f" | {np.median(d):.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if "--table" in sys.argv:
        print(table())
    else:
        score()
