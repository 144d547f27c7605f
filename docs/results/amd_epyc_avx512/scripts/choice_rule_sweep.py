"""The choice-rule sweep of stop 48 (choice_rule_val.md), kept as it ran. It needs a copy of the
package with choice_rule_variants.patch applied (environment variables MSR_WHERE_POW,
MSR_FIT_POW and MSR_FIT_POOL change boxes_from_map's score; unset, the copy behaves as shipped):

    git archive HEAD medseg_r | tar -x -C SNAP
    patch -d SNAP -p1 < docs/results/amd_epyc_avx512/scripts/choice_rule_variants.patch
    PYTHONPATH=SNAP python choice_rule_sweep.py BENCH/runs/medseg_r_attr_tuned_seed0/model.ckpt val \
        base MSR_WHERE_POW=0.5 MSR_WHERE_POW=0.25 MSR_FIT_POW=2 MSR_FIT_POW=3 MSR_FIT_POOL=3 \
        MSR_WHERE_POW=0.5,MSR_FIT_POW=2 MSR_WHERE_POW=0.5,MSR_FIT_POOL=3 MSR_FIT_POW=2,MSR_FIT_POOL=3

The data and feature cache are that machine's benchmark folder (/work/bench = the accuracy
benchmark's --out)."""
import os, sys, json, time, torch
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.feature_cache import FeatureCache
ckpt, split = sys.argv[1], sys.argv[2]
variants = [dict(v.split("=") for v in arg.split(",")) if arg != "base" else {} for arg in sys.argv[3:]]
records, root = read_dataset("/work/bench/data", split=split)
model = load_model(ckpt); model.feature_cache = FeatureCache("/work/bench/feature_cache")
for var in variants:
    for k in ("MSR_WHERE_POW", "MSR_FIT_POW", "MSR_FIT_POOL"): os.environ.pop(k, None)
    os.environ.update(var)
    t = time.time()
    with torch.no_grad():
        s = evaluate(model, records, root=root, size=model.img_size)
    sub = {k: (None if v["dice"] is None else round(v["dice"], 3)) for k, v in s["subsets"].items() if k in ("small", "by_location", "by_texture", "by_shape", "phrasing_new", "phrasing_known")}
    print(json.dumps({"ckpt": ckpt.split("/")[-2], "split": split, "var": var, "dice": round(s["overall"]["dice"], 4), **sub, "s": round(time.time() - t)}), flush=True)
