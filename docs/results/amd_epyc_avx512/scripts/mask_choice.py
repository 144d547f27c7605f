"""Experiment: choose each box's mask among the decoder's four outputs (inference only).

Exploratory (stop 45), not part of the package; written against commit 44a4223 (before the
package had box_fill), run with the repository's venv from outside the repository.
    python mask_choice.py CHECKPOINT DATA CACHE SPLIT RULE [RULE ...]
RULE: single (the default output) | iou (highest predicted IoU of the four) |
fill:F (among outputs with predicted IoU >= 0.8 * best, the one whose share of the box it fills is
closest to F) | largest:T (the largest output inside the box with predicted IoU >= T * best)."""
import json, sys, time
import numpy as np, torch
import medseg_r.model.medseg_r as MR
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.shipped import load_shipped, shipped_names
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.geometry import scale_boxes

orig = MR.decode
RULE = "single"
CHOSEN = []


def choose(low, iou, box, canvas):
    """low [4, H, W] logits, iou [4], box (x0, y0, x1, y1) canvas px -> index."""
    if RULE == "single":
        return 0
    if RULE == "iou":
        return int(iou.argmax())
    H = low.shape[-1]
    s = H / canvas
    x0, y0, x1, y1 = [float(v) * s for v in box]
    inside = torch.zeros_like(low[0], dtype=torch.bool)
    inside[max(0, int(y0)):int(y1) + 1, max(0, int(x0)):int(x1) + 1] = True
    area_box = float(inside.sum()) or 1.0
    pos = low > 0
    fill = (pos & inside).flatten(1).sum(1).float() / area_box
    name, value = RULE.split(":")
    value = float(value)
    if name == "fillany":  # the output whose fill of the box is closest to value, any IoU
        return int((fill - value).abs().argmin())
    if name == "under":  # the single output unless it fills less than value of its box: then the fullest
        return 0 if float(fill[0]) >= value else int(fill.argmax())
    if name == "under1":  # as under, but only output 1 as the alternative
        return 0 if float(fill[0]) >= value or float(fill[1]) <= float(fill[0]) else 1
    ok = iou >= (0.8 if name == "fill" else value) * iou.max()
    ok[0] = True
    if name == "fill":
        score = -(fill - value).abs()
    else:
        score = fill.clone()
    score[~ok] = -1e9
    return int(score.argmax())


def patched(sam, embeddings, *, frame, prompts=None, priors=None, location_map=None, text_tokens=None,
            boxes=None, points=None, multimask_output=False, detach_iou_input=False, box_prompts=None):
    active = prompts is not None and (prompts.uses_dense or prompts.uses_token or prompts.uses_extra_token)
    if box_prompts is None or active or text_tokens is not None or boxes is not None or points is not None:
        return orig(sam, embeddings, frame=frame, prompts=prompts, priors=priors, location_map=location_map,
                    text_tokens=text_tokens, boxes=boxes, points=points, multimask_output=multimask_output,
                    detach_iou_input=detach_iou_input, box_prompts=box_prompts)
    pe = sam.prompt_encoder.get_dense_pe()
    canvas = frame.size
    masks, ious = [], []
    for b in range(embeddings.shape[0]):
        box = box_prompts[b]
        if box is None or not len(box):
            low, iou = orig(sam, embeddings[b:b + 1], frame=frame, box_prompts=None)
            masks.append(low); ious.append(iou); continue
        box = box.to(embeddings)
        sparse, dense = sam.prompt_encoder(points=None, boxes=box, masks=None)
        low, iou = sam.mask_decoder.predict_masks(image_embeddings=embeddings[b:b + 1], image_pe=pe,
                                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense)
        picked = []
        for j in range(low.shape[0]):
            k = choose(low[j], iou[j], box[j].tolist(), canvas)
            CHOSEN.append(k)
            picked.append((low[j, k:k + 1], iou[j, k:k + 1]))
        lo = torch.stack([p[0] for p in picked]).amax(0)
        io = torch.stack([p[1] for p in picked]).amax(0)
        masks.append(lo[None]); ious.append(io[None])
    return torch.cat(masks), torch.cat(ious)


MR.decode = patched
ck, data, cache, split = sys.argv[1:5]
records, root = read_dataset(data, split=split)
model = load_shipped(ck)[0] if ck in shipped_names() else load_model(ck)
model.feature_cache = FeatureCache(cache)
for RULE in sys.argv[5:]:
    CHOSEN.clear()
    t0 = time.time()
    with torch.no_grad():
        s = evaluate(model, records, root=root, size=model.img_size)
    print(RULE, round(time.time() - t0), "dice", round(s["overall"]["dice"], 4),
          json.dumps({k: round(v["dice"], 4) if v["dice"] is not None else None for k, v in s["subsets"].items()}),
          "chosen", np.bincount(CHOSEN, minlength=4).tolist(), flush=True)
