"""Per-case scores of the shipped files on the accuracy benchmark's test split (where_medseg_r_loses.py
reads them): python percase_shipped.py TAG [NAME ...] writes /work/bench/eval_TAG_NAME (cases.csv,
predictions). /work/bench is shipped_scores' --out (its data and feature cache)."""
import sys

from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped

tag = sys.argv[1]
names = sys.argv[2:] or ["litemedsam_phantom", "litemedsam_phantom_none",
                         "litemedsam_phantom_text_token"]
test, root = read_dataset("/work/bench/data", split="test")
for name in names:
    model = load_shipped(name)[0]
    model.feature_cache = FeatureCache("/work/bench/feature_cache")
    evaluate(model, test, root=root, size=256, out_dir=f"/work/bench/eval_{tag}_{name}",
             save_predictions=True)
