"""What the parser's misses on new words cost (known_rephrased_test.md, stop 50).

Exploratory, not part of the package; run with the repository's venv from outside the repository:
    python known_rephrased.py BENCH OUT [ROW[:SEED] ...]
BENCH: the accuracy benchmark's --out (its data/, feature_cache/ and runs/; seed 0 unless a row
says another). Writes
OUT/data: the test split of BENCH/data with every described lesion's sentence of a
``phrasing_new`` case written again from the training phrasing bank (``KNOWN``: the same side,
zone, texture, shape and noun kind; a size word where the original had one, a shape word where it
had one), the images, masks and every other sentence unchanged (negative cases, whose only new
sentence is the negation, are left as they are). Then scores each ROW's ``*_tuned`` model of that seed on
the original and on the rewritten test split (the same images and lesions) and prints Dice overall
and on ``phrasing_new`` / ``phrasing_known``.

    python known_rephrased.py --demo DEMO_OUT OUT
does the same for ``medseg-r demo``'s test split (DEMO_OUT: the demo's --out, with its data/ and
feature_cache/) and the three shipped models."""
import json
import os
import sys
import zlib

import numpy as np
import torch

from medseg_r.data.phantom.reports import KNOWN, describe
from medseg_r.data.readers import read_dataset
from medseg_r.engine.comparison import attach_cache
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model

demo = sys.argv[1] == "--demo"
args = sys.argv[2:] if demo else sys.argv[1:]
bench, out = args[0], args[1]
rows = (["medseg_r", "none", "text_token"] if demo
        else args[2:] or ["medseg_r_attr", "none_attr", "text_token_attr"])
data = os.path.join(out, "data")
os.makedirs(data, exist_ok=True)
for name in ("images", "masks"):
    if not os.path.exists(os.path.join(data, name)):
        os.symlink(os.path.realpath(os.path.join(bench, "data", name)), os.path.join(data, name))
with open(os.path.join(bench, "data", "dataset.json")) as f:
    meta = json.load(f)
with open(os.path.join(data, "dataset.json"), "w") as f:
    json.dump(meta, f)
mm_per_px = float(meta["mm_per_px"])
rewritten = 0
with open(os.path.join(bench, "data", "manifest.jsonl")) as src, \
        open(os.path.join(data, "manifest.jsonl"), "w") as dst:
    for line in src:
        case = json.loads(line)
        if case["split"] != "test":
            continue
        if case["phrasing"] == "new" and case["kind"] != "negative":
            rng = np.random.default_rng(zlib.crc32(case["id"].encode()))
            for lesion in case["lesions"]:
                if lesion.get("role") != "target" or not lesion.get("words"):
                    continue
                words = lesion["words"]
                for _ in range(50):  # the same attributes named, from the training bank
                    sentence, new_words = describe(lesion, mm_per_px=mm_per_px, bank=KNOWN, rng=rng,
                                                   with_size="size" in words,
                                                   with_shape="shape" in words)
                    if ("size" in new_words) == ("size" in words):
                        break
                assert lesion["sentence"] in case["report"], case["id"]
                case["report"] = case["report"].replace(lesion["sentence"], sentence, 1)
                lesion["sentence"], lesion["words"] = sentence, new_words
                rewritten += 1
            case["oov_words"] = []
        dst.write(json.dumps(case) + "\n")
print(f"{rewritten} target sentences rewritten", flush=True)
result = {}
for spec in rows:
    row, _, seed = spec.partition(":")
    if demo:  # the shipped files, as medseg-r demo scores them
        from medseg_r.engine.demo import SHIPPED
        from medseg_r.model.shipped import load_shipped

        name = f"shipped_{row}"
        model = attach_cache(load_shipped(SHIPPED[row])[0].eval(), os.path.join(bench, "feature_cache"),
                             row)
    else:
        name = f"{row}_tuned"
        model = attach_cache(load_model(os.path.join(bench, "runs", f"{name}_seed{seed or 0}",
                                                     "model.ckpt")).eval(),
                             os.path.join(bench, "feature_cache"), name)
        name = f"{name}_seed{seed or 0}"
    for label, folder in (("original", os.path.join(bench, "data")), ("rewritten", data)):
        records, root = read_dataset(folder, split="test")
        with torch.no_grad():
            s = evaluate(model, records, root=root, size=256)
        result.setdefault(name, {})[label] = {
            "dice": s["overall"]["dice"], "phrasing_new": s["subsets"]["phrasing_new"]["dice"],
            "phrasing_known": s["subsets"]["phrasing_known"]["dice"],
            **{k: s["subsets"][k]["dice"] for k in ("by_location", "by_texture", "by_shape", "small")},
            "neg_fp_rate": s.get("negative_fp_rate")}
        print(name, label, json.dumps({k: round(v, 4) for k, v in result[name][label].items()}), flush=True)
with open(os.path.join(out, f"known_rephrased_{'_'.join(rows).replace(':', 's')}.json"), "w") as f:
    json.dump(result, f, indent=1)
