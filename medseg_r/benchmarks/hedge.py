"""Dice of a trained MedSeg-R run for each value of an option that changes how boxes are chosen,
not what a localiser row learns (``box_hedge``, ``box_flip``, ``box_region``, ``box_threshold``,
``box_fill``):
one checkpoint is scored as it is, once per value. How the defaults were chosen, on the phantom
benchmark's validation split.

    python -m medseg_r.benchmarks.hedge medseg_r_accuracy/runs/medseg_r_attr_seed0/model.ckpt \
        --data medseg_r_accuracy/data --cache medseg_r_accuracy/feature_cache --split val
    python -m medseg_r.benchmarks.hedge RUN/model.ckpt --data DIR/data --cache DIR/feature_cache \
        --option box_flip --values 0 1
    python -m medseg_r.benchmarks.hedge RUN/model.ckpt --data DIR/data --cache DIR/feature_cache \
        --option box_region
    python -m medseg_r.benchmarks.hedge RUN/model.ckpt --data DIR/data --cache DIR/feature_cache \
        --option box_fill
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

from ..data.readers import read_dataset
from ..engine.evaluate import evaluate
from . import benchmark_parser

VALUES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
# the inference-only options and how a command-line value becomes one
OPTIONS = {"box_hedge": float, "box_flip": bool, "box_region": float, "box_threshold": float,
           "box_fill": float}
# the values swept when none are given
DEFAULT_VALUES = {"box_hedge": VALUES, "box_flip": (0.0, 1.0),
                  "box_region": (0.3, 0.4, 0.5, 0.6, 0.7),
                  "box_threshold": (0.1, 0.2, 0.3, 0.4, 0.5),
                  "box_fill": (0.0, 0.3, 0.4, 0.45, 0.5, 0.6)}


def sweep(model, records, *, root: str, values: Sequence[float],
          option: str = "box_hedge") -> List[Dict[str, object]]:
    """Score ``model`` on ``records`` with ``option`` set to each of ``values``; one row per value
    (the model's own configuration is restored afterwards)."""
    if option not in OPTIONS:
        raise ValueError(f"option must be one of {sorted(OPTIONS)}, got {option!r}")
    rows, config = [], model.config
    try:
        for value in map(OPTIONS[option], values):
            model.config = config.replace(**{option: value})
            with torch.no_grad():
                summary = evaluate(model, records, root=root, size=model.img_size)
            rows.append({option: value, "dice": summary["overall"]["dice"],
                         "hd95": summary["overall"]["hd95"],
                         "subsets": {k: v["dice"] for k, v in summary["subsets"].items()}})
    finally:
        model.config = config  # the model leaves as it came
    return rows


def render(rows: List[Dict[str, object]], subsets=("small", "by_location", "by_texture", "by_shape"),
           option: str = "box_hedge") -> str:
    def cell(value):
        return "-" if value is None else f"{value:.3f}"

    lines = [f"| {option} | Dice | HD95 px | " + " | ".join(subsets) + " |",
             "|---" * (3 + len(subsets)) + "|"]
    for r in rows:
        lines.append(f"| {r[option]:g} | {cell(r['dice'])} | "
                     f"{'-' if r['hd95'] is None else format(r['hd95'], '.1f')} | "
                     + " | ".join(cell(r["subsets"].get(s)) for s in subsets) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    from ..model.feature_cache import FeatureCache
    from ..model.shipped import load_any

    parser = benchmark_parser("hedge", __doc__)
    parser.add_argument("checkpoint", help="a trained MedSeg-R run's model.ckpt, or the name of "
                                           "shipped weights (e.g. litemedsam_phantom_none)")
    parser.add_argument("--data", required=True, help="the data folder (manifest.jsonl)")
    parser.add_argument("--split", default="val", help="the split to score (default: val)")
    parser.add_argument("--cache", help="the feature cache folder of the run's benchmark")
    parser.add_argument("--option", default="box_hedge", choices=sorted(OPTIONS),
                        help="the inference-only option to sweep (default: box_hedge)")
    parser.add_argument("--values", type=float, nargs="+", default=None,
                        help="values (default: "
                             + "; ".join(f"{k} {' '.join(f'{v:g}' for v in vals)}"
                                         for k, vals in DEFAULT_VALUES.items()) + ")")
    args = parser.parse_args(argv)
    values = args.values or list(DEFAULT_VALUES[args.option])
    if args.option == "box_flip":
        bad = [v for v in values if v not in (0, 1)]
        if bad:
            parser.error(f"box_flip values must be 0 or 1, got {bad}")
    else:
        from ..model.options import ModelOptions

        for value in values:  # the options' own checks, before any model is loaded
            try:
                ModelOptions(**{args.option: value})
            except ValueError as err:
                parser.error(f"{args.option} values: {err}")
    try:
        records, root = read_dataset(args.data, split=args.split)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(f"--data: {exc}")
    if not records:
        parser.error(f"--data: no case in split {args.split!r} of {args.data} (--split names it)")
    model, _ = load_any(args.checkpoint)
    if args.cache:
        model.feature_cache = FeatureCache(args.cache)
    print(render(sweep(model, records, root=root, values=values, option=args.option),
                 option=args.option))
    return 0


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "hedge"))
