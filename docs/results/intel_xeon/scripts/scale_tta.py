"""Scale test-time augmentation of the image localiser: the maps of the canvas at work sizes other than 256 px (resampled to the 64x64 grid, box channels rescaled) averaged with its own, the shipped files scored on the validation split (/work/bench_val/data, the benchmark's 200 validation cases). python scale_tta.py NAME 256,320"""
import sys, math, json
import torch, torch.nn.functional as F
from medseg_r.model.shipped import load_shipped
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model.box_prompts import BOX_CHANNELS

name, scales = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
data = sys.argv[3] if len(sys.argv) > 3 else "/work/bench_val/data"
split = sys.argv[4] if len(sys.argv) > 4 else "val"
model, info = load_shipped(name); model.eval()
model.feature_cache = FeatureCache("/work/bench/feature_cache")
head = model.box_head
base = head.work_size
orig = head.forward

def forward(embedding, attention, canvas, priors=None, render=None, *, return_attention=False):
    out = orig(embedding, attention, canvas, priors, render, return_attention=return_attention)
    maps, att = (out if return_attention else (out, None))
    acc = maps.clone()
    for s in scales:
        if s == base: continue
        head.work_size = s
        try:
            m = orig(embedding, attention, canvas, priors, render)
        finally:
            head.work_size = base
        r = maps.shape[-1] / m.shape[-1]
        m = F.interpolate(m, size=maps.shape[-2:], mode="bilinear", align_corners=False)
        m[:, BOX_CHANNELS.start:BOX_CHANNELS.start + 2] *= r
        m[:, BOX_CHANNELS.start + 2:BOX_CHANNELS.stop] += math.log(r)
        acc += m
    n = len([s for s in scales if s != base]) + 1
    acc /= n
    return (acc, att) if return_attention else acc

head.forward = forward
records, root = read_dataset(data, split=split)
summary = evaluate(model, records, root=root, size=256, progress=False)
o = summary["overall"]
print(json.dumps({"name": name, "scales": scales, "dice": round(o["dice"], 4), "neg_fp": summary["negative_fp_rate"],
                  "subsets": {k: round(v["dice"], 4) for k, v in summary["subsets"].items() if v.get("dice") is not None}}))
