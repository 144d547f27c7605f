"""Fill the benchmark's feature cache with LiteMedSAM's embedding of each image of the given splits.

Exploration of stop 46, kept as it ran (the default paths are that machine's benchmark folder,
/work/bench = the accuracy benchmark's --out); the package's own way is the decoder_boxes row."""
import sys, time, torch
from medseg_r.backbones import build_backbone
from medseg_r.data.datasets import SegmentationDataset
from medseg_r.data.readers import read_dataset
from medseg_r.model import MedSegR
from medseg_r.model.feature_cache import FeatureCache

data, cache_dir = sys.argv[1], sys.argv[2]
splits = sys.argv[3:]
model = MedSegR(build_backbone("litemedsam"), priors="none", matched_capacity=False, inject_at=[],
                freeze="image_encoder").eval()
model.feature_cache = FeatureCache(cache_dir)
with torch.no_grad():
    for split in splits:
        records, root = read_dataset(data, split=split)
        ds = SegmentationDataset(records, root=root, size=256, native=True)
        t0 = time.time()
        for i in range(len(ds)):
            model.encode_inputs(ds[i]["image"][None], [""])
            if i % 100 == 0:
                print(split, i, len(ds), f"{time.time() - t0:.0f}s", flush=True)
        print(split, "done", len(ds), f"{time.time() - t0:.0f}s", model.feature_cache.misses, flush=True)
