"""Train the accuracy benchmark's `medseg_r_attr` localiser for one seed exactly as
`python -m medseg_r.benchmarks.accuracy --out /work/bench_acc --n 2000 --extra-n 6000 --epochs 6
--seeds SEED --precision 32-true --rows medseg_r_attr` trains it, and stop there (no scoring, no
generalisation split): `python localiser_seeds.py data` makes the data once, then
`OMP_NUM_THREADS=1 python localiser_seeds.py SEED` per seed (two side by side on two cores)
(unread_reports.md, "Three localiser seeds")."""
import os
import sys

from medseg_r.benchmarks.accuracy import EXTRA_SEED, joined_manifest
from medseg_r.data.phantom import make_phantom
from medseg_r.engine.comparison import run_row

OUT = "/work/bench_acc"
data, extra = os.path.join(OUT, "data"), os.path.join(OUT, "data_extra")
if sys.argv[1] == "data":
    make_phantom(data, n=2000, seed=0, size=256)
    make_phantom(extra, n=6000, seed=EXTRA_SEED, size=256, splits=("train",))
    joined_manifest(os.path.join(OUT, "train_data"), data, extra)
else:
    seed = int(sys.argv[1])
    training = joined_manifest(os.path.join(OUT, "train_data"), data, extra)
    run_row("medseg_r_attr", run_of=lambda row: os.path.join(OUT, "runs", f"{row}_seed{seed}"),
            data=data, training=training, seed=seed, epochs=6, batch_size=8,
            cache=os.path.join(OUT, "feature_cache"), precision="32-true")
