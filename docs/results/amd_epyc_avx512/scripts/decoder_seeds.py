"""The shipped localisers (seed 0) with the decoder of each decoder_boxes run given, rounded to fp16
as a shipped decoder is, scored on the accuracy benchmark's test split: how much the figures of the
shipped files depend on the decoder's training seed.

    python docs/results/amd_epyc_avx512/scripts/decoder_seeds.py DIR DIR/runs/decoder_boxes_seed1/model.ckpt ...
"""
import json
import os
import sys

from medseg_r.checkpoint import load_model
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped

NAMES = ("litemedsam_phantom", "litemedsam_phantom_none", "litemedsam_phantom_text_token")
SUBSETS = ("small", "by_location", "by_texture", "by_shape", "phrasing_new", "phrasing_known")


def main() -> None:
    out, runs = sys.argv[1], sys.argv[2:]
    test, root = read_dataset(os.path.join(out, "data"), split="test")
    for run in runs:
        decoder = {k: v.half().float()
                   for k, v in load_model(run).sam.mask_decoder.state_dict().items()}
        for name in NAMES:
            model, _ = load_shipped(name)
            model.sam.mask_decoder.load_state_dict(decoder)
            model.feature_cache = FeatureCache(os.path.join(out, "feature_cache"))
            summary = evaluate(model, test, root=root, size=256)
            print(json.dumps({"decoder": run, "localiser": name,
                              "dice": round(summary["overall"]["dice"], 4),
                              "negative_fp_rate": summary["negative_fp_rate"],
                              **{s: round(summary["subsets"][s]["dice"], 4) for s in SUBSETS}}),
                  flush=True)


if __name__ == "__main__":
    main()
