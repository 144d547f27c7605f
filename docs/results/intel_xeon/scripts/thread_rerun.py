"""Seed 1 of the accuracy benchmark's `medseg_r_attr` localiser trained again by the benchmark's
recipe (as localiser_seeds.py trains it), into OUT/runs, joined with the `decoder_boxes` seed-1 run
of /work/bench_acc as the benchmark joins a `*_tuned` row, and scored on the test split
(/work/bench/data, with this version's rule for reports read as nothing) and the validation split
(/work/bench_val/data), fp32 (thread_rerun_seed1.md).

    OMP_NUM_THREADS=N PILOT_OUT=OUT python thread_rerun.py train
    PILOT_OUT=OUT python thread_rerun.py score      # writes OUT/scores.json
    PILOT_OUT=/work/bench_acc python thread_rerun.py score  # the original seed-1 run

Stop 55 ran it as a pilot of a 384 px localiser canvas whose patch (LOCALISER_SIZE 384 in a copy of
the package) had no effect: the canvas side is min(image size, LOCALISER_SIZE), 256 for these
images; the runs' checkpoints record work_size 256. What it measured is the run with two threads
against the original run with one."""
import json
import os
import sys

import torch

from medseg_r.benchmarks.accuracy import joined_manifest
from medseg_r.data.readers import read_dataset
from medseg_r.engine.comparison import run_row
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache

ACC, OUT, seed = "/work/bench_acc", os.environ["PILOT_OUT"], 1
data, extra = os.path.join(ACC, "data"), os.path.join(ACC, "data_extra")


def run_of(row):
    base = ACC if row == "decoder_boxes" else OUT  # the benchmark's own seed-1 decoder
    return os.path.join(base, "runs", f"{row}_seed{seed}")


if sys.argv[1] == "train":
    training = joined_manifest(os.path.join(ACC, "train_data"), data, extra)
    r = run_row("medseg_r_attr_tuned", run_of=run_of, data=data, training=training, seed=seed,
                epochs=6, batch_size=8, cache=os.path.join(ACC, "feature_cache"), precision="32-true")
    print(r.get("model"), r.get("part_steps"), "threads", torch.get_num_threads(), flush=True)
else:
    model = load_model(f"{OUT}/runs/medseg_r_attr_tuned_seed1/model.ckpt")
    model.feature_cache = FeatureCache("/work/bench/feature_cache")
    model.eval()
    out = {"work_size": model.box_head.work_size}
    for split, src in (("test", "/work/bench/data"), ("val", "/work/bench_val/data")):
        records, root = read_dataset(src, split=split)
        with torch.no_grad():
            s = evaluate(model, records, root=root, size=256)
        out[split] = {"dice": s["overall"]["dice"], "neg_fp": s.get("negative_fp_rate"),
                      **{k: v["dice"] for k, v in s["subsets"].items()}}
        print(split, json.dumps(out[split]), flush=True)
    json.dump(out, open(f"{OUT}/scores.json", "w"), indent=1)
