"""The validation split with each described finding's location written as "in the {side} lung":
the reader then reads a side and no zone, as on the test split's phrasings whose zone word it does
not know (zone_readings_val.md). Reads /work/bench_val/data (make_phantom of seed 0, 2,000 cases,
splits=("val",)), writes /work/bench_val/side_only (images and masks linked, not copied)."""
import json
import os
import shutil

from medseg_r.report.parser import parse_report

SRC, DST = "/work/bench_val/data", "/work/bench_val/side_only"
os.makedirs(DST, exist_ok=True)
for sub in ("images", "masks"):
    if not os.path.exists(f"{DST}/{sub}"):
        os.symlink(f"../data/{sub}", f"{DST}/{sub}")
shutil.copy(f"{SRC}/dataset.json", DST)
rows = [json.loads(line) for line in open(f"{SRC}/manifest.jsonl", encoding="utf-8")]
changed = 0
for row in rows:
    for lesion in row["lesions"]:
        words = lesion.get("words")
        if lesion.get("described") and words and words.get("location") in row["report"]:
            new = f"in the {lesion['side']} lung"
            if words["location"][0].isupper():
                new = new[0].upper() + new[1:]
            row["report"] = row["report"].replace(words["location"], new, 1)
            changed += 1
side_only = zoned = 0
for row in rows:
    for finding in parse_report(row["report"]).positive_findings:
        zoned += bool(finding.location.zones)
        side_only += bool(finding.location.side) and not finding.location.zones
print(f"{changed} locations rewritten; positive findings read with a side only: {side_only}, "
      f"with a zone: {zoned}")
with open(f"{DST}/manifest.jsonl", "w", encoding="utf-8") as handle:
    for row in rows:
        handle.write(json.dumps(row) + "\n")
