"""How much the localiser's box fit costs: per found described lesion, the fine-tuned decoder's
Dice with the predicted box against with the reference box (box_fit_val.md, stop 50).

Exploratory, not part of the package; run with the repository's venv from outside the repository:
    python box_fit.py CHECKPOINT DATA CACHE SPLIT [LIMIT [OUT.npy]]
CHECKPOINT: a *_tuned run's model.ckpt (localiser + fine-tuned decoder). A described lesion is a
4-connected component of the reference mask; it counts as found when a predicted box overlaps
its bounding box with IoU > 0.1; the mask of one box is scored against that lesion alone (the
other lesions' pixels are not counted as its false positives)."""
import sys, json, numpy as np, torch
from scipy import ndimage
from medseg_r.data.datasets import SegmentationDataset, collate
from medseg_r.data.readers import read_dataset
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.encoding import encode_inputs

ck, data, cache, split = sys.argv[1:5]
limit = int(sys.argv[5]) if len(sys.argv) > 5 else 10**9
records, root = read_dataset(data, split=split)
model = load_model(ck).eval()
model.feature_cache = FeatureCache(cache)
ds = SegmentationDataset(records[:limit], root=root, size=256)
rows = []
def iou(a, b):
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1); ih = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    i = iw * ih; return i / ((a[2]-a[0]+1)*(a[3]-a[1]+1) + (b[2]-b[0]+1)*(b[3]-b[1]+1) - i)
def dice(p, t):
    return 2 * (p & t).sum() / max(1, p.sum() + t.sum())
with torch.no_grad():
    for k in range(len(ds)):
        s = collate([ds[k]])
        truth = s["mask"][0, 0].numpy() > 0.5
        if not truth.any():
            continue
        enc = encode_inputs(model, s["image"], s["report"], cache=model.feature_cache, need_embedding=False)
        pred_boxes = enc.boxes[0].tolist()
        labels, n = ndimage.label(truth)
        for j, sl in enumerate(ndimage.find_objects(labels)):
            comp = labels == j + 1
            ref = [sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1]
            scored = [(iou(b, ref), b) for b in pred_boxes]
            best = max(scored, default=(0, None))
            if best[0] <= 0.1:
                rows.append([comp.sum(), best[0], np.nan, np.nan]); continue
            out = []
            for b in (best[1], ref):
                m = model(s["image"], [""], boxes=torch.tensor([b], dtype=torch.float32))["masks"][0, 0].numpy() > 0
                m &= ~((labels > 0) & ~comp)  # other lesions are not this lesion's error
                out.append(dice(m, comp))
            rows.append([comp.sum(), best[0]] + out)
r = np.array(rows, dtype=float)
np.save(sys.argv[6] if len(sys.argv) > 6 else "/tmp/bf/fit.npy", r)
f = ~np.isnan(r[:, 2])
print(len(r), "described components;", f.sum(), "boxed (IoU>0.1)")
print("mean lesion Dice: predicted box %.3f, reference box %.3f; median box IoU %.2f" % (r[f, 2].mean(), r[f, 3].mean(), np.median(r[f, 1])))
for lo, hi in [(0, 50), (50, 150), (150, 400), (400, 10**6)]:
    s = f & (r[:, 0] >= lo) & (r[:, 0] < hi)
    print(f"area {lo}-{hi}: n={s.sum()} pred {r[s,2].mean():.3f} ref {r[s,3].mean():.3f} box IoU {np.median(r[s,1]):.2f}")
