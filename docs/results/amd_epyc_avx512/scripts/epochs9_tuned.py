"""The 9-epoch pilot of stop 48 (epochs9_tuned_seed0.md): each localiser row trained 9 epochs
(OUT_ROW/runs shared in /work/bench_e9/runs) is joined with decoder_boxes seed 0 of the benchmark
folder (/work/bench = the accuracy benchmark's --out, 6 epochs) as accuracy.py joins a *_tuned
row, and scored as accuracy.py scores it: the test split, then the first 100 training cases
(accuracy.scored's ``fit``, the benchmark's own training-case Dice). As first run, two scripts
scored the test split and then the training cases with a second load of each model; joined here
into the benchmark's own calls, the same figures."""
import json
import sys

from medseg_r.benchmarks.accuracy import inference_code_key, scored
from medseg_r.data.readers import read_dataset
from medseg_r.engine.comparison import combine_parts

E9, BENCH = "/work/bench_e9", "/work/bench"
code = inference_code_key()
test = read_dataset(f"{BENCH}/data", split="test")
other = read_dataset(f"{BENCH}/data_seed1", split="test")
records, root = read_dataset(f"{BENCH}/data", split="train")
fit = records[:100], root
out = {}
for row in sys.argv[1:] or ["medseg_r_attr", "none_attr", "text_token_attr"]:
    name = f"{row}_tuned"
    run = f"{E9}/runs/{name}_seed0"
    trained = combine_parts(name, models={row: f"{E9}/runs/{row}_seed0/model.ckpt",
                                          "decoder_boxes": f"{BENCH}/runs/decoder_boxes_seed0/model.ckpt"},
                            out=run)
    s = scored(trained, name, run, f"{BENCH}/feature_cache", test, other, fit, code=code)
    out[name] = {"dice": s["overall"]["dice"], "negfp": s.get("negative_fp_rate"),
                 **{k: v["dice"] for k, v in s["subsets"].items()}, "params": s["params"]["trainable"],
                 "train_fit": s["train_fit"]["dice"]}
    print(name, json.dumps(out[name]), flush=True)
with open(f"{E9}/pilot_scores.json", "w") as f:
    json.dump(out, f, indent=1)
