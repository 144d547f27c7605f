"""A real-report check: 100 sentences drawn at random (seed 15) from the Indiana University chest
X-ray reports and labelled by hand for this project. The labels file stores only positions (report
id, character offsets, a hash prefix) and labels; the text is read from the installed
torchxrayvision wheel (licence CC BY-NC-ND 4.0, never copied here).

Labelling conventions: a finding is labelled when the sentence names a target of PRIORS.md (or a
plain synonym: atelectasis, scarring, infiltrate, airspace disease -> opacity; pneumonia ->
infection; granuloma -> nodule; abnormality, finding -> lesion) or describes one by its attributes
only ("coarse calcifications"); anatomy alone ("lungs are clear"), devices, bones, the aorta and
other structures outside the target list get none. A diagnosis ("... possibly atelectasis") is not a
finding of its own; fields follow what the sentence says, not what the reader does.
"""
import os

import pytest

from medseg_r.report.scoring import FIELDS, score_reports

LABELS = os.path.join(os.path.dirname(__file__), "data", "iu_labels.jsonl")


@pytest.fixture(scope="module")
def rows():
    from medseg_r.benchmarks.iu_reports import labelled_sentences

    try:
        return labelled_sentences(LABELS)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_the_labelled_sample_is_100_sentences_with_findings_of_every_kind(rows):
    assert len(rows) == 100 and len({r["id"] for r in rows}) == 100
    findings = [f for r in rows for f in r["findings"]]
    assert len(findings) >= 50
    assert sum(f.get("negated", False) for f in findings) >= 20
    assert sum(f.get("uncertain", False) for f in findings) >= 3
    assert sum(not r["findings"] for r in rows) >= 30  # normal anatomy, devices, bones
    assert all(set(f) <= set(FIELDS) for f in findings)


def test_field_accuracy_on_real_reports_at_least_95_percent(rows):
    score = score_reports(rows)
    print("\n" + score.table())
    assert score.overall >= 0.95, score.table()
    assert all(acc >= 0.9 for acc in score.per_field.values()), score.table()
