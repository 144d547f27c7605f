"""Field accuracy of the report reader on 228 hand-annotated sentences written for this project to
resemble real reports: 168 in full-word prose and 60 in the shorthand radiologists write ("R apex",
"seg IVb", "L breast 2:00", "LLL consolidation, small effusion and two nodules"), marked
``"style": "shorthand"``."""
import os

from medseg_r.report.scoring import FIELDS, load_annotations, score_file, score_reports

DATA = os.path.join(os.path.dirname(__file__), "data", "annotated_reports.jsonl")


def test_annotated_set_is_large_and_varied():
    rows = load_annotations(DATA)
    assert len(rows) >= 150
    assert sum(r.get("style") == "shorthand" for r in rows) >= 40
    assert sum(any(f.get("negated") or f.get("uncertain") for f in r["findings"]) for r in rows) >= 30
    assert sum(len(r["findings"]) > 1 for r in rows) >= 20
    assert {r["domain"] for r in rows} >= {"cxr", "ct_chest", "abdomen", "breast", "brain", "colonoscopy", "lvit",
                                           "kvasir", "busi"}


def test_field_accuracy_at_least_95_percent():
    score = score_file(DATA)
    print("\n" + score.table())
    assert score.overall >= 0.95, score.table()
    assert all(acc >= 0.85 for acc in score.per_field.values()), score.table()


def test_shorthand_sentences_alone_at_least_95_percent():
    shorthand = [r for r in load_annotations(DATA) if r.get("style") == "shorthand"]
    score = score_reports(shorthand)
    print("\nshorthand only\n" + score.table())
    assert score.overall >= 0.95, score.table()


def test_scorer_can_fail():
    rows = [{"text": "A round nodule in the right upper lobe.",
             "findings": [{"target": "mass", "side": "left", "zones": ["upper"], "organ": "lung",
                           "segment": "upper lobe", "shape": ["round"], "count": 1}]}]
    score = score_reports(rows)
    assert score.per_field["target"] == 0.0 and score.per_field["side"] == 0.0
    assert score.per_field["shape"] == 1.0
    missing = score_reports([{"text": "Heart size is normal.", "findings": [{"target": "nodule"}]}])
    assert missing.per_field["finding_count"] == 0.0 and all(missing.correct[f] == 0 for f in FIELDS)
