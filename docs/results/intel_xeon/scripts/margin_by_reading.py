"""MedSeg-R's margin over the no-report model by what the reader read, per seed (stop 59).

python margin_by_reading.py MANIFEST EVAL_DIR [EVAL_DIR ...]: each EVAL_DIR holds the `medseg-r
evaluate` folders `medseg_r*` and `none*` (their cases.csv) of one seed or of the demo. A positive
case falls in one group: `nothing` (the report read as nothing), `all_negative` (every finding read
negated), `some_without_zone` (a positive finding without a zone), `zones` (every positive
finding with a zone); crossed with its phrasing (`phrasing_new` / `phrasing_known` tag)."""
import csv
import glob
import json
import sys
from collections import defaultdict

import numpy as np

from medseg_r.report import parse_report


def group(report):
    if report.reads_nothing:
        return "nothing"
    if not report.positive_findings:
        return "all_negative"
    if any(not f.location.zones for f in report.positive_findings):
        return "some_without_zone"
    return "zones"


def cases(folder):
    return {r["id"]: r for r in csv.DictReader(open(f"{folder}/cases.csv")) if r["dice"] != ""}


rows = {json.loads(line)["id"]: json.loads(line) for line in open(sys.argv[1], encoding="utf-8")}
print("| run | phrasing | reading | cases | MedSeg-R | no report | margin | share of the overall margin |")
print("|---|---|---|---|---|---|---|---|")
for run in sys.argv[2:]:
    ours = cases(sorted(glob.glob(f"{run}/medseg_r*"))[0])
    none = cases(sorted(glob.glob(f"{run}/none*"))[0])
    groups = defaultdict(list)
    for cid, row in ours.items():
        phrasing = "new" if "phrasing_new" in row["tags"] else "known"
        groups[(phrasing, group(parse_report(rows[cid]["report"])))].append(
            (float(row["dice"]), float(none[cid]["dice"])))
    total = sum(len(v) for v in groups.values())
    overall = sum(a - b for v in groups.values() for a, b in v) / total
    for (phrasing, reading), values in sorted(groups.items()):
        a = np.array(values)
        print(f"| {run.rstrip('/').split('/')[-1]} | {phrasing} | {reading} | {len(a)} | {a[:, 0].mean():.3f} | "
              f"{a[:, 1].mean():.3f} | {(a[:, 0] - a[:, 1]).mean():+.3f} | {(a[:, 0] - a[:, 1]).sum() / total:+.3f} |")
    print(f"| {run.rstrip('/').split('/')[-1]} | all | all | {total} | | | {overall:+.3f} | |")
