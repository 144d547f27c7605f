"""Experiment: one box-refinement pass (decode each predicted box, re-box its mask, decode again).

Exploratory (stop 41), not part of the package; run with the repository's venv:
    python box_refinement.py CHECKPOINT DATA CACHE SPLIT [PAD_PX]
"""
import sys, json, time
import numpy as np, torch
import medseg_r.model.medseg_r as M
from medseg_r.model import decoding
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped, shipped_names

orig = decoding.decode
PAD = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0

def refined(sam, embeddings, *, frame, box_prompts=None, boxes=None, **kw):
    if box_prompts is None or boxes is not None:
        return orig(sam, embeddings, frame=frame, box_prompts=box_prompts, boxes=boxes, **kw)
    new = []
    for b, bp in enumerate(box_prompts):
        if bp is None or len(bp) == 0:
            new.append(bp); continue
        out = []
        for k in range(len(bp)):
            low, _ = orig(sam, embeddings[b:b+1], frame=frame, box_prompts=[bp[k:k+1]], **{kk: (v[b:b+1] if torch.is_tensor(v) and v.shape[0] == embeddings.shape[0] else v) for kk, v in kw.items()})
            m = low[0, 0] > 0
            if m.sum() < 1:
                out.append(bp[k]); continue
            scale = 256 / m.shape[-1]
            ys, xs = torch.nonzero(m, as_tuple=True)
            nb = torch.tensor([xs.min() * scale - PAD, ys.min() * scale - PAD, (xs.max() + 1) * scale - 1 + PAD, (ys.max() + 1) * scale - 1 + PAD], dtype=bp.dtype, device=bp.device).clamp(0, 256)
            out.append(nb)
        new.append(torch.stack(out))
    return orig(sam, embeddings, frame=frame, box_prompts=new, boxes=boxes, **kw)

ck, data, cache, split = sys.argv[1:5]
records, root = read_dataset(data, split=split)
model = load_shipped(ck)[0] if ck in shipped_names() else load_model(ck)
model.feature_cache = FeatureCache(cache)
res = {}
for name in ("plain", "refined"):
    M.decode = orig if name == "plain" else refined
    t = time.time()
    with torch.no_grad():
        s = evaluate(model, records, root=root, size=model.img_size)
    res[name] = {"dice": s["overall"]["dice"], **{k: v["dice"] for k, v in s["subsets"].items()}}
    print(name, round(time.time() - t), json.dumps({k: (round(v, 4) if v is not None else None) for k, v in res[name].items()}), flush=True)
