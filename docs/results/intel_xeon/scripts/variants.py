import sys, torch, math
import medseg_r.model.encoding as enc
from medseg_r.benchmarks.hedge import sweep, render
from medseg_r.model.shipped import load_shipped
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.data.readers import read_dataset
from medseg_r.model.box_prompts import EXTENT, WHERE

def geometric(maps):
    return maps.float().mean(0)

def best_reading(maps):
    # the reading whose where distribution is most peaked (lowest entropy)
    R = maps.shape[0]
    p = torch.softmax(maps[:, WHERE].reshape(R, -1).float(), 1)
    ent = -(p * p.clamp_min(1e-12).log()).sum(1)
    return maps[int(ent.argmin())].float()

variant = sys.argv[1]
enc.pool_readings = {"geometric": geometric, "best": best_reading}[variant]
model = load_shipped("litemedsam_phantom")[0]
model.feature_cache = FeatureCache("/work/bench/feature_cache")
recs, root = read_dataset("/work/bench_val/side_only", split="val")
print(variant)
print(render(sweep(model, recs, root=root, values=[1.0], option="box_zones"), option="box_zones"))
