"""Score `medseg_r_attr` localiser runs on the accuracy benchmark's test split, with and without
this version's rule for reports read as nothing (unread_reports.md, "Three localiser seeds"):

    python score_localiser_seeds.py RUN/model.ckpt ... [--limit N]        # with the shipped decoder
    python score_localiser_seeds.py --own-decoder TUNED_RUN/model.ckpt ... # with the run's own

The test split and its features: /work/bench (shipped_scores' --out). By default the shipped MedSeg-R
file's mask decoder (decoder_boxes, seed 0) replaces each localiser run's frozen pretrained decoder
(localiser_seeds.py), as the shipped file joins them. With ``--own-decoder`` each model keeps its own:
a `medseg_r_attr_tuned` run (decoder_seeds.py) that joins a localiser seed with the decoder_boxes run
of the same seed, as the benchmark's `*_tuned` rows do."""
import sys

import torch

import medseg_r.model.encoding as encoding
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped

args = sys.argv[1:]
own_decoder = "--own-decoder" in args
args = [a for a in args if a != "--own-decoder"]
limit = None
if "--limit" in args:
    i = args.index("--limit")
    limit, args = int(args[i + 1]), args[:i] + args[i + 2:]
test, root = read_dataset("/work/bench/data", split="test")
test = test[:limit] if limit else test
shipped = load_shipped("litemedsam_phantom")[0]
real_rule = encoding.read_as_nothing
for path in args:
    model = load_model(path)
    differ = {k: (v, shipped.options.get(k)) for k, v in model.options.items()
              if k != "freeze" and shipped.options.get(k) != v}  # freeze: training only
    if differ:
        raise SystemExit(f"{path}: options differ from the shipped file's: {differ}")
    if not own_decoder:
        model.sam.mask_decoder.load_state_dict(shipped.sam.mask_decoder.state_dict())
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
