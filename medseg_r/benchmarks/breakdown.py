"""What limits a finished accuracy benchmark: Dice by size of the reference mask, the share of described
lesions each model touches, and each run's validation Dice per epoch.

    python -m medseg_r.benchmarks.breakdown medseg_r_accuracy [--rows medseg_r none] [--edges 50 150 400]

Reads what ``python -m medseg_r.benchmarks.accuracy --out DIR`` wrote: ``DIR/runs/ROW_seedS/eval/cases.csv``
(per-case metrics of the test split) and ``DIR/runs/ROW_seedS/logs/version_*/metrics.csv`` (Lightning's
log; a resumed run has several versions, later ones win). Size bands are in pixels of the reference mask
at the benchmark's resolution; each band's Dice is the mean over the band's positive cases, then the mean
over seeds. Nothing is trained or run.
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import re
from typing import Dict, List, Optional

import numpy as np


def find_runs(out: str) -> Dict[str, Dict[int, str]]:
    """``{row: {seed: run folder}}`` for every run with an evaluation."""
    runs: Dict[str, Dict[int, str]] = {}
    for path in sorted(glob.glob(os.path.join(out, "runs", "*_seed*", "eval", "cases.csv"))):
        run = os.path.dirname(os.path.dirname(path))
        match = re.fullmatch(r"(.+)_seed(\d+)", os.path.basename(run))
        if match:
            runs.setdefault(match.group(1), {})[int(match.group(2))] = run
    return runs


def read_cases(run: str) -> List[Dict[str, str]]:
    with open(os.path.join(run, "eval", "cases.csv"), newline="", encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle) if r["dice"] != ""]  # positive cases only


def band_of(pixels: float, edges: List[float]) -> int:
    return int(np.searchsorted(edges, pixels, side="right"))


def band_names(edges: List[float]) -> List[str]:
    names = [f"< {edges[0]:g} px"] + [f"{a:g}-{b:g} px" for a, b in zip(edges, edges[1:])]
    return names + [f">= {edges[-1]:g} px"]


def size_bands(cases: List[Dict[str, str]], edges: List[float]) -> List[Optional[float]]:
    """Mean Dice per size band (None for an empty band)."""
    groups: List[List[float]] = [[] for _ in range(len(edges) + 1)]
    for r in cases:
        groups[band_of(float(r["truth_px"]), edges)].append(float(r["dice"]))
    return [float(np.mean(g)) if g else None for g in groups]


def lesions_found(cases: List[Dict[str, str]]) -> Optional[float]:
    total = sum(int(r["lesions"]) for r in cases)
    return sum(int(r["lesions_found"]) for r in cases) / total if total else None


def val_dice_per_epoch(run: str) -> List[float]:
    by_epoch: Dict[int, float] = {}
    versions = glob.glob(os.path.join(run, "logs", "version_*", "metrics.csv"))
    for path in sorted(versions, key=lambda p: int(p.rsplit("version_", 1)[1].split(os.sep)[0])):
        with open(path, newline="", encoding="utf-8") as handle:
            for r in csv.DictReader(handle):
                if r.get("val/dice"):
                    by_epoch[int(r["epoch"])] = float(r["val/dice"])
    return [by_epoch[e] for e in sorted(by_epoch)]


def _mean(values: List[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _f(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def report(out: str, rows: Optional[List[str]] = None, edges: Optional[List[float]] = None) -> str:
    edges = sorted(edges or [50, 150, 400])
    runs = find_runs(out)
    if not runs:
        raise ValueError(f"no evaluated run under {os.path.join(out, 'runs')}")
    unknown = set(rows or []) - set(runs)
    if unknown:
        raise ValueError(f"no runs for rows {sorted(unknown)} (found: {', '.join(sorted(runs))})")
    rows = rows or sorted(runs)
    cases = {row: {seed: read_cases(run) for seed, run in sorted(runs[row].items())} for row in rows}
    first = next(iter(cases[rows[0]].values()))
    counts = [0] * (len(edges) + 1)
    for r in first:
        counts[band_of(float(r["truth_px"]), edges)] += 1
    lines = ["| reference mask | cases | " + " | ".join(rows) + " |", "|---" * (len(rows) + 2) + "|"]
    per_row = {row: [size_bands(c, edges) for c in cases[row].values()] for row in rows}
    for i, name in enumerate(band_names(edges)):
        lines.append(f"| {name} | {counts[i]} | " + " | ".join(_f(_mean([s[i] for s in per_row[row]])) for row in rows) + " |")
    overall = {row: _mean([_mean([float(r["dice"]) for r in c]) for c in cases[row].values()]) for row in rows}
    lines.append(f"| all | {len(first)} | " + " | ".join(_f(overall[row]) for row in rows) + " |")
    lines.append("")
    for row in rows:
        seeds = sorted(cases[row])
        found = ", ".join(_f(lesions_found(cases[row][s])) for s in seeds)
        lines.append(f"{row}: described lesions touched per seed ({', '.join(map(str, seeds))}): {found}")
        for seed in seeds:
            epochs = val_dice_per_epoch(runs[row][seed])
            lines.append(f"  seed {seed} validation Dice per epoch: {', '.join(f'{d:.3f}' for d in epochs) or '-'}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the --out folder of a finished accuracy benchmark")
    parser.add_argument("--rows", nargs="+", help="rows to show (default: every row found)")
    parser.add_argument("--edges", nargs="+", type=float, help="size-band edges in pixels (default: 50 150 400)")
    args = parser.parse_args(argv)
    if args.edges and any(e <= 0 for e in args.edges):
        parser.error("--edges must be positive")
    try:
        print(report(args.out, args.rows, args.edges))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
