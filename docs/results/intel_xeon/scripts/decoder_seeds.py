"""Train the accuracy benchmark's `decoder_boxes` row for one seed exactly as `python -m
medseg_r.benchmarks.accuracy --out /work/bench_acc --n 2000 --extra-n 6000 --epochs 6 --seeds SEED
--precision 32-true --rows medseg_r_attr_tuned` trains it, and join it with that seed's
`medseg_r_attr` localiser run (localiser_seeds.py) into the `medseg_r_attr_tuned` model, as the
benchmark does (no scoring here: score_localiser_seeds.py --own-decoder). The training images are encoded once into
the benchmark's feature cache (/work/bench_acc/feature_cache, the path its localiser runs record).

    python decoder_seeds.py SEED"""
import os
import sys

from medseg_r.benchmarks.accuracy import joined_manifest
from medseg_r.engine.comparison import run_row

OUT = "/work/bench_acc"
seed = int(sys.argv[1])
data, extra = os.path.join(OUT, "data"), os.path.join(OUT, "data_extra")
training = joined_manifest(os.path.join(OUT, "train_data"), data, extra)
result = run_row("medseg_r_attr_tuned", run_of=lambda row: os.path.join(OUT, "runs", f"{row}_seed{seed}"),
                 data=data, training=training, seed=seed, epochs=6, batch_size=8,
                 cache=os.path.join(OUT, "feature_cache"), precision="32-true")
print(seed, result.get("model"), result.get("part_steps"), flush=True)
