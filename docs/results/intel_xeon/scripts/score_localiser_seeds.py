"""Score `medseg_r_attr` localiser runs (localiser_seeds.py) joined with the shipped fine-tuned
decoder, on the accuracy benchmark's test split, with and without this version's rule for reports
read as nothing (unread_reports.md, "Three localiser seeds"):

    python score_localiser_seeds.py RUN/model.ckpt ... [--limit N]

The test split and its features: /work/bench (shipped_scores' --out). The shipped MedSeg-R file's
mask decoder (decoder_boxes, seed 0) replaces each run's frozen pretrained decoder, as the shipped
file joins them; the benchmark's own `*_tuned` rows pair each localiser seed with a decoder of the
same seed (README: the decoder's seed moves Dice by 0.001)."""
import sys

import torch

import medseg_r.model.encoding as encoding
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped

args = sys.argv[1:]
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
