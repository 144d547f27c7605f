"""What limits a finished accuracy benchmark: Dice by size of the reference mask (and by size and the
faintest described lesion's contrast-to-noise ratio), the share of described lesions each model
touches, where the masks went when a described lesion was missed, how often a lesion is found when
the parser read (or missed) the location, texture and shape words of its sentence, and each run's
validation Dice per epoch.

    python -m medseg_r.benchmarks.breakdown medseg_r_accuracy [--rows medseg_r none] [--edges 50 150 400]

Reads what ``python -m medseg_r.benchmarks.accuracy --out DIR`` wrote: ``DIR/runs/ROW_seedS/eval/cases.csv``
(per-case metrics of the test split), ``DIR/runs/ROW_seedS/eval/predictions/ID.png`` (the predicted masks),
``DIR/data/manifest.jsonl`` (every lesion of a case with its role and box) and
``DIR/runs/ROW_seedS/logs/version_*/metrics.csv`` (Lightning's log; a resumed run has several versions,
later ones win). Size bands are in pixels of the reference mask at the benchmark's resolution; each band's
Dice is the mean over the band's positive cases, then the mean over seeds. Nothing is trained or run.

Where the masks went (:func:`lesion_outcomes`): a described lesion (role ``target``: the reference mask
within its box) is *found* when the predicted mask overlaps it. A missed one is put in the first class
that holds: the case's mask is *empty*; it marks an *undescribed lesion* (a lesion the report names as
not the target, e.g. a stable scar, or leaves out: a connected region of the mask that touches no
reference pixel reaches into that lesion's box); it overlaps *another described lesion* of the case; else
it lies *elsewhere* (on no lesion).
"""
from __future__ import annotations

import csv
import glob
import os
import re
from typing import Dict, List, Optional

import numpy as np

from ..io.jsonl import read_jsonl_rows
from ..io.output_folders import CASES_CSV, PREDICTIONS
from . import benchmark_parser


def find_runs(out: str) -> Dict[str, Dict[int, str]]:
    """``{row: {seed: run folder}}`` for every run with an evaluation."""
    runs: Dict[str, Dict[int, str]] = {}
    for path in sorted(glob.glob(os.path.join(out, "runs", "*_seed*", "eval", CASES_CSV))):
        run = os.path.dirname(os.path.dirname(path))
        match = re.fullmatch(r"(.+)_seed(\d+)", os.path.basename(run))
        if match:
            runs.setdefault(match.group(1), {})[int(match.group(2))] = run
    return runs


def read_cases(run: str) -> List[Dict[str, str]]:
    with open(os.path.join(run, "eval", CASES_CSV), newline="", encoding="utf-8") as handle:
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


OUTCOMES = ("found", "empty", "undescribed lesion", "another described lesion", "elsewhere")
# Each subset built for one prior, and the report cue that alone picks its target
CUE_OF = {"by_location": "location", "by_texture": "texture", "by_shape": "shape"}
BY_PRIOR = tuple(CUE_OF)


def box_mask(shape, bbox) -> np.ndarray:
    """A boolean mask of ``shape`` holding a manifest lesion's ``bbox`` ``(x0, y0, x1, y1)``, corners
    included (the phantom's boxes are inclusive)."""
    x0, y0, x1, y1 = bbox
    inside = np.zeros(shape, dtype=bool)
    inside[y0:y1 + 1, x0:x1 + 1] = True
    return inside


def read_manifest(data_dir: str) -> Dict[str, Dict]:
    return {row["id"]: row for _, row in read_jsonl_rows(os.path.join(data_dir, "manifest.jsonl"))}


def marks_undescribed(pred: np.ndarray, truth: np.ndarray, lesions: List[Dict]) -> bool:
    """Whether a connected region of ``pred`` that touches no reference pixel reaches into an undescribed
    lesion's box (a mask that finds its lesion and spills into a neighbour's box is not counted: it
    found what it was asked for)."""
    from scipy import ndimage

    boxes = [box_mask(truth.shape, l["bbox"]) for l in lesions if l["role"] != "target"]
    if not boxes or not pred.any():
        return False
    labels, n = ndimage.label(pred, structure=np.ones((3, 3), bool))
    on_truth = set(np.unique(labels[truth & pred]).tolist())
    astray = np.isin(labels, [k for k in range(1, n + 1) if k not in on_truth])
    return any((astray & box).any() for box in boxes)


def case_outcomes(pred: np.ndarray, truth: np.ndarray, lesions: List[Dict]) -> List[str]:
    """One outcome of :data:`OUTCOMES` per described lesion of a case (module docstring)."""
    targets = [box_mask(truth.shape, l["bbox"]) & truth for l in lesions if l["role"] == "target"]
    hits = [bool((pred & t).any()) for t in targets]
    on_undescribed = marks_undescribed(pred, truth, lesions)
    outcomes = []
    for i, hit in enumerate(hits):
        if hit:
            outcomes.append("found")
        elif not pred.any():
            outcomes.append("empty")
        elif on_undescribed:
            outcomes.append("undescribed lesion")
        elif any(h for j, h in enumerate(hits) if j != i):
            outcomes.append("another described lesion")
        else:
            outcomes.append("elsewhere")
    return outcomes


def lesion_outcomes(run: str, manifest: Dict[str, Dict], root: str) -> Optional[Dict[str, object]]:
    """Shares of the described lesions of a run's positive test cases in each outcome, the Dice of the
    cases whose every described lesion was found, and per subset of :data:`BY_PRIOR` the share of cases
    whose mask marks an undescribed lesion; ``None`` when the run's predictions are not all saved."""
    from PIL import Image

    folder = os.path.join(run, "eval", PREDICTIONS)
    cases = read_cases(run)
    if not all(os.path.isfile(os.path.join(folder, f"{r['id']}.png")) for r in cases):
        return None  # scored before predictions were saved, or killed while scoring
    counts = {o: 0 for o in OUTCOMES}
    all_found: List[float] = []
    took = {s: [] for s in BY_PRIOR}
    each: Dict[str, List[str]] = {}
    for r in cases:
        case = manifest[r["id"]]
        pred = np.asarray(Image.open(os.path.join(folder, f"{r['id']}.png"))) > 127
        truth = np.asarray(Image.open(os.path.join(root, case["mask"]))) > 127
        if truth.shape != pred.shape:
            raise ValueError(f"{r['id']}: prediction {pred.shape} and reference {truth.shape} differ in size")
        outcomes = case_outcomes(pred, truth, case["lesions"])
        each[r["id"]] = outcomes
        for o in outcomes:
            counts[o] += 1
        if outcomes and all(o == "found" for o in outcomes):
            all_found.append(float(r["dice"]))
        for s in BY_PRIOR:
            if s in r["tags"].split(";"):
                took[s].append(float(marks_undescribed(pred, truth, case["lesions"])))
    total = sum(counts.values())
    return {"lesions": total, "shares": {o: counts[o] / total if total else None for o in OUTCOMES},
            "dice_all_found": float(np.mean(all_found)) if all_found else None,
            "cases_all_found": len(all_found),
            "took_undescribed": {s: float(np.mean(v)) if v else None for s, v in took.items()},
            "per_case": each}


def outcome_table(outcomes: Dict[str, List[Dict[str, object]]], rows: List[str]) -> List[str]:
    """Markdown lines: where the masks went, mean over each row's seeds (rows without predictions are
    named below the table); ``outcomes``: per row, :func:`lesion_outcomes` of each seed's run (``None``
    where its predictions are not saved)."""
    lines = ["Described lesions of the positive test cases, by where the mask went (shares; mean over seeds):", "",
             "| row | lesions | " + " | ".join(OUTCOMES) + " | Dice, every lesion found (cases) | "
             + " | ".join(f"{s}: mask on an undescribed lesion" for s in BY_PRIOR) + " |",
             "|---" * (len(OUTCOMES) + len(BY_PRIOR) + 3) + "|"]
    missing = []
    for row in rows:
        per_seed = [p for p in outcomes[row] if p is not None]
        if not per_seed:
            missing.append(row)
            continue
        shares = [_f(_mean([p["shares"][o] for p in per_seed])) for o in OUTCOMES]
        took = [_f(_mean([p["took_undescribed"][s] for p in per_seed])) for s in BY_PRIOR]
        cases = round(float(np.mean([p["cases_all_found"] for p in per_seed])))
        lines.append(f"| {row} | {per_seed[0]['lesions']} | " + " | ".join(shares)
                     + f" | {_f(_mean([p['dice_all_found'] for p in per_seed]))} ({cases}) | " + " | ".join(took) + " |")
    if missing:
        lines += ["", f"(no saved predictions for {', '.join(missing)}: scored before this analysis existed or "
                      "killed while scoring; run the benchmark's command again to score them anew)"]
    return lines


CUES = tuple(CUE_OF.values())


def cue_read(lesion: Dict, findings, cue: str) -> Optional[bool]:
    """Whether the parser read a described lesion's ``cue`` from its report: a positive finding with the
    lesion's side and zone (``location``), or holding its texture / shape code; ``None`` when the
    lesion's sentence does not write that cue (the manifest's ``words``)."""
    if cue not in (lesion.get("words") or {}):
        return None
    if cue == "location":
        return any(f.location.side == lesion.get("side") and lesion.get("zone") in f.location.zones
                   for f in findings)
    return any(lesion.get(cue) in getattr(f, cue) for f in findings)


def reading_table(outcomes: Dict[str, List[Dict[str, object]]], manifest: Dict[str, Dict],
                  rows: List[str]) -> List[str]:
    """Markdown lines: the described lesion of each positive case with exactly one (so that the reading
    is that lesion's own), split by whether the parser read the cue its sentence writes
    (:func:`cue_read`); per row the share found, mean over seeds. Empty when no case qualifies."""
    from ..report import parse_report

    scored = [p for row in rows for p in outcomes[row] if p is not None]
    read: Dict[str, Dict[str, Optional[bool]]] = {}
    for case_id in scored[0]["per_case"] if scored else []:
        case = manifest.get(case_id, {})
        targets = [l for l in case.get("lesions", []) if l.get("role") == "target"]
        if len(targets) == 1 and case.get("report") is not None:
            findings = parse_report(case["report"]).positive_findings
            read[case_id] = {cue: cue_read(targets[0], findings, cue) for cue in CUES}
    ids = list(read)
    if not ids:
        return []
    groups = [(cue, flag) for cue in CUES for flag in (True, False)]
    counts = [sum(read[i][cue] is flag for i in ids) for cue, flag in groups]
    lines = ["Positive cases with one described lesion, by whether the parser read the cue its sentence "
             "writes (location: a positive finding with its side and zone; texture, shape: with its "
             "code); share of those lesions found (mean over seeds):", "",
             "| row | " + " | ".join(f"{cue} {'read' if flag else 'not read'} (n={n})"
                                    for (cue, flag), n in zip(groups, counts)) + " |",
             "|---" * (len(groups) + 1) + "|"]
    for row in rows:
        per_seed = [p["per_case"] for p in outcomes[row] if p is not None]
        if not per_seed:
            continue
        cells = []
        for cue, flag in groups:
            shares = [float(np.mean(v)) if v else None for v in
                      ([each[i][0] == "found" for i in ids if i in each and read[i][cue] is flag]
                       for each in per_seed)]
            cells.append(_f(_mean(shares)))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def faintest_cnr(case: Dict) -> Optional[float]:
    """The lowest contrast-to-noise ratio among a case's described lesions (the manifest's ``cnr``:
    the lesion's mean contrast over the noise of the ring around it); ``None`` when none records it."""
    values = [float(l["cnr"]) for l in case.get("lesions", [])
              if l.get("role") == "target" and l.get("cnr") is not None]
    return min(values) if values else None


def contrast_table(cases: Dict[str, Dict[int, List[Dict[str, str]]]], manifest: Dict[str, Dict],
                   rows: List[str], *, small: float = 50.0, faint: float = 1.0) -> List[str]:
    """Markdown lines: positive cases split by the reference mask's size (below ``small`` px or not)
    and by their faintest described lesion's contrast-to-noise ratio (below ``faint`` or not); per
    row the mean Dice and the share of cases whose every described lesion was found, mean over seeds."""
    faintest = {case_id: faintest_cnr(case) for case_id, case in manifest.items()}

    def group(r: Dict[str, str]) -> Optional[int]:
        cnr = faintest.get(r["id"])
        if cnr is None:
            return None
        return 2 * int(float(r["truth_px"]) >= small) + int(cnr >= faint)

    names = [f"< {small:g} px, CNR < {faint:g}", f"< {small:g} px, CNR >= {faint:g}",
             f">= {small:g} px, CNR < {faint:g}", f">= {small:g} px, CNR >= {faint:g}"]
    first = next(iter(cases[rows[0]].values()))
    counts = [sum(group(r) == g for r in first) for g in range(4)]
    if not any(counts):
        return []
    lines = ["Positive cases by the reference mask's size and the contrast-to-noise ratio of their "
             "faintest described lesion; Dice / share of cases with every described lesion found "
             "(mean over seeds):", "",
             "| cases | n | " + " | ".join(rows) + " |", "|---" * (len(rows) + 2) + "|"]
    for g, name in enumerate(names):
        cells = []
        for row in rows:
            dice, found = [], []
            for seed_cases in cases[row].values():
                mine = [r for r in seed_cases if group(r) == g]
                if mine:
                    dice.append(float(np.mean([float(r["dice"]) for r in mine])))
                    found.append(float(np.mean([r["lesions"] == r["lesions_found"] for r in mine])))
            cells.append(f"{_f(_mean(dice))} / {_f(_mean(found))}")
        lines.append(f"| {name} | {counts[g]} | " + " | ".join(cells) + " |")
    return lines


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
            shown = ", ".join(f"{d:.3f}" for d in epochs) or "none logged (trained without validation)"
            lines.append(f"  seed {seed} validation Dice per epoch: {shown}")
    if os.path.isfile(os.path.join(out, "data", "manifest.jsonl")):
        manifest = read_manifest(os.path.join(out, "data"))
        contrast = contrast_table(cases, manifest, rows)
        root = os.path.join(out, "data")
        outcomes = {row: [lesion_outcomes(run, manifest, root) for _, run in sorted(runs[row].items())]
                    for row in rows}
        reading = reading_table(outcomes, manifest, rows)
        lines += (([""] + contrast if contrast else []) + [""] + outcome_table(outcomes, rows)
                  + ([""] + reading if reading else []))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = benchmark_parser("breakdown", __doc__)
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
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "breakdown"))
