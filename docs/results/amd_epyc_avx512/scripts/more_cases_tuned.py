"""The more-cases pilot of stop 49 (more_cases_tuned_seed0.md): each localiser row trained on
twice as many distinct training cases for half the epochs (``--extra-n 14000 --epochs 3``: 11,200
training cases x 3 epochs = 2,100 steps, as the benchmark's 5,600 x 6; run folders under
/work/bench_d2/runs) is joined with decoder_boxes seed 0 of the benchmark folder (/work/bench, the
accuracy benchmark's --out) as accuracy.py joins a ``*_tuned`` row, and scored as accuracy.py
scores it (the test split, then the first 100 training cases: the benchmark's training-case Dice),
and on the validation split (200 cases, what a choice of recipe may look at).

    python more_cases_tuned.py [ROW ...]      # default: medseg_r_attr none_attr text_token_attr
    python more_cases_tuned.py --base ROW ... # the benchmark's own 6-epoch runs, scored the same way
    python more_cases_tuned.py --from DIR ROW ... # runs under DIR/runs instead of /work/bench_d2
                                                  # (lesion_balanced_where_seed0.md: /work/bench_lb)
    python more_cases_tuned.py --decoder CKPT SCORED --base ROW ...  # joined with another decoder
                                                  # (decoder_jitter_seed0.md), written under SCORED

The benchmark folder is ``$MEDSEG_R_BENCH`` when set (the accuracy benchmark's ``--out`` on another
machine), else /work/bench as on the machine these pilots ran on.

It does what scripts/epochs9_tuned.py did (kept as it ran for stop 48; ``--from /work/bench_e9``
gives its figures), plus the validation split.
"""
import json
import os
import sys

import torch

from medseg_r.benchmarks.accuracy import inference_code_key, scored
from medseg_r.data.readers import read_dataset
from medseg_r.engine.comparison import attach_cache, combine_parts
from medseg_r.engine.evaluate import evaluate

D2, BENCH = "/work/bench_d2", os.environ.get("MEDSEG_R_BENCH", "/work/bench")
DECODER, SCORED = f"{BENCH}/runs/decoder_boxes_seed0/model.ckpt", None
args = sys.argv[1:]
if args[:1] == ["--from"]:
    D2, args = args[1], args[2:]
if args[:1] == ["--decoder"]:  # another decoder_boxes run's model.ckpt (decoder_jitter_seed0.md);
    DECODER, SCORED, args = args[1], args[2], args[3:]  # the joined runs go under SCORED
base = bool(args) and args[0] == "--base"
rows = [a for a in args if a != "--base"] or ["medseg_r_attr", "none_attr", "text_token_attr"]
source = BENCH if base else D2
code = inference_code_key()
test = read_dataset(f"{BENCH}/data", split="test")
val = read_dataset(f"{BENCH}/data", split="val")
other = read_dataset(f"{BENCH}/data_seed1", split="test")
records, root = read_dataset(f"{BENCH}/data", split="train")
fit = records[:100], root
out = {}
for row in rows:
    name = f"{row}_tuned"
    run = f"{SCORED or source + '/runs'}/{name}_seed0"
    trained = combine_parts(name, models={row: f"{source}/runs/{row}_seed0/model.ckpt",
                                          "decoder_boxes": DECODER},
                            out=run)
    s = scored(trained, name, run, f"{BENCH}/feature_cache", test, other, fit, code=code)
    model = attach_cache(trained["loaded"], f"{BENCH}/feature_cache", name)
    with torch.no_grad():
        v = evaluate(model, val[0], root=val[1], size=256)
    out[name] = {"source": source, "dice": s["overall"]["dice"],
                 **{k: v_["dice"] for k, v_ in s["subsets"].items()},
                 "params": s["params"]["trainable"], "train_fit": s["train_fit"]["dice"],
                 "val_dice": v["overall"]["dice"],
                 "val_subsets": {k: v_["dice"] for k, v_ in v["subsets"].items()}}
    print(name, json.dumps(out[name]), flush=True)
with open(f"{SCORED or D2}/pilot_scores{'_base' if base else ''}_{'_'.join(rows)}.json", "w") as f:
    json.dump(out, f, indent=1)
