"""Where MedSeg-R loses to no report on the test split: per-case Dice of the shipped files
(percase_shipped.py TAG) grouped by what the reader read. python where_medseg_r_loses.py TAG"""
import csv, json, re, sys
from collections import defaultdict
import numpy as np
from medseg_r.report.parser import parse_report
rows = {json.loads(l)["id"]: json.loads(l) for l in open("/work/bench/data/manifest.jsonl")}
dice = {}
for name in ["litemedsam_phantom", "litemedsam_phantom_none", "litemedsam_phantom_text_token"]:
    dice[name] = {r["id"]: float(r["dice"]) for r in csv.DictReader(open(f"/work/bench/eval_{sys.argv[1]}_{name}/cases.csv")) if r["dice"] != ""}
groups = defaultdict(list)
for cid, row in rows.items():
    targets = [l for l in row["lesions"] if l.get("described")]
    if not targets: continue
    rep = parse_report(row["report"])
    pos = rep.positive_findings
    # location read: each target has a finding with its side and zone
    def loc_ok(l):
        return any(f.location.side == l["side"] and l["zone"] in f.location.zones for f in pos)
    def side_only(l):
        return any(f.location.side == l["side"] and not f.location.zones for f in pos)
    locs = ["read" if loc_ok(l) else "side_only" if side_only(l) else "wrong/none" for l in targets]
    key_loc = "read" if all(x == "read" for x in locs) else ("side_only" if "side_only" in locs and "wrong/none" not in locs else "wrong/none")
    oov = row.get("oov_words") or []
    groups[("phrasing", row["phrasing"])].append(cid)
    groups[("location", row["phrasing"], key_loc)].append(cid)
    groups[("n_targets", min(len(targets), 3))].append(cid)
    groups[("oov_count", row["phrasing"], min(len(oov), 3))].append(cid)
    others = [l for l in row["lesions"] if not l.get("described")]
    groups[("has_undescribed", bool(others))].append(cid)
print("| group | n | medseg_r | none | text_token | medseg_r - none |")
for k in sorted(groups, key=str):
    ids = groups[k]
    m = [np.mean([dice[n][i] for i in ids]) for n in dice]
    print(f"| {k} | {len(ids)} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {m[0]-m[1]:+.3f} |")
print()
for cid in groups[("location", "new", "wrong/none")]:
    row = rows[cid]
    rep = parse_report(row["report"])
    print(cid, f"{dice['litemedsam_phantom'][cid]:.2f} {dice['litemedsam_phantom_none'][cid]:.2f}", row["report"])
    for l in row["lesions"]:
        if l.get("described"): print("   target", l["side"], l["zone"], l["texture"], l["shape"])
    for f in rep.findings:
        print("   read", f.location.side, f.location.zones, f.location.organ, f.texture, f.shape, "neg" if f.negated else "")
