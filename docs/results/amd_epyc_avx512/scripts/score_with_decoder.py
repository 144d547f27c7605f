"""Score shipped weights with the pretrained decoder and with fine-tuned decoders, box_fill values.

Exploration of stop 46, kept as it ran (the default paths are that machine's benchmark folder,
/work/bench = the accuracy benchmark's --out); the package's own way is the decoder_boxes row."""
import argparse, json, torch
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped

p = argparse.ArgumentParser()
p.add_argument("--data", default="/work/bench/data")
p.add_argument("--cache", default="/work/bench/feature_cache")
p.add_argument("--split", default="val")
p.add_argument("--names", nargs="+", default=["litemedsam_phantom"])
p.add_argument("--decoders", nargs="+", default=["pretrained"])
p.add_argument("--fill", nargs="+", type=float, default=[0.45])
args = p.parse_args()
records, root = read_dataset(args.data, split=args.split)
SUB = ("small", "low_contrast", "by_location", "by_texture", "by_shape", "phrasing_new", "phrasing_known")
for name in args.names:
    for dec in args.decoders:
        model, _ = load_shipped(name)
        if dec != "pretrained":
            model.sam.mask_decoder.load_state_dict(torch.load(dec))
        model.feature_cache = FeatureCache(args.cache)
        for fill in args.fill:
            model.config = model.config.replace(box_fill=fill)
            s = evaluate(model, records, root=root, size=256)
            sub = {k: round(s["subsets"][k]["dice"], 3) for k in SUB if s["subsets"].get(k, {}).get("dice") is not None}
            print(json.dumps({"name": name, "decoder": dec, "box_fill": fill, "split": args.split,
                              "dice": round(s["overall"]["dice"], 4), "negfp": s["negative_fp_rate"], **sub}), flush=True)
