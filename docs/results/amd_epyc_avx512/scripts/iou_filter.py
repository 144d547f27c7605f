"""Experiment: drop predicted boxes whose decoder IoU prediction is below t (the best box always stays).

Exploratory (stop 41), not part of the package; run with the repository's venv:
    python iou_filter.py CHECKPOINT DATA CACHE SPLIT T [T ...]  (T = 0: no filter)
"""
import sys, json, time
import torch
import medseg_r.model.medseg_r as M
from medseg_r.model import decoding
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped, shipped_names
orig = decoding.decode
T = 0.0
def filtered(sam, embeddings, *, frame, box_prompts=None, boxes=None, **kw):
    if box_prompts is None or boxes is not None:
        return orig(sam, embeddings, frame=frame, box_prompts=box_prompts, boxes=boxes, **kw)
    lows, ious = [], []
    for b, bp in enumerate(box_prompts):
        sub = {kk: (v[b:b+1] if torch.is_tensor(v) and v.shape[0] == embeddings.shape[0] else v) for kk, v in kw.items()}
        if bp is None or len(bp) <= 1:
            l, i = orig(sam, embeddings[b:b+1], frame=frame, box_prompts=[bp], **sub)
        else:
            per = [orig(sam, embeddings[b:b+1], frame=frame, box_prompts=[bp[k:k+1]], **sub) for k in range(len(bp))]
            best = max(float(p[1][0, 0]) for p in per)
            keep = [p for p in per if float(p[1][0, 0]) >= T or float(p[1][0, 0]) == best]
            l = torch.cat([p[0] for p in keep]).amax(0, keepdim=True); i = torch.cat([p[1] for p in keep]).amax(0, keepdim=True)
        lows.append(l); ious.append(i)
    return torch.cat(lows), torch.cat(ious)
ck, data, cache, split = sys.argv[1:5]
ts = [float(x) for x in sys.argv[5:]]
records, root = read_dataset(data, split=split)
model = load_shipped(ck)[0] if ck in shipped_names() else load_model(ck)
model.feature_cache = FeatureCache(cache)
for t in ts:
    T = t
    M.decode = orig if t <= 0 else filtered
    t0 = time.time()
    with torch.no_grad():
        s = evaluate(model, records, root=root, size=model.img_size)
    print(t, round(time.time() - t0), json.dumps({k: round(v["dice"], 4) if v["dice"] is not None else None for k, v in s["subsets"].items()}), "dice", round(s["overall"]["dice"], 4), "negFP", s["negative_fp_rate"], flush=True)
