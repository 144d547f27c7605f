"""How well ``describe`` recovers the phantom generator's own truth.

    python -m medseg_r.describe.recovery --data PHANTOM_DIR [--split test] [--json]

For every case of the split, the mask's lesions are described (:func:`describe_case`) and matched
to the generator's described lesions (``lesions`` with ``described: true`` in the manifest: side,
zone, texture, shape, size_mm) by their bounding boxes. Per-field accuracy: side; zone (the
described zones are exactly the true one); side and zone together; size within 20 % of the
generator's ``size_mm`` (which is the largest side of the lesion's axis-aligned bounding box, so
also scored against that); shape (every matched lesion; lesions under 6 px get no shape word and
count as misses, and the accuracy among lesions with a shape word is given too); texture; count
(number of findings equals the number of described lesions, per case). Negative cases must give
an all-negative report.
"""
from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..io.jsonl import read_jsonl_rows
from .core import describe_case

SIZE_TOLERANCE = 0.20


def read_manifest(data_dir: str) -> List[Dict]:
    """The rows of ``data_dir/manifest.jsonl`` (a phantom generation's manifest)."""
    return [row for _, row in read_jsonl_rows(os.path.join(data_dir, "manifest.jsonl"))]


def mm_per_px(data_dir: str) -> float:
    with open(os.path.join(data_dir, "dataset.json"), "r", encoding="utf-8") as handle:
        return float(json.load(handle)["mm_per_px"])


def match(truth: Sequence[Dict], centres: Sequence[Sequence[float]]) -> List[Optional[int]]:
    """For each true lesion, the index of the described lesion whose centre (row, col) lies in
    its bounding box ``[x0, y0, x1, y1]`` (nearest box centre on ties), or ``None``."""
    taken, out = set(), []
    for lesion in truth:
        x0, y0, x1, y1 = lesion["bbox"]
        best, best_d = None, np.inf
        for k, (row, col) in enumerate(centres):
            if k in taken or not (y0 - 0.5 <= row <= y1 + 0.5 and x0 - 0.5 <= col <= x1 + 0.5):
                continue
            d = np.hypot(row - (y0 + y1) / 2, col - (x0 + x1) / 2)
            if d < best_d:
                best, best_d = k, d
        if best is not None:
            taken.add(best)
        out.append(best)
    return out


def _bbox_size_px(lesion: Dict) -> float:
    x0, y0, x1, y1 = lesion["bbox"]
    return float(max(x1 - x0, y1 - y0) + 1)


def evaluate(data_dir: str, *, split: str = "test", progress: bool = False) -> Dict:
    """Per-field recovery on ``split`` of a phantom folder (see the module docstring)."""
    from tqdm import tqdm

    scale = mm_per_px(data_dir)
    rows = [r for r in read_manifest(data_dir) if r["split"] == split]
    hits: Dict[str, List[bool]] = {k: [] for k in (
        "side", "zone", "side_and_zone", "size", "size_vs_bbox", "shape", "texture", "matched")}
    shape_stated, count_ok, negatives_ok, confusion = [], [], [], Counter()
    for row in tqdm(rows, desc="describe", disable=not progress, unit="case"):
        result = describe_case(os.path.join(data_dir, row["image"]),
                               os.path.join(data_dir, row["mask"]), spacing=scale)
        truth = [lesion for lesion in row["lesions"] if lesion["described"]]
        if not truth:
            negatives_ok.append(result.report.all_negative)
            continue
        count_ok.append(len(result.lesions) == len(truth))
        found = match(truth, [d.centre for d in result.lesions])
        for lesion, k in zip(truth, found):
            hits["matched"].append(k is not None)
            if k is None:
                for key in hits:
                    if key != "matched":
                        hits[key].append(False)
                continue
            d = result.lesions[k]
            loc = d.finding.location
            side_ok, zone_ok = loc.side == lesion["side"], loc.zones == [lesion["zone"]]
            measured = float(d.size["longest"])
            hits["side"].append(side_ok)
            hits["zone"].append(zone_ok)
            hits["side_and_zone"].append(side_ok and zone_ok)
            truth_mm = lesion["size_mm"]
            hits["size"].append(abs(measured - truth_mm) <= SIZE_TOLERANCE * truth_mm)
            box = _bbox_size_px(lesion) * scale
            hits["size_vs_bbox"].append(abs(measured - box) <= SIZE_TOLERANCE * box)
            said = d.finding.shape[0] if d.finding.shape else None
            hits["shape"].append(said == lesion["shape"])
            if said is not None:
                shape_stated.append(said == lesion["shape"])
            texture = d.finding.texture[0] if d.finding.texture else None
            hits["texture"].append(texture == lesion["texture"])
            confusion[(lesion["texture"], texture)] += 1
    summary = {key: float(np.mean(v)) if v else None for key, v in hits.items()}
    summary.update({
        "lesions": len(hits["matched"]), "cases": len(rows),
        "count": float(np.mean(count_ok)) if count_ok else None,
        "negative_cases_all_negative": float(np.mean(negatives_ok)) if negatives_ok else None,
        "negative_cases": len(negatives_ok),
        "shape_when_stated": float(np.mean(shape_stated)) if shape_stated else None,
        "shape_stated": len(shape_stated),
        "texture_confusion": {f"{t} -> {p}": n for (t, p), n in sorted(confusion.items(),
                                                                       key=str)}})
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medseg_r.describe.recovery",
                                     description="describe's recovery of the phantom's truth")
    parser.add_argument("--data", required=True, help="a phantom folder (medseg-r make-data)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    summary = evaluate(args.data, split=args.split, progress=True)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['lesions']} described lesions in {summary['cases']} cases ({args.split})")
    for key in ("matched", "side", "zone", "side_and_zone", "size", "size_vs_bbox", "shape",
                "shape_when_stated", "texture", "count", "negative_cases_all_negative"):
        value = summary[key]
        print(f"{key:>28}: {'-' if value is None else f'{value:.3f}'}")
    print("texture (truth -> said): " + ", ".join(f"{k}: {v}" for k, v in
                                                 summary["texture_confusion"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
