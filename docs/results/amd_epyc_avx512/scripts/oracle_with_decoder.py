"""Oracle-box Dice on a split with the pretrained and (optionally) a fine-tuned decoder.

Exploration of stop 46, kept as it ran (the default paths are that machine's benchmark folder,
/work/bench = the accuracy benchmark's --out); the package's own way is the decoder_boxes row."""
import sys, numpy as np, torch
from scipy import ndimage
from medseg_r.backbones import build_backbone
from medseg_r.data.datasets import SegmentationDataset
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import case_metrics, summarise
from medseg_r.model import MedSegR
from medseg_r.model.feature_cache import FeatureCache

data, cache, split = sys.argv[1], sys.argv[2], sys.argv[3]
decoders = sys.argv[4:]
records, root = read_dataset(data, split=split)
ds = SegmentationDataset(records, root=root, size=256, native=True)
for dec in ["pretrained"] + decoders:
    model = MedSegR(build_backbone("litemedsam"), priors="none", matched_capacity=False, inject_at=[],
                    freeze="image_encoder").eval()
    model.feature_cache = FeatureCache(cache)
    if dec != "pretrained":
        model.sam.mask_decoder.load_state_dict(torch.load(dec))
    rows = []
    with torch.no_grad():
        for i in range(len(ds)):
            s = ds[i]
            truth = s["mask"][0].numpy() > 0.5
            pred = np.zeros_like(truth)
            labels, _ = ndimage.label(truth)
            boxes = [[sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1] for sl in ndimage.find_objects(labels)]
            for b in boxes:
                pred |= (model(s["image"][None], [""], boxes=torch.tensor([b], dtype=torch.float32))["masks"][0, 0] > 0).numpy()
            rows.append({"id": s["id"], "tags": s["tags"], **case_metrics(pred, truth)})
    summ = summarise(rows)
    print(dec, "oracle Dice", round(summ["overall"]["dice"], 4),
          {k: round(v["dice"], 3) for k, v in summ["subsets"].items() if v.get("dice") is not None}, flush=True)
