"""``medseg-r demo``: the embedded default, end to end on a laptop CPU.

Draws the test cases of a fresh phantom generation (another seed than the accuracy benchmark's, test
pools of lungs and nodules never used in training; ``--train`` draws the other splits too), encodes
them once with the pretrained LiteMedSAM (the image encoder is frozen; its embeddings go to a feature
cache every model reads: the models' image localisers, which place the box prompts, read the
image itself and train without the encoder), and compares
MedSeg-R with its two capacity-matched baselines (``none``: the same modules fed a constant;
``text_token``: fed one embedding of the report text) on it: one side-by-side table with each
model's trainable parameters and MedSeg-R's margins against its targets, ``OUT/results.json`` and
``OUT/figure.png``.

By default the three models are the ones that ship with the package, trained by the accuracy
benchmark's recipe (``python -m medseg_r.benchmarks.accuracy``: same data, steps and schedule for
all three); a CPU cannot train them well within the demo's ten minutes. ``--train`` trains all three
from the pretrained LiteMedSAM on the demo's own training split instead, with the same budget each.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Dict, List, Optional

import torch

from ..io import atomic_write
from ..io.output_folders import CASES_CSV, check_demo_folder
from .comparison import attach_cache, parameters, run_row
from .demo_figure import figure
from .evaluate import SUBSETS, evaluate
from .intervals import CaseDice, case_dice, margin_interval

MODELS = ("medseg_r", "none", "text_token")
# the shipped files are the accuracy benchmark's *_attr_tuned rows (one architecture and loss: image
# localiser, per-finding match, attribute head; one fine-tuned mask decoder shared by the three);
# their recipe (row, command, steps) is stored in each file and printed. `--train` trains the same
# rows (each localiser, and the decoder once).
SHIPPED = {"medseg_r": "litemedsam_phantom", "none": "litemedsam_phantom_none",
           "text_token": "litemedsam_phantom_text_token"}
TRAIN_ROWS = {"medseg_r": "medseg_r_attr_tuned", "none": "none_attr_tuned",
              "text_token": "text_token_attr_tuned"}
DEMO_SEED = 1  # the accuracy benchmark trains on seed 0
PRESETS = {"full": {"n": 600, "epochs": 20}, "quick": {"n": 150, "epochs": 4}}
# What MedSeg-R must show in the demo (issue 14): (label, subset or None, baseline, minimum margin).
TARGETS = (("Dice overall, MedSeg-R minus none", None, "none", 0.20),
           ("Dice [by_location], MedSeg-R minus text_token", "by_location", "text_token", 0.10),
           ("Dice [by_texture], MedSeg-R minus text_token", "by_texture", "text_token", 0.10),
           ("Dice [by_shape], MedSeg-R minus text_token", "by_shape", "text_token", 0.10),
           ("Dice [small], MedSeg-R minus text_token", "small", "text_token", 0.10))


def table(results: Dict[str, Dict[str, object]]) -> str:
    names = list(results)
    lines = [f"{'':<30}" + "".join(f"{n:>14}" for n in names)]

    def row(label, getter, fmt="{:.3f}"):
        values = [getter(results[n]) for n in names]
        lines.append(f"{label:<30}" + "".join(
            f"{fmt.format(v):>14}" if v is not None else f"{'-':>14}" for v in values))

    row("Dice (overall)", lambda r: r["overall"]["dice"])
    row("IoU (overall)", lambda r: r["overall"]["iou"])
    row("HD95 px (overall)", lambda r: r["overall"]["hd95"], "{:.1f}")
    for s in SUBSETS:
        row(f"Dice [{s}] n={results[names[0]]['subsets'][s]['n']}",
            lambda r, s=s: r["subsets"][s]["dice"])
    row("small-lesion sensitivity", lambda r: r["overall"]["small_sensitivity"])
    row("FP rate, negative reports", lambda r: r["negative_fp_rate"])
    row("trainable parameters", lambda r: r["params"]["trainable"], "{:,}")
    return "\n".join(lines)


def targets(results: Dict[str, Dict[str, object]],
            cases: Optional[Dict[str, CaseDice]] = None) -> List[Dict[str, object]]:
    """MedSeg-R's margins over the baselines, each against its target, as measured (``met`` is None
    where a figure is missing, e.g. a subset with no case). With ``cases`` (model -> case id ->
    (tags, Dice) of its described cases: :func:`~medseg_r.engine.intervals.case_dice`) each margin
    also gets ``ci95``, its 95 % interval by a paired bootstrap over those cases, and ``n``, their
    number."""
    def dice(name, subset):
        block = results[name]["overall"] if subset is None else results[name]["subsets"][subset]
        return block["dice"]

    rows = []
    for label, subset, base, minimum in TARGETS:
        if "medseg_r" not in results or base not in results:
            continue
        a, b = dice("medseg_r", subset), dice(base, subset)
        value = None if a is None or b is None else a - b
        row = {"what": label, "value": value, "target": f">= {minimum:+.2f}",
               "met": None if value is None else value >= minimum}
        if cases is not None and value is not None:
            row["n"], row["ci95"] = margin_interval(cases["medseg_r"], cases[base], subset)
        rows.append(row)
    return rows


def encode_once(data_dir: str, cache: str, splits=("train", "test"), progress: bool = True) -> int:
    """Fill the feature cache for every image of ``splits`` (one pretrained encoder pass each, with a
    progress bar): the one expensive step of the demo, shared by the three models. Returns how
    many images were encoded now (those already in the cache are read, not encoded)."""
    from tqdm.auto import tqdm

    from ..data.datasets import SegmentationDataset
    from ..data.readers import read_dataset
    from ..model import build_model
    from ..model.feature_cache import FeatureCache

    model = build_model("litemedsam", inject_at=["neck"], report_box=True, freeze="backbone")
    model.feature_cache = FeatureCache(cache)
    for split in splits:
        records, root = read_dataset(data_dir, split=split)
        ds = SegmentationDataset(records, root=root, size=model.img_size)
        for i in tqdm(range(len(ds)), desc=f"encoding {split}", disable=not progress, unit="image"):
            sample = ds[i]
            with torch.no_grad():
                model.encode_inputs(sample["image"][None], [sample["report"]])
    return model.feature_cache.misses


def _shipped(name: str):
    from ..model.shipped import load_shipped

    model, info = load_shipped(SHIPPED[name])
    return model, info


def run_demo(out: str = "medseg_r_demo", *, quick: bool = False, seed: int = DEMO_SEED,
             progress: bool = True, n: int | None = None, epochs: int | None = None,
             precision: str | None = None, train_models: bool = False) -> Dict[str, object]:
    """Run the demo (see the module docstring); ``precision`` ``"32-true"`` (the default, on every
    CPU) or ``"bf16-mixed"``: the autocast of training and evaluation. Scoring the shipped models in
    bfloat16 gives the same overall Dice within 0.005 (the subsets move more) and may be much
    slower on a CPU (SAM's decoder runs once per box prompt; on two 2-core AMD EPYCs with AVX2 only,
    where bfloat16 is emulated, the three models took 440 and 800 s against 65 and 52 s in fp32; on
    a Xeon with AMX once 821 s against 79 s, another time, with --quick, about as fast as fp32), so
    it is never chosen for the user, and choosing it on a CPU without bfloat16 instructions says
    what it will cost."""
    from ..data.phantom import make_phantom
    from ..data.readers import read_dataset

    start = time.perf_counter()
    for name in ("lightning.pytorch", "lightning.fabric"):  # device banners and tips: noise here
        logging.getLogger(name).setLevel(logging.WARNING)
    preset = dict(PRESETS["quick" if quick else "full"])
    preset.update({k: v for k, v in (("n", n), ("epochs", epochs)) if v is not None})
    precision = precision or "32-true"
    if precision not in ("32-true", "bf16-mixed"):
        raise ValueError(f"precision must be 32-true or bf16-mixed, got {precision!r}")
    check_demo_folder(out)
    if precision == "bf16-mixed" and not torch.cuda.is_available():
        from ..runtime import cpu_has_bf16

        if not cpu_has_bf16():
            print("note: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX), so bf16-mixed "
                  "is emulated: scoring takes about 7 to 15 times as long as in fp32 here (7 to 13 "
                  "minutes for the three models on a 2-core AVX2 CPU, against about one)", flush=True)
    data_dir, cache = os.path.join(out, "data"), os.path.join(out, "feature_cache")
    splits = ("train", "val", "test") if train_models else ("test",)  # scoring needs the test cases only
    make_phantom(data_dir, n=preset["n"], seed=seed, size=256, splits=splits, progress=progress)
    t0 = time.perf_counter()
    print("== encoding the images once with the pretrained LiteMedSAM (shared by every model) ==",
          flush=True)
    # the models' localisers train on the images alone: only the scored images are encoded here (with
    # --train, the shared decoder's training encodes the training images as it meets them)
    encoded = encode_once(data_dir, cache, splits=("test",), progress=progress)
    test_records, root = read_dataset(data_dir, split="test")
    config = {"backbone": "litemedsam", "injection": "none (encoder frozen and unmodulated)",
              "prompt": "report boxes from the image localiser",
              "models": "trained here" if train_models else "shipped (accuracy benchmark recipe)",
              "cases": preset["n"], "test_cases": len(test_records), "seed": seed,
              "precision": precision, "encoded_images": encoded,
              "encode_seconds": round(time.perf_counter() - t0, 1)}
    results: Dict[str, Dict[str, object]] = {}
    runs: Dict[str, str] = {}
    for name in MODELS:
        t0 = time.perf_counter()
        if train_models:
            print(f"== training {name} ==", flush=True)
            trained = run_row(TRAIN_ROWS[name], data=data_dir,
                              run_of=lambda row: os.path.join(out, "runs", row), seed=seed,
                              epochs=preset["epochs"], cache=cache, precision=precision,
                              progress=progress)
            model, runs[name] = trained["loaded"], trained["model"]
            config["epochs"] = preset["epochs"]
            config.setdefault("steps", {}).update(trained.get("part_steps") or {})
        else:
            model, info = _shipped(name)
            runs[name] = model
            config.setdefault("trained_on", info["trained_on"])
        model = attach_cache(model, cache, name)
        with _autocast(precision):
            summary = evaluate(model, test_records, root=root, size=256,
                               out_dir=os.path.join(out, "eval", name), overlays=4)
        summary["params"] = parameters(model)
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = summary
    steps = ", ".join(f"{row} {n}" for row, n in (config.get("steps") or {}).items())
    how = (f"trained here for {preset['epochs']} epochs (steps: {steps})" if train_models
           else "shipped weights, trained by the accuracy benchmark's recipe")
    print(f"\nPhantom test split ({len(test_records)} fresh cases, seed {seed}); pretrained LiteMedSAM "
          f"at 256 px, image encoder frozen, one fine-tuned mask decoder for the three; {how}; "
          f"{precision}:\n")
    print(table(results))
    checks = targets(results, {name: case_dice(os.path.join(out, "eval", name, CASES_CSV))
                               for name in results})
    print("\nAgainst the targets (in brackets: the margin's 95 % interval over these test cases):")
    for c in checks:
        verdict = {True: "met", False: "NOT met", None: "not measurable"}[c["met"]]
        value = "-" if c["value"] is None else f"{c['value']:+.3f}"
        interval = f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]" if "ci95" in c else ""
        print(f"  {c['what']:<48}{value:>8} {interval:>17}   target {c['target']}: {verdict}")
    print("  (intervals: paired bootstrap over the cases, 2,000 draws; FP rate on negative reports: "
          "lesion-free images whose report negates findings; a model that cannot read marks "
          "something there)")
    figure(os.path.join(out, "figure.png"), data_dir, runs, cache)
    payload = {"models": results, "targets": checks, "config": config,
               "seconds": round(time.perf_counter() - start, 1)}
    with atomic_write(os.path.join(out, "results.json")) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
    print(f"\nwrote {os.path.join(out, 'results.json')} and {os.path.join(out, 'figure.png')} "
          f"({payload['seconds']:.0f} s in all)")
    return payload


def _autocast(precision: str):
    import contextlib

    if precision == "bf16-mixed":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
