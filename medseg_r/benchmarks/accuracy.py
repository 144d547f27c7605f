"""MedSeg-R against its baselines and ablations on the phantom benchmark, over several seeds.

    python -m medseg_r.benchmarks.accuracy                       # full: 3 seeds, all rows (hours on a CPU)
    python -m medseg_r.benchmarks.accuracy --n 500 --epochs 2 --seeds 0 1 2 --rows medseg_r none text_token

Rows (all on ``sam_tiny`` at 256 px, trained from scratch with the same budget per seed):
``medseg_r``, ``none`` (same backbone, no report), ``text_token`` (naive sentence-token baseline), and the
ablations ``no_spatial_attention``, ``no_dynamic_conv``, ``no_deformable``, ``no_location_map``.
Pretrained rows (``--rows ... litemedsam_medseg_r litemedsam_oracle_box``): MedSeg-R on LiteMedSAM with the
image encoder frozen (priors + decoder trained), against LiteMedSAM itself given the ground-truth bounding
box of each described lesion (MedSAM's oracle-box protocol; no training, no report).
Generalisation: each trained ``medseg_r`` is also evaluated on phantom data generated with another seed
(its test split, held-out phrasings), and the difference is reported.
Figures: mean +/- standard deviation over seeds, each seed's overall Dice and their median, and MedSeg-R minus
each baseline seed by seed; the same data set (seed 0 generation) for every row. Every run is scored with its
weights at the end of the budget (``--model-weights last``; ``best`` picks the best validation Dice, which
rewards an early all-empty answer because empty is right on the negative validation cases).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Dict, List

import numpy as np
import torch

from ..data.phantom import make_phantom
from ..data.readers import read_dataset
from ..engine.evaluate import SUBSETS, case_metrics, evaluate, summarise
from ..engine.task import LOSSES
from ..engine.train import TrainConfig, train
from ..io import atomic_write
from ..runtime import keep_freed_memory

ROWS = {
    "medseg_r": ("sam_tiny", {}),
    "none": ("sam_tiny", {"priors": "none"}),
    "text_token": ("sam_tiny", {"priors": "text_token"}),
    "no_spatial_attention": ("sam_tiny", {"spatial_attention": False}),
    "no_dynamic_conv": ("sam_tiny", {"dynamic_conv": False}),
    "no_deformable": ("sam_tiny", {"deformable": False}),
    "no_location_map": ("sam_tiny", {"location_map": False}),
    "litemedsam_medseg_r": ("litemedsam", {"freeze": "image_encoder"}),
}
ORACLE = "litemedsam_oracle_box"


@torch.no_grad()
def oracle_box(records, root: str) -> Dict[str, object]:
    """Pretrained LiteMedSAM given the bounding box of each connected component of the reference mask."""
    from scipy import ndimage

    from ..backbones import build_backbone
    from ..data.datasets import SegmentationDataset
    from ..model import MedSegR

    model = MedSegR(build_backbone("litemedsam"), priors="none").eval()
    ds = SegmentationDataset(records, root=root, size=256)
    rows = []
    for i in range(len(ds)):
        sample = ds[i]
        truth = sample["mask"][0].numpy() > 0.5
        pred = np.zeros_like(truth)
        labels, n = ndimage.label(truth)
        for sl in ndimage.find_objects(labels):
            box = torch.tensor([[sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1]], dtype=torch.float32)
            pred |= (model(sample["image"][None], [""], boxes=box)["masks"][0, 0] > 0).numpy()
        rows.append({"id": sample["id"], "tags": sample["tags"], **case_metrics(pred, truth)})
    return summarise(rows)


def _trained(cfg: TrainConfig):
    """Train ``cfg`` or, when a finished run with the same configuration is in ``cfg.out``, reuse it.

    An interrupted run continues from its last epoch checkpoint (``resume="auto"``), so a killed benchmark
    can be restarted with the same command without changing any figure."""
    from dataclasses import asdict

    from ..backbones.weights import torch_load
    from ..model import load_model

    path = os.path.join(cfg.out, "model.ckpt")
    if os.path.isfile(path):
        saved = dict(torch_load(path).get("extra", {}).get("train_config") or {})
        wanted = asdict(cfg)
        saved.pop("resume", None), wanted.pop("resume", None)
        if saved == wanted:
            print(f"reusing finished run {cfg.out}", flush=True)
            return load_model(path)
    return load_model(train(cfg)["model"])


def _mean_std(values: List[float]) -> Dict[str, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None}
    # One seed has no spread: std is None (printed as the mean alone), not a misleading 0.
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def aggregate(per_seed: List[Dict[str, object]]) -> Dict[str, object]:
    out = {"dice_per_seed": [s["overall"]["dice"] for s in per_seed],
           "dice_median": float(np.median([s["overall"]["dice"] for s in per_seed])),
           "overall": {k: _mean_std([s["overall"][k] for s in per_seed]) for k in ("dice", "iou", "hd95")},
           "subsets": {sub: _mean_std([s["subsets"][sub]["dice"] for s in per_seed]) for sub in SUBSETS},
           "negative_fp_rate": _mean_std([s["negative_fp_rate"] for s in per_seed]),
           "small_sensitivity": _mean_std([s["overall"]["small_sensitivity"] for s in per_seed])}
    if all("generalisation" in s for s in per_seed):
        out["generalisation_dice"] = _mean_std([s["generalisation"]["overall"]["dice"] for s in per_seed])
    return out


def _fmt(ms: Dict[str, float | None], digits: int = 3) -> str:
    if ms["mean"] is None:
        return "-"
    if ms["std"] is None:
        return f"{ms['mean']:.{digits}f}"
    return f"{ms['mean']:.{digits}f}±{ms['std']:.{digits}f}"


def table(results: Dict[str, Dict[str, object]]) -> str:
    cols = (["Dice", "IoU", "HD95"] + [f"Dice {s}" for s in SUBSETS] + ["small sens.", "neg. FP"]
            + ["Dice per seed", "median"])
    lines = ["| row | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        vals = [_fmt(r["overall"]["dice"]), _fmt(r["overall"]["iou"]), _fmt(r["overall"]["hd95"], 1)]
        vals += [_fmt(r["subsets"][s]) for s in SUBSETS]
        vals += [_fmt(r["small_sensitivity"]), _fmt(r["negative_fp_rate"])]
        vals += [", ".join(f"{d:.3f}" for d in r.get("dice_per_seed", [])), f"{r.get('dice_median', float('nan')):.3f}"]
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def margins(per_seed: Dict[str, List[Dict[str, object]]]) -> str:
    """MedSeg-R minus each baseline, seed by seed (same seed, same data), overall and on small / distractor."""
    lines = []
    for base in ("none", "text_token"):
        if "medseg_r" not in per_seed or base not in per_seed:
            continue
        parts = []
        for key, get in (("overall", lambda s: s["overall"]["dice"]), ("small", lambda s: s["subsets"]["small"]["dice"]),
                         ("distractor", lambda s: s["subsets"]["distractor"]["dice"])):
            diffs = [get(a) - get(b) for a, b in zip(per_seed["medseg_r"], per_seed[base])]
            parts.append(f"{key} {', '.join(f'{d:+.3f}' for d in diffs)} (median {float(np.median(diffs)):+.3f})")
        lines.append(f"MedSeg-R - {base}, Dice per seed: " + "; ".join(parts))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="MedSeg-R vs baselines and ablations on the phantom benchmark.")
    parser.add_argument("--out", default="medseg_r_accuracy")
    parser.add_argument("--n", type=int, default=1000, help="generated cases (70/10/20 split)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--rows", nargs="+", default=list(ROWS)[:7] + [ORACLE],
                        help=f"rows to run: {', '.join(list(ROWS) + [ORACLE])}")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--loss", choices=LOSSES, default="dice_focal",
                        help="training loss of every trained row (batch_*: Dice pooled over the batch)")
    parser.add_argument("--precision", default=None,
                        help="training precision (default: bf16-mixed on CPUs with bfloat16 instructions, else 32-true)")
    parser.add_argument("--model-weights", choices=("best", "last"), default="last",
                        help="evaluate each run's weights at the end of the budget (default, as the demo does) "
                             "or its best-validation weights")
    args = parser.parse_args(argv)
    keep_freed_memory()
    unknown = set(args.rows) - set(ROWS) - {ORACLE}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}")
    start = time.perf_counter()
    data = os.path.join(args.out, "data")
    make_phantom(data, n=args.n, seed=0, size=256)
    other = os.path.join(args.out, "data_seed1")
    make_phantom(other, n=max(100, args.n // 5), seed=1, size=256)
    test, root = read_dataset(data, split="test")
    other_test, other_root = read_dataset(other, split="test")
    results: Dict[str, Dict[str, object]] = {}
    seeds_of: Dict[str, List[Dict[str, object]]] = {}

    def write(final: bool) -> None:
        payload = {"rows": results, "config": vars(args), "seconds": round(time.perf_counter() - start, 1),
                   "device": "cuda" if torch.cuda.is_available() else "cpu", "complete": final}
        with atomic_write(os.path.join(args.out, "accuracy.json")) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)

    for name in args.rows:
        if name == ORACLE:
            results[name] = aggregate([oracle_box(test, root)])
            write(False)
            continue
        backbone, options = ROWS[name]
        per_seed = []
        for seed in args.seeds:
            run = os.path.join(args.out, "runs", f"{name}_seed{seed}")
            freeze = options.get("freeze", "none")
            cfg = TrainConfig(data=data, out=run, backbone=backbone, img_size=256,
                              model_options={**options, "freeze": freeze}, epochs=args.epochs,
                              batch_size=args.batch_size, lr=args.lr, loss=args.loss, seed=seed, progress=False,
                              resume="auto", precision=args.precision, model_weights=args.model_weights)
            model = _trained(cfg)
            summary = evaluate(model, test, root=root, size=256, out_dir=os.path.join(run, "eval"))
            if name == "medseg_r":
                summary["generalisation"] = evaluate(model, other_test, root=other_root, size=256)
            per_seed.append(summary)
            print(f"{name} seed {seed}: Dice {summary['overall']['dice']:.3f}", flush=True)
        results[name] = aggregate(per_seed)
        seeds_of[name] = per_seed
        write(False)
    text = table(results)
    print(f"\nPhantom test split (held-out phrasings); sam_tiny rows trained from scratch at 256 px on CPU/GPU, "
          f"{args.epochs} epochs on {args.n} cases, seeds {args.seeds}; mean±std over seeds.\n")
    print(text)
    margin_text = margins(seeds_of)
    if margin_text:
        print("\n" + margin_text)
    if "medseg_r" in results and "generalisation_dice" in results["medseg_r"]:
        g = results["medseg_r"]["generalisation_dice"]
        base = results["medseg_r"]["overall"]["dice"]
        print(f"\nGeneralisation (phantom generated with seed 1, held-out phrasings): MedSeg-R Dice {_fmt(g)} "
              f"vs {_fmt(base)} on the seed-0 test split (difference {g['mean'] - base['mean']:+.3f}).")
    write(True)
    with atomic_write(os.path.join(args.out, "accuracy.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text + "\n" + (f"\n{margin_text}\n" if margin_text else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
