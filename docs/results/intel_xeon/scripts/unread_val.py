"""The validation split with every report replaced by a sentence the reader reads nothing from
(unread_reports.md, "Choosing the reading"): positive cases "See the attached images for the area of
concern.", lesion-free ones "Comparison with the prior study was made.". Reads /work/bench_val/data
(make_phantom of seed 0, 2,000 cases, splits=("val",)), writes /work/bench_val/unread (images and
masks linked, not copied)."""
import json
import os
import shutil

from medseg_r.report.parser import parse_report

SRC, DST = "/work/bench_val/data", "/work/bench_val/unread"
POSITIVE = "See the attached images for the area of concern."
NEGATIVE = "Comparison with the prior study was made."
assert not parse_report(POSITIVE).findings and not parse_report(NEGATIVE).findings
os.makedirs(DST, exist_ok=True)
for sub in ("images", "masks"):
    if not os.path.exists(f"{DST}/{sub}"):
        os.symlink(f"../data/{sub}", f"{DST}/{sub}")
shutil.copy(f"{SRC}/dataset.json", DST)
counts = {True: 0, False: 0}
with open(f"{DST}/manifest.jsonl", "w", encoding="utf-8") as out:
    for line in open(f"{SRC}/manifest.jsonl", encoding="utf-8"):
        row = json.loads(line)
        positive = any(lesion.get("described") for lesion in row["lesions"])
        row["report"] = POSITIVE if positive else NEGATIVE
        counts[positive] += 1
        out.write(json.dumps(row) + "\n")
print(f"{counts[True]} positive, {counts[False]} lesion-free reports rewritten")
