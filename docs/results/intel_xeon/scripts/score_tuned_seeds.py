"""Score `medseg_r_attr_tuned` models (decoder_seeds.py: each localiser seed joined with the
decoder_boxes run of the same seed, as the accuracy benchmark joins them) on the benchmark's test
split, with and without this version's rule for reports read as nothing:

    python score_tuned_seeds.py RUN/model.ckpt ...

The test split and its features: /work/bench (shipped_scores' --out)."""
import sys

import torch

import medseg_r.model.encoding as encoding
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped

test, root = read_dataset("/work/bench/data", split="test")
shipped = load_shipped("litemedsam_phantom")[0]
real_rule = encoding.read_as_nothing
for path in sys.argv[1:]:
    model = load_model(path)
    differ = {k: (v, shipped.options.get(k)) for k, v in model.options.items()
              if k != "freeze" and shipped.options.get(k) != v}  # freeze: training only
    if differ:
        raise SystemExit(f"{path}: options differ from the shipped file's: {differ}")
    model.feature_cache = FeatureCache("/work/bench/feature_cache")
    model.eval()
    row = [path]
    for rule in (False, True):
        encoding.read_as_nothing = real_rule if rule else (lambda m, reports: [False] * len(reports))
        with torch.no_grad():
            s = evaluate(model, test, root=root, size=256)
        sub = s["subsets"]
        row.append(f"{'with' if rule else 'without'} the rule: Dice {s['overall']['dice']:.4f}, "
                   f"neg. FP {s['negative_fp_rate']:.3f}, small {sub['small']['dice']:.3f}, "
                   f"by_location {sub['by_location']['dice']:.3f}, by_texture "
                   f"{sub['by_texture']['dice']:.3f}, by_shape {sub['by_shape']['dice']:.3f}, "
                   f"phrasing new {sub['phrasing_new']['dice']:.3f} / known "
                   f"{sub['phrasing_known']['dice']:.3f}")
    print(" | ".join(row), flush=True)
