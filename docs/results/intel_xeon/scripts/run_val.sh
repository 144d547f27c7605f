#!/bin/bash
# box_zones on the benchmark's validation split: as written, and with each described finding's
# location rewritten as "in the {side} lung" (side read, zone not)
cd /work/main
for data in data side_only; do
  for name in litemedsam_phantom litemedsam_phantom_none; do
    echo "== $name $data"
    .venv/bin/python -m medseg_r.benchmarks.hedge $name --data /work/bench_val/$data \
      --cache /work/bench/feature_cache --option box_zones --values 0 1
  done
done
