"""Which lesion each box MedSeg-R chose lands on (T: a described target, m: a lesion the report mentions as not the target, u: undescribed, -: none), per test case of a phantom folder, with the case Dice; summary by subset. python boxes_on_lesions.py /work/bench [SHIPPED_NAME] (the folder of shipped_scores --out: data/ and feature_cache/). Stop 54: on the benchmark test split, 360 positive cases, boxes T 350, - 95, m 56, u 3; 74 cases box no target (Dice ~0)."""
import json, sys, csv
import numpy as np, torch
from PIL import Image
from medseg_r.model.shipped import load_shipped
from medseg_r.model.feature_cache import FeatureCache
root = sys.argv[1]; name = sys.argv[2] if len(sys.argv) > 2 else "litemedsam_phantom"
rows = [json.loads(l) for l in open(f"{root}/data/manifest.jsonl")]
rows = [r for r in rows if r.get("split") == "test"]
model, info = load_shipped(name); model.eval()
model.feature_cache = FeatureCache(f"{root}/feature_cache")
out = []
for r in rows:
    img = np.asarray(Image.open(f"{root}/data/{r['image']}").convert("RGB"), dtype=np.float32) / 255
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    with torch.no_grad():
        enc = model.encode_inputs(x, [r["report"]], feature_cache=model.feature_cache)
        dec = model.decode_encoded(enc)
    boxes = (enc.boxes[0] / enc.frame.scale).numpy() if enc.boxes is not None else np.zeros((0, 4))
    pred = (dec["masks"][0, 0] > 0).numpy()
    truth = np.asarray(Image.open(f"{root}/data/{r['mask']}")) > 0
    hits = []
    for b in boxes:
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        best = None; hit_i = None
        for i, l in enumerate(r["lesions"]):
            x0, y0, x1, y1 = l["bbox"]
            if x0 - 3 <= cx <= x1 + 3 and y0 - 3 <= cy <= y1 + 3:
                best = "T" if l.get("described") else ("m" if l.get("role") == "mentioned" else "u"); hit_i = i
        tc=[((l["bbox"][0]+l["bbox"][2])/2,(l["bbox"][1]+l["bbox"][3])/2) for l in r["lesions"] if l.get("described")]; dist=min([float(np.hypot(cx-a,cy-b_)) for a,b_ in tc] or [-1]); hits.append((best or "-", hit_i, round(float(b[2]-b[0])), round(float(b[3]-b[1])), round(dist,1)))
    inter = (pred & truth).sum(); d = 2 * inter / max(pred.sum() + truth.sum(), 1)
    out.append(dict(id=r["id"], tags=r["tags"], dice=float(d), boxes=hits, ntarget=sum(bool(l.get("described")) for l in r["lesions"]),
                    sizes=[(l["role"] if "role" in l else "", round(l["size_px"],1), tuple(np.subtract(l["bbox"][2:], l["bbox"][:2]))) for l in r["lesions"]]))
json.dump(out, open(f"boxes_{name}_{root.strip('/').replace('/', '_')}.json", "w"), default=str)
from collections import Counter
for tag in ["by_location", "by_texture", "by_shape", "small", None]:
    sel = [o for o in out if tag is None or tag in o["tags"]]
    sel = [o for o in sel if o["ntarget"]]
    c = Counter()
    for o in sel:
        kinds = [h[0] for h in o["boxes"]]
        c["cases"] += 1
        c["target_boxed"] += "T" in kinds
        c["wrong_box"] += any(k != "T" for k in kinds)
        c["no_box"] += not kinds
        c["all_targets_boxed"] += kinds.count("T") >= o["ntarget"]
    print(tag, dict(c), "dice %.3f" % np.mean([o["dice"] for o in sel]))
