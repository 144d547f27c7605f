"""Diagnostic: regressed box sides against the reference lesion each box overlaps most (val split).

Exploratory (stop 45), not part of the package; written against commit 44a4223 (before the
package had box_fill), run with the repository's venv from outside the repository.
    python box_sizes.py CHECKPOINT DATA CACHE SPLIT OUT.npy"""
import sys, json
import numpy as np, torch
from torch.utils.data import DataLoader
from medseg_r.data.datasets import SegmentationDataset, collate
from medseg_r.data.readers import read_dataset
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.encoding import encode_inputs

ck, data, cache, split, out = sys.argv[1:6]
records, root = read_dataset(data, split=split)
model = load_model(ck).eval()
model.feature_cache = FeatureCache(cache)
manifest = {json.loads(l)["id"]: json.loads(l) for l in open(data + "/manifest.jsonl")}
rows = []
ds = SegmentationDataset(records, root=root, size=256, native=True)
with torch.no_grad():
    for k in range(len(ds)):
        s = collate([ds[k]])
        enc = encode_inputs(model, s["image"], s["report"], cache=model.feature_cache, need_embedding=False)
        rec = manifest[records[k].id]
        les = [l for l in rec["lesions"] if l["described"]]
        for box in enc.boxes[0].tolist():
            x0, y0, x1, y1 = box
            best, bi = 0, None
            for j, l in enumerate(les):
                a0, b0, a1, b1 = l["bbox"]
                iw = max(0, min(x1, a1) - max(x0, a0) + 1); ih = max(0, min(y1, b1) - max(y0, b0) + 1)
                inter = iw * ih
                u = (x1 - x0 + 1) * (y1 - y0 + 1) + (a1 - a0 + 1) * (b1 - b0 + 1) - inter
                if inter / u > best:
                    best, bi = inter / u, j
            if bi is None:
                rows.append([max(x1 - x0 + 1, y1 - y0 + 1), np.nan, 0, np.nan]); continue
            l = les[bi]; a0, b0, a1, b1 = l["bbox"]
            rows.append([max(x1 - x0 + 1, y1 - y0 + 1), max(a1 - a0 + 1, b1 - b0 + 1), best, l["cnr"]])
np.save(out, np.array(rows))
r = np.array(rows); m = r[:, 2] > 0.1
print(len(r), "boxes;", m.sum(), "on a described lesion (IoU>0.1)")
p, t = np.log(r[m, 0]), np.log(r[m, 1])
A = np.vstack([p, np.ones_like(p)]).T
coef = np.linalg.lstsq(A, t, rcond=None)[0]
print("log true side = %.3f * log pred side + %.3f" % tuple(coef))
for lo, hi in [(0, 8), (8, 14), (14, 22), (22, 32), (32, 100)]:
    s = m & (r[:, 1] >= lo) & (r[:, 1] < hi)
    print(f"true side {lo}-{hi}: n={s.sum()} median pred/true {np.median(r[s,0]/r[s,1]) if s.any() else float('nan'):.2f}")
for lo, hi in [(0, 8), (8, 14), (14, 22), (22, 32), (32, 100)]:
    s = m & (r[:, 0] >= lo) & (r[:, 0] < hi)
    print(f"pred side {lo}-{hi}: n={s.sum()} median true/pred {np.median(r[s,1]/r[s,0]) if s.any() else float('nan'):.2f}")
