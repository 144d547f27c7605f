"""Train the accuracy benchmark's baseline localisers (`none_attr`, `text_token_attr`) for one seed
exactly as `python -m medseg_r.benchmarks.accuracy --out /work/bench_acc --n 2000 --extra-n 6000
--epochs 6 --seeds SEED --precision 32-true --rows none_attr_tuned text_token_attr_tuned` trains
them, and join each with the same seed's `decoder_boxes` run (decoder_seeds.py) into the
`*_attr_tuned` model, as the benchmark does (no scoring here: score_baseline_seeds.py). The same
data and one thread per run as localiser_seeds.py (stop 53) and the MedSeg-R seeds it trained:

    OMP_NUM_THREADS=1 python baseline_seeds.py none SEED ...      # two side by side on two cores
    OMP_NUM_THREADS=1 python baseline_seeds.py text_token SEED ..."""
import os
import sys

from medseg_r.benchmarks.accuracy import joined_manifest
from medseg_r.engine.comparison import run_row

OUT = "/work/bench_acc"
data, extra = os.path.join(OUT, "data"), os.path.join(OUT, "data_extra")
training = joined_manifest(os.path.join(OUT, "train_data"), data, extra)
name = f"{sys.argv[1]}_attr_tuned"
for seed in map(int, sys.argv[2:]):
    result = run_row(name, run_of=lambda row: os.path.join(OUT, "runs", f"{row}_seed{seed}"),
                     data=data, training=training, seed=seed, epochs=6, batch_size=8,
                     cache=os.path.join(OUT, "feature_cache"), precision="32-true")
    print(name, seed, result.get("model"), result.get("part_steps"), flush=True)
