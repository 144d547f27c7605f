"""Aggregating per-seed summaries of :func:`medseg_r.engine.evaluate.evaluate` and printing them."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ..engine.evaluate import SUBSETS
from ..engine.intervals import margin_interval, seed_mean

MAIN_SUBSETS = ("small", "distractor", "by_location", "by_texture", "by_shape")


def mean_std(values: List[Optional[float]]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (``None`` with one value: no spread, not a fake 0)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def aggregate(per_seed: List[Dict[str, object]]) -> Dict[str, object]:
    """Mean and spread over seeds of one row's summaries, with each seed's own Dice overall and per
    subset (``seeds`` names them, in the order of the lists; ``None`` for a run without a seed)."""
    dice = [s["overall"]["dice"] for s in per_seed]
    by_subset = {sub: [_dice(s, sub) for s in per_seed] for sub in SUBSETS}
    out = {"seeds": [s.get("seed") for s in per_seed],
           "dice_per_seed": dice,
           "subsets_per_seed": by_subset,
           "dice_median": float(np.median([d for d in dice if d is not None])) if any(
               d is not None for d in dice) else None,
           "overall": {k: mean_std([s["overall"][k] for s in per_seed]) for k in ("dice", "iou", "hd95")},
           "subsets": {sub: mean_std(values) for sub, values in by_subset.items()},
           "subset_n": {sub: per_seed[0]["subsets"].get(sub, {}).get("n") for sub in SUBSETS},
           "negative_fp_rate": mean_std([s["negative_fp_rate"] for s in per_seed]),
           "small_sensitivity": mean_std([s["overall"]["small_sensitivity"] for s in per_seed])}
    if all("params" in s for s in per_seed):
        out["params"] = per_seed[0]["params"]
    if all("train_fit" in s for s in per_seed):
        out["train_fit_dice"] = mean_std([s["train_fit"]["dice"] for s in per_seed])
        out["train_fit_n"] = per_seed[0]["train_fit"]["n"]
    if all("generalisation" in s for s in per_seed):
        out["generalisation_dice"] = mean_std([s["generalisation"]["overall"]["dice"] for s in per_seed])
    return out


def fmt(ms: Dict[str, Optional[float]], digits: int = 3) -> str:
    if ms is None or ms["mean"] is None:
        return "-"
    if ms["std"] is None:
        return f"{ms['mean']:.{digits}f}"
    return f"{ms['mean']:.{digits}f}±{ms['std']:.{digits}f}"


def table(results: Dict[str, Dict[str, object]], subsets: Sequence[str] = MAIN_SUBSETS) -> str:
    """One Markdown row per model: Dice, IoU, HD95, subsets, false positives on negative reports,
    trainable parameters, per-seed Dice and median, and Dice on training cases (``-``: not
    scored, or an untrained row)."""
    cols = (["Dice", "IoU", "HD95 px"] + [f"Dice {s}" for s in subsets]
            + ["neg. FP", "trainable params", "Dice per seed", "median", "train Dice"])
    lines = ["| row | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        vals = [fmt(r["overall"]["dice"]), fmt(r["overall"]["iou"]), fmt(r["overall"]["hd95"], 1)]
        vals += [fmt(r["subsets"].get(s)) for s in subsets]
        vals.append(fmt(r["negative_fp_rate"]))
        vals.append(f"{r['params']['trainable']:,}" if "params" in r else "(untrained)")
        vals.append(", ".join("-" if d is None else f"{d:.3f}" for d in r.get("dice_per_seed", [])))
        vals.append("-" if r.get("dice_median") is None else f"{r['dice_median']:.3f}")
        vals.append(fmt(r.get("train_fit_dice")))
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def subset_table(results: Dict[str, Dict[str, object]], names: Sequence[str],
                 subsets: Sequence[str], *, compare: bool = True,
                 own: Optional[Dict[str, str]] = None) -> str:
    """Dice per subset (with n) for some rows. ``compare``: each row's difference from the first
    (a full model and its ablations; leave it off for rows that are not variants of the first).
    ``own``: the subset each row is built for, named beside the row and its cell in bold."""
    first = results[names[0]]
    own = own or {}
    n = {s: first.get("subset_n", {}).get(s) for s in subsets}
    head = [f"{s} (n={n[s]})" for s in subsets]
    lines = ["| row | " + " | ".join(head) + " |", "|---" * (len(subsets) + 1) + "|"]
    for name in names:
        cells = []
        for s in subsets:
            value = results[name]["subsets"].get(s)
            cell = fmt(value)
            base = first["subsets"].get(s)
            if (compare and name != names[0] and value and value["mean"] is not None and base
                    and base["mean"] is not None):
                cell += f" ({base['mean'] - value['mean']:+.3f})"
            cells.append(f"**{cell}**" if own.get(name) == s else cell)
        label = f"{name} (built for {own[name]})" if name in own else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _by_seed(runs: List[Dict[str, object]]) -> Dict[object, Dict[str, object]]:
    return {run.get("seed", i): run for i, run in enumerate(runs)}


def _dice(run: Dict[str, object], key: str) -> Optional[float]:
    if key == "overall":
        return run["overall"]["dice"]
    return (run["subsets"].get(key) or {}).get("dice")


def margins(per_seed: Dict[str, List[Dict[str, object]]], baselines: Sequence[str],
            subsets: Sequence[str], medseg: str = "medseg_r") -> str:
    """MedSeg-R (row ``medseg``) minus each baseline, seed by seed (same seed, same data), with the
    median. Runs are paired by their ``seed`` entry (by position when they carry none); a seed that
    only one of the two rows ran, or a subset one of them has no score on, is shown as ``-`` and
    left out of the median. When every paired run names its ``cases.csv`` (``cases_csv``), the
    median is followed by the 95 % interval of the margin over the test cases (each case's Dice
    averaged over the seeds; :mod:`medseg_r.engine.intervals`): how far the test split alone could
    move it."""
    lines = []
    label = "MedSeg-R" if medseg == "medseg_r" else medseg
    for base in baselines:
        if medseg not in per_seed or base not in per_seed:
            continue
        mine, theirs = _by_seed(per_seed[medseg]), _by_seed(per_seed[base])
        seeds = [s for s in mine if s in theirs]
        cases = [seed_mean([str(runs[s].get("cases_csv", "")) for s in seeds])
                 for runs in (mine, theirs)]
        parts = []
        for key in subsets:
            cells, diffs = [], []
            for seed in seeds:
                da, db = _dice(mine[seed], key), _dice(theirs[seed], key)
                if da is None or db is None:
                    cells.append(f"seed {seed} -")
                else:
                    diffs.append(da - db)
                    cells.append(f"seed {seed} {da - db:+.3f}")
            if cells:
                median = f"median {float(np.median(diffs)):+.3f}" if diffs else ""
                if diffs and None not in cases:
                    n, (low, high) = margin_interval(*cases, None if key == "overall" else key)
                    median += f", 95 % interval over the {n} test cases [{low:+.3f}, {high:+.3f}]" \
                        if n else ""
                parts.append(f"{key} {', '.join(cells)}" + (f" ({median})" if median else ""))
        if parts:
            lines.append(f"{label} - {base}, Dice per seed: " + "; ".join(parts))
    return "\n".join(lines)


if __name__ == "__main__":  # a library module of the benchmarks, not one of them
    from . import not_a_benchmark

    raise SystemExit(not_a_benchmark("tables"))
