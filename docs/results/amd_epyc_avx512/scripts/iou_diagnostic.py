"""Does the decoder's predicted IoU tell a right box from a wrong one? (val split)

Exploratory (stop 41), not part of the package; run with the repository's venv:
    python iou_diagnostic.py CHECKPOINT DATA CACHE SPLIT
"""
import sys, json
import numpy as np, torch
from torch.utils.data import DataLoader
from medseg_r.data.datasets import SegmentationDataset, collate
from medseg_r.data.readers import read_dataset
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.geometry import from_canvas
from scipy.stats import mannwhitneyu
def roc_auc_score(y, s):
    y = np.asarray(y, bool); s = np.asarray(s)
    if y.all() or (~y).all(): return float('nan')
    return mannwhitneyu(s[y], s[~y]).statistic / (y.sum() * (~y).sum())
ck, data, cache, split = sys.argv[1:5]
records, root = read_dataset(data, split=split)
model = load_model(ck); model.eval()
model.feature_cache = FeatureCache(cache)
loader = DataLoader(SegmentationDataset(records, root=root, size=model.img_size), batch_size=8, collate_fn=collate)
rows = []
with torch.no_grad():
    for batch in loader:
        enc = model.encode_inputs(batch["image"], batch["report"])
        truths = batch["mask"].numpy()[:, 0] > 0.5
        for b in range(len(batch["id"])):
            bp = enc.boxes[b] if enc.boxes is not None else None
            if bp is None: continue
            for k in range(len(bp)):
                low, iou = model.decode(enc.embeddings[b:b+1], frame=enc.frame, box_prompts=[bp[k:k+1]])
                m = from_canvas(low, enc.frame)[0, 0].numpy() > 0
                hit = bool((m & truths[b]).any())
                inter = (m & truths[b]).sum(); area = m.sum()
                rows.append({"iou_pred": float(iou[0, 0]), "hit": hit, "rank": k, "n": len(bp), "prec": float(inter / max(area, 1)), "area": int(area)})
hits = np.array([r["hit"] for r in rows]); ip = np.array([r["iou_pred"] for r in rows])
print("boxes", len(rows), "hit rate", hits.mean().round(3))
print("AUC iou_pred vs hit", round(roc_auc_score(hits, ip), 3))
print("mean iou_pred hit / miss", ip[hits].mean().round(3), ip[~hits].mean().round(3))
first = np.array([r["rank"] == 0 for r in rows])
print("AUC, first boxes only", round(roc_auc_score(hits[first], ip[first]), 3), "hit rate first", hits[first].mean().round(3), "later", hits[~first].mean().round(3))
