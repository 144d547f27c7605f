"""The 9-epoch pilot of stop 48 (epochs9_tuned_seed0.md), kept as it ran: each localiser row trained
9 epochs (OUT_ROW/runs shared in /work/bench_e9/runs) is joined with decoder_boxes seed 0 of the
benchmark folder (/work/bench = the accuracy benchmark's --out, 6 epochs) as accuracy.py joins a
*_tuned row, scored on the test split (accuracy.scored), then on 100 training cases (run as two
scripts, one row per process, and joined here)."""
import json, os, sys
from medseg_r.benchmarks.accuracy import scored, inference_code_key
from medseg_r.data.readers import read_dataset
from medseg_r.engine.comparison import combine_parts

E9, BENCH = "/work/bench_e9", "/work/bench"
code = inference_code_key()
test = read_dataset(f"{BENCH}/data", split="test")
other = read_dataset(f"{BENCH}/data_seed1", split="test")
out = {}
for row in sys.argv[1:] or ["medseg_r_attr", "none_attr", "text_token_attr"]:
    name = f"{row}_tuned"
    run = f"{E9}/runs/{name}_seed0"
    trained = combine_parts(name, models={row: f"{E9}/runs/{row}_seed0/model.ckpt",
                                          "decoder_boxes": f"{BENCH}/runs/decoder_boxes_seed0/model.ckpt"},
                            out=run)
    s = scored(trained, name, run, f"{BENCH}/feature_cache", test, other, None, code=code)
    out[name] = {"dice": s["overall"]["dice"], "negfp": s.get("negative_fp_rate"),
                 **{k: v["dice"] for k, v in s["subsets"].items()}, "params": s["params"]["trainable"]}
    print(name, json.dumps(out[name]), flush=True)
with open(f"{E9}/pilot_scores.json", "w") as f:
    json.dump(out, f, indent=1)

from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache

recs, root = read_dataset(f"{BENCH}/data", split="train")
for r in ["medseg_r_attr", "none_attr", "text_token_attr"]:
    m = load_model(f"/work/bench_e9/runs/{r}_tuned_seed0/model.ckpt")
    m.feature_cache = FeatureCache("/work/bench/feature_cache")
    print(r, round(evaluate(m, recs[:100], root=root, size=256)["overall"]["dice"], 4), flush=True)
