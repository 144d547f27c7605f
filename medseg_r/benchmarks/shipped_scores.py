"""Score the weights that ship with the package on the accuracy benchmark's test split, side by side
with the figures their files store; with ``--write``, store the measured figures in the files.

    python -m medseg_r.benchmarks.shipped_scores --out medseg_r_accuracy          # measure, compare
    python -m medseg_r.benchmarks.shipped_scores --out medseg_r_accuracy --write  # and store them

The test split is the accuracy benchmark's (the phantom generation of seed 0, ``--n`` cases, its
fifth), generated under ``OUT/data`` when missing; the frozen encoder's features come from (and go
to) ``OUT/feature_cache``, the benchmark's cache (encoder features stored in fp16, as the benchmark
scores its runs; ``predict`` computes them afresh). The figures are those of the fp16 weights as
shipped, scored by this version of the code with each file's own options (``box_hedge`` included).
Run it again after changing the inference code. A folder that holds another generation than the
one asked for is refused, not overwritten.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from ..data.phantom import make_phantom
from ..data.readers import read_dataset
from ..engine.evaluate import evaluate
from ..model.feature_cache import FeatureCache
from ..model.shipped import HERE, load_shipped, restamp_metrics, shipped_names
from .tables import MAIN_SUBSETS
from ..cli.common import positive_int
from . import benchmark_parser


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def measured_metrics(summary: Dict[str, Any], *, split: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """The figures a shipped file stores, from an :func:`~medseg_r.engine.evaluate.evaluate` summary
    of its weights on ``split`` (a description of the test cases)."""
    overall = summary["overall"]
    return {"dice": round(overall["dice"], 4), "iou": round(overall["iou"], 4),
            "hd95": round(overall["hd95"], 1) if overall["hd95"] is not None else None,
            "negative_fp_rate": summary["negative_fp_rate"],
            "subsets": {name: round(block["dice"], 4) for name, block in summary["subsets"].items()
                        if block.get("dice") is not None},
            "test_split": f"{split}; the fp16 shipped weights, box_hedge {options.get('box_hedge')}, "
                          f"box_flip {options.get('box_flip')}"}


def main(argv=None) -> int:
    parser = benchmark_parser("shipped_scores", __doc__)
    parser.add_argument("--out", default="medseg_r_accuracy",
                        help="the accuracy benchmark's folder (its data and feature cache)")
    parser.add_argument("--n", type=positive_int, default=2000, help="cases of the seed-0 generation")
    parser.add_argument("--names", nargs="+", default=None, help="shipped files (default: all)")
    parser.add_argument("--directory", default=HERE, help="where the shipped files are")
    parser.add_argument("--write", action="store_true", help="store the measured figures in the files")
    args = parser.parse_args(argv)
    names = args.names or shipped_names(args.directory)
    if not names:
        parser.error(f"no shipped weights in {args.directory}")
    unknown = sorted(set(names) - set(shipped_names(args.directory)))
    if unknown:  # before any data is generated
        parser.error(f"--names: no shipped weights {', '.join(unknown)} in {args.directory} "
                     f"(there are: {', '.join(shipped_names(args.directory))})")
    data = os.path.join(args.out, "data")
    meta = os.path.join(data, "dataset.json")
    if os.path.isfile(meta):
        with open(meta, encoding="utf-8") as handle:
            held = json.load(handle)
        if (held.get("n"), held.get("seed")) != (args.n, 0):
            parser.error(f"{data} holds the phantom of seed {held.get('seed')} with {held.get('n')} "
                         f"cases, not the benchmark's seed 0 with --n {args.n}")
    try:
        make_phantom(data, n=args.n, seed=0, size=256, splits=("test",))
    except ValueError as exc:
        parser.error(str(exc))
    test, root = read_dataset(data, split="test")
    split = f"phantom seed 0 ({args.n} cases), its {len(test)} test cases"
    cache = FeatureCache(os.path.join(args.out, "feature_cache"))
    lines = [f"Shipped weights on the accuracy benchmark's test split ({split}):", "",
             "| weights | stored Dice | measured Dice | IoU | HD95 px | neg. FP | "
             + " | ".join(MAIN_SUBSETS) + " |", "|---" * (6 + len(MAIN_SUBSETS)) + "|"]
    measured = {}
    for name in names:
        model, info = load_shipped(name, directory=args.directory)
        model.feature_cache = cache
        summary = evaluate(model, test, root=root, size=256, progress=True)
        metrics = measured_metrics(summary, split=split, options=model.options)
        measured[name] = metrics
        lines.append(f"| {name} | {_f((info.get('metrics') or {}).get('dice'))} | {_f(metrics['dice'])} "
                     f"| {_f(metrics['iou'])} | {_f(metrics['hd95'], 1)} "
                     f"| {_f(metrics['negative_fp_rate'])} | "
                     + " | ".join(_f(metrics["subsets"].get(s)) for s in MAIN_SUBSETS) + " |")
        if args.write:
            restamp_metrics(name, metrics, directory=args.directory)
    print("\n".join(lines))
    print(json.dumps(measured, indent=2))
    if args.write:
        print(f"stored in {', '.join(names)} ({args.directory})")
    return 0


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "shipped_scores"))
