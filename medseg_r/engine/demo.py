"""``medseg-r demo``: the embedded default, end to end on a laptop CPU.

Generates the phantom benchmark, trains MedSeg-R and the two baselines (``priors="none"``,
``priors="text_token"``) on ``sam_tiny`` at 256 px with the same budget (same data, epochs, batch,
optimiser), evaluates all three on the same test split (held-out phrasings), prints one side-by-side
table, and writes ``OUT/results.json`` and ``OUT/figure.png``.
"""
from __future__ import annotations

import json
import logging
import os
import textwrap
import time
from typing import Dict, List

import numpy as np

from ..io import atomic_write
from .evaluate import SUBSETS, evaluate
from .train import TrainConfig, train

MODELS = {"medseg_r": {}, "none": {"priors": "none"}, "text_token": {"priors": "text_token"}}
PRESETS = {"full": {"n": 600, "epochs": 2}, "quick": {"n": 150, "epochs": 1}}


def table(results: Dict[str, Dict[str, object]]) -> str:
    names = list(results)
    lines = [f"{'':<26}" + "".join(f"{n:>14}" for n in names)]

    def row(label, getter, fmt="{:.3f}"):
        vals = []
        for n in names:
            v = getter(results[n])
            vals.append(f"{fmt.format(v):>14}" if v is not None else f"{'-':>14}")
        lines.append(f"{label:<26}" + "".join(vals))

    row("Dice (overall)", lambda r: r["overall"]["dice"])
    row("IoU (overall)", lambda r: r["overall"]["iou"])
    row("HD95 px (overall)", lambda r: r["overall"]["hd95"], "{:.1f}")
    for s in SUBSETS:
        row(f"Dice [{s}] n={results[names[0]]['subsets'][s]['n']}", lambda r, s=s: r["subsets"][s]["dice"])
    row("small-lesion sensitivity", lambda r: r["overall"]["small_sensitivity"])
    row("FP rate, negative reports", lambda r: r["negative_fp_rate"])
    return "\n".join(lines)


# The comparison MedSeg-R is built to win (issue 4): (label, subset or None, baseline, minimum margin).
TARGETS = (("Dice overall, MedSeg-R minus none", None, "none", 0.20),
           ("Dice [small], MedSeg-R minus text_token", "small", "text_token", 0.05),
           ("Dice [distractor], MedSeg-R minus text_token", "distractor", "text_token", 0.05))
MAX_NEGATIVE_FP = 0.10


def targets(results: Dict[str, Dict[str, object]]) -> List[Dict[str, object]]:
    """MedSeg-R's margins over the baselines and its negative-report false-positive rate, each against
    its target, as measured (``met`` is None where a figure is missing, e.g. a subset with no case)."""
    def dice(name, subset):
        block = results[name]["overall"] if subset is None else results[name]["subsets"][subset]
        return block["dice"]

    rows = []
    for label, subset, base, minimum in TARGETS:
        if "medseg_r" not in results or base not in results:
            continue
        a, b = dice("medseg_r", subset), dice(base, subset)
        value = None if a is None or b is None else a - b
        rows.append({"what": label, "value": value, "target": f">= {minimum:+.2f}",
                     "met": None if value is None else value >= minimum})
    if "medseg_r" in results:
        fp = results["medseg_r"]["negative_fp_rate"]
        rows.append({"what": "FP rate on negative reports, MedSeg-R", "value": fp,
                     "target": f"<= {MAX_NEGATIVE_FP:.2f}", "met": None if fp is None else fp <= MAX_NEGATIVE_FP})
    return rows


def figure(path: str, data_dir: str, runs: Dict[str, str], size: int, n_cases: int = 3) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from ..model import load_model
    from ..data.datasets import SegmentationDataset
    from ..data.readers import read_dataset

    records, root = read_dataset(data_dir, split="test")
    chosen = [r for r in records if "distractor" in r.tags][:n_cases] or records[:n_cases]
    ds = SegmentationDataset(chosen, root=root, size=size)
    models = {name: load_model(p).eval() for name, p in runs.items()}
    cols = 3 + len(models)
    fig, axes = plt.subplots(len(chosen), cols, figsize=(2.4 * cols, 2.6 * len(chosen)), squeeze=False)
    for i in range(len(chosen)):
        sample = ds[i]
        img = sample["image"].permute(1, 2, 0).numpy()
        ax = axes[i]
        ax[0].imshow(img, cmap="gray")
        ax[0].set_title("\n".join(textwrap.wrap(chosen[i].report, 34))[:200], fontsize=6)
        ax[1].imshow(img, cmap="gray")
        ax[1].contour(sample["mask"][0].numpy(), levels=[0.5], colors="lime", linewidths=0.8)
        ax[1].set_title("ground truth", fontsize=7)
        attention = None
        for j, (name, model) in enumerate(models.items()):
            with torch.no_grad():
                out = model(sample["image"][None], [sample["report"]])
            ax[2 + j].imshow(img, cmap="gray")
            ax[2 + j].imshow(np.ma.masked_where(out["masks"][0, 0].numpy() <= 0, np.ones((size, size))),
                             cmap="autumn", alpha=0.6, vmin=0, vmax=1)
            ax[2 + j].set_title(name, fontsize=7)
            if name == "medseg_r" and out["attention"] is not None:
                attention = out["attention"][0, 0].numpy()
        ax[-1].imshow(img, cmap="gray")
        if attention is not None:
            ax[-1].imshow(attention, cmap="magma", alpha=0.55, vmin=0, vmax=1)
        ax[-1].set_title("MedSeg-R location attention", fontsize=7)
        for a in ax:
            a.axis("off")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def run_demo(out: str = "medseg_r_demo", *, quick: bool = False, seed: int = 0, progress: bool = True,
             n: int | None = None, epochs: int | None = None) -> Dict[str, object]:
    from ..model import load_model
    from ..data.phantom import make_phantom
    from ..data.readers import read_dataset

    start = time.perf_counter()
    for name in ("lightning.pytorch", "lightning.fabric"):  # device banners and tips, once per model: noise here
        logging.getLogger(name).setLevel(logging.WARNING)
    preset = dict(PRESETS["quick" if quick else "full"])
    preset.update({k: v for k, v in (("n", n), ("epochs", epochs)) if v is not None})
    data_dir = os.path.join(out, "data")
    make_phantom(data_dir, n=preset["n"], seed=seed, size=256, progress=progress)
    test_records, root = read_dataset(data_dir, split="test")
    # Every model is scored with its weights at the end of the same budget ("last"): with two epochs,
    # picking the better of two validation checkpoints mostly rewards an early all-empty answer, which
    # scores every negative validation case as right.
    config = {"backbone": "sam_tiny", "img_size": 256, "freeze": "none", "batch_size": 8, "lr": 2e-3,
              "epochs": preset["epochs"], "cases": preset["n"], "seed": seed, "loss": "dice_focal",
              "model_weights": "last"}
    results: Dict[str, Dict[str, object]] = {}
    runs: Dict[str, str] = {}
    for name, options in MODELS.items():
        t0 = time.perf_counter()
        print(f"== training {name} ==", flush=True)
        cfg = TrainConfig(data=data_dir, out=os.path.join(out, "runs", name), backbone="sam_tiny", img_size=256,
                          model_options={**options, "freeze": "none"}, epochs=preset["epochs"], batch_size=8,
                          lr=config["lr"], loss=config["loss"], seed=seed, progress=progress,
                          model_weights="last")
        trained = train(cfg)
        runs[name] = trained["model"]
        config.update(steps=trained["steps"], precision=trained["precision"], deterministic=trained["deterministic"])
        model = load_model(runs[name])
        summary = evaluate(model, test_records, root=root, size=256, out_dir=os.path.join(out, "eval", name),
                           overlays=4)
        summary["train_seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = summary
    print("\nPhantom test split (held-out phrasings), sam_tiny 256 px, "
          f"{preset['epochs']} epoch(s) ({config['steps']} steps, {config['precision']}) on {preset['n']} generated "
          f"cases, seed {seed}, weights at the end of training:\n")
    print(table(results))
    checks = targets(results)
    print("\nAgainst the targets (one run, this budget):")
    for c in checks:
        verdict = {True: "met", False: "NOT met", None: "not measurable"}[c["met"]]
        value = "-" if c["value"] is None else f"{c['value']:.3f}" if c["what"].startswith("FP") else f"{c['value']:+.3f}"
        print(f"  {c['what']:<46}{value:>8}   target {c['target']}: {verdict}")
    figure(os.path.join(out, "figure.png"), data_dir, runs, 256)
    payload = {"models": results, "targets": checks, "config": config,
               "seconds": round(time.perf_counter() - start, 1)}
    with atomic_write(os.path.join(out, "results.json")) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
    print(f"\nwrote {os.path.join(out, 'results.json')} and {os.path.join(out, 'figure.png')} "
          f"({payload['seconds']:.0f} s in all)")
    return payload
