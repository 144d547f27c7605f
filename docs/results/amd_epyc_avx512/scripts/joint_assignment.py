"""Experiment: joint (Hungarian) assignment of findings to candidate lesions instead of greedy.

Exploratory (stop 41), not part of the package; run with the repository's venv:
    python joint_assignment.py CHECKPOINT DATA CACHE SPLIT greedy joint
"""
import sys, json, time
import numpy as np, torch
from scipy.optimize import linear_sum_assignment
import medseg_r.model.box_prompts as BP
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped, shipped_names

orig = BP.boxes_from_map
EXTRA = 4

def joint_regions(scores, extent, counts, region, max_boxes):
    n = scores.shape[0]
    left = [max(1, int(c)) for c in counts]
    need = min(sum(left), max_boxes)
    peaks = scores.reshape(n, -1).max(1)
    norm = np.where(peaks[:, None, None] > 0, scores / np.maximum(peaks, 1e-30)[:, None, None], 0)
    combined = norm.max(0)
    taken = np.zeros(extent.shape, bool)
    cands, cols = [], []
    while len(cands) < need + EXTRA:
        masked = np.where(taken, -1.0, combined)
        py, px = np.unravel_index(int(np.argmax(masked)), masked.shape)
        if masked[py, px] <= 0:
            break
        cells = BP._region_box(extent, (py, px), region)
        look = cells & ~taken
        look[py, px] = True
        cols.append(np.where(look[None], scores, 0).reshape(n, -1).max(1))
        BP._take(taken, cells)
        cands.append(cells)
    if not cands:
        return [], np.full(n, np.inf), np.zeros(extent.shape, bool)
    S = np.stack(cols, 1)  # [n, C]
    rows = [i for i in range(n) for _ in range(left[i])]
    cost = -np.log(S[rows] + 1e-30)
    r, c = linear_sum_assignment(cost)
    pairs = sorted(((S[rows[a], b], rows[a], b) for a, b in zip(r, c) if S[rows[a], b] > 0), reverse=True)[:max_boxes]
    best = np.full(n, np.inf)
    taken = np.zeros(extent.shape, bool)
    regions = []
    for s, i, b in pairs:
        regions.append(cands[b]); BP._take(taken, cands[b]); best[i] = min(best[i], s)
    return regions, best, taken

def joint_boxes(logits, *, canvas, threshold, max_boxes, margin=1.0, findings=None, region=0.5, hedge=0.0):
    if findings is None or all(f is None for f in findings):
        return orig(logits, canvas=canvas, threshold=threshold, max_boxes=max_boxes, margin=margin, findings=findings, region=region, hedge=hedge)
    maps = logits.detach().float()
    where = torch.softmax(maps[:, BP.WHERE].flatten(1), dim=1).view_as(maps[:, BP.WHERE]).cpu().numpy()
    extent = torch.sigmoid(maps[:, BP.EXTENT]).cpu().numpy()
    regression = maps[:, BP.BOX_CHANNELS].cpu().numpy() if maps.shape[1] >= 6 else None
    cell = canvas / extent.shape[-1]
    out = []
    for b in range(maps.shape[0]):
        given = findings[b]
        if given is None:
            out.append(orig(logits[b:b+1], canvas=canvas, threshold=threshold, max_boxes=max_boxes, margin=margin, findings=None, region=region, hedge=hedge)[0]); continue
        regions = []
        if not BP._flat(where[b]) and len(given[1]):
            prior = given[0].detach().float().cpu().numpy()
            scores = where[b][None] * (BP.WHERE_FLOOR + (1 - BP.WHERE_FLOOR) * prior)
            if len(given) > 2 and given[2] is not None:
                scores = scores * given[2].detach().float().cpu().numpy()
            regions, best, taken = joint_regions(scores, extent[b], given[1], region, max_boxes)
            if hedge > 0 and np.isfinite(best).any():
                regions += BP._hedges(scores, best * hedge, extent[b], taken, threshold=threshold, region=region, room=max_boxes - len(regions))
        own = None if regression is None else regression[b]
        boxes = [BP._cells_box(c, extent=extent[b], regression=own, cell=cell, margin=margin) for c in regions]
        out.append(torch.tensor(boxes, dtype=torch.float32, device=logits.device).reshape(-1, 4).clamp(0, canvas))
    return out

ck, data, cache, split = sys.argv[1:5]
records, root = read_dataset(data, split=split)
model = load_shipped(ck)[0] if ck in shipped_names() else load_model(ck)
model.feature_cache = FeatureCache(cache)
for name in sys.argv[5:]:
    BP.boxes_from_map = orig if name == "greedy" else joint_boxes
    t0 = time.time()
    with torch.no_grad():
        s = evaluate(model, records, root=root, size=model.img_size)
    print(name, round(time.time() - t0), "dice", round(s["overall"]["dice"], 4), json.dumps({k: round(v["dice"], 4) if v["dice"] is not None else None for k, v in s["subsets"].items()}), flush=True)
