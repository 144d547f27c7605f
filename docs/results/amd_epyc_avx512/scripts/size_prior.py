"""Experiment: a finding's reported size (mm) sets its box's size (inference only).

Exploratory (stop 45), not part of the package; written against commit 44a4223 (before the
package had box_fill), run with the repository's venv from outside the repository.

    python size_prior.py CHECKPOINT DATA CACHE SPLIT MODE [MODE ...]
MODE: off | scale (the box scaled about its centre so its longer side is the reported size) |
blend (scaled by the square root of that factor).
"""
import json, math, sys, time
import numpy as np, torch
import medseg_r.model.box_prompts as BP
import medseg_r.model.encoding as EN
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache

orig_boxes, orig_priors = BP.boxes_from_map, EN.finding_priors
MM_PER_PX = float(json.load(open(sys.argv[2] + "/dataset.json"))["mm_per_px"])
MODE = "off"
STATS = {"sized": 0, "boxes": 0, "factor": []}


def priors_with_sizes(model, reports, frame, grid, box_map=None):
    out = orig_priors(model, reports, frame, grid, box_map)
    if out is None:
        return out
    scale = frame.scale if hasattr(frame, "scale") else 1.0
    sizes = [[(f.size_mm / MM_PER_PX * scale) if f.size_mm else float("nan") for f in r.positive_findings]
             for r in reports]
    return [tuple(o) + (None,) * (3 - len(o)) + (s,) for o, s in zip(out, sizes)]


def resize(box, side, mode):
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    longer = max(w, h, 1e-3)
    f = (side - 1) / longer
    if mode == "blend":
        f = math.sqrt(f)
    STATS["factor"].append(f)
    w, h = w * f, h * f
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def sized_boxes(logits, *, canvas, threshold, max_boxes, margin=1.0, findings=None, region=0.5, hedge=0.0):
    if findings is None or MODE == "off":
        f2 = None if findings is None else [None if g is None else tuple(g[:3]) for g in findings]
        return orig_boxes(logits, canvas=canvas, threshold=threshold, max_boxes=max_boxes, margin=margin,
                          findings=f2, region=region, hedge=hedge)
    maps = logits.detach().float()
    where = torch.softmax(maps[:, BP.WHERE].flatten(1), dim=1).view_as(maps[:, BP.WHERE]).cpu().numpy()
    extent = torch.sigmoid(maps[:, BP.EXTENT]).cpu().numpy()
    regression = maps[:, BP.BOX_CHANNELS].cpu().numpy() if maps.shape[1] >= 6 else None
    cell = canvas / extent.shape[-1]
    out = []
    for b in range(maps.shape[0]):
        given = findings[b]
        regions, owner = [], []
        if given is not None and not BP._flat(where[b]):
            prior = given[0].detach().float().cpu().numpy()
            scores = where[b][None] * (BP.WHERE_FLOOR + (1 - BP.WHERE_FLOOR) * prior)
            if given[2] is not None:
                scores = scores * given[2].detach().float().cpu().numpy()
            left = [max(1, int(c)) for c in given[1]]
            best = np.full(len(left), np.inf)
            taken = np.zeros_like(where[b], dtype=bool)
            while len(regions) < max_boxes and any(left):
                masked = np.where(taken[None], -1.0, scores)
                masked[[i for i, k in enumerate(left) if k == 0]] = -1.0
                i, py, px = np.unravel_index(int(np.argmax(masked)), masked.shape)
                if masked[i, py, px] <= 0:
                    break
                cells = BP._region_box(extent[b], (py, px), region)
                BP._take(taken, cells)
                regions.append(cells); owner.append(i)
                left[i] -= 1
                best[i] = min(best[i], masked[i, py, px])
            if hedge > 0 and np.isfinite(best).any():
                # which finding each hedge belongs to: the one scoring its peak cell highest relative to its floor
                more = BP._hedges(scores, best * hedge, extent[b], taken, threshold=threshold, region=region,
                                  room=max_boxes - len(regions))
                for cells in more:
                    rel = np.where(cells[None], scores, 0).reshape(len(left), -1).max(1) / np.maximum(best, 1e-30)
                    regions.append(cells); owner.append(int(np.argmax(rel)))
        own = None if regression is None else regression[b]
        boxes = [BP._cells_box(c, extent=extent[b], regression=own, cell=cell, margin=margin) for c in regions]
        sizes = given[3] if given is not None and len(given) > 3 else []
        for k, i in enumerate(owner):
            STATS["boxes"] += 1
            if i < len(sizes) and not math.isnan(sizes[i]):
                STATS["sized"] += 1
                boxes[k] = resize(boxes[k], sizes[i], MODE)
        out.append(torch.tensor(boxes, dtype=torch.float32, device=logits.device).reshape(-1, 4).clamp(0, canvas))
    return out


BP.boxes_from_map = sized_boxes
EN.finding_priors = priors_with_sizes
ck, data, cache, split = sys.argv[1:5]
records, root = read_dataset(data, split=split)
model = load_model(ck)
model.feature_cache = FeatureCache(cache)
for MODE in sys.argv[5:]:
    STATS.update(sized=0, boxes=0, factor=[])
    t0 = time.time()
    with torch.no_grad():
        s = evaluate(model, records, root=root, size=model.img_size)
    fac = np.array(STATS["factor"]) if STATS["factor"] else np.array([1.0])
    print(MODE, round(time.time() - t0), "dice", round(s["overall"]["dice"], 4),
          json.dumps({k: round(v["dice"], 4) if v["dice"] is not None else None for k, v in s["subsets"].items()}),
          f"sized {STATS['sized']}/{STATS['boxes']} factor median {np.median(fac):.2f} q10 {np.quantile(fac,.1):.2f} q90 {np.quantile(fac,.9):.2f}",
          flush=True)
