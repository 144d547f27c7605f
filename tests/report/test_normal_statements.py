"""Normal-study statements: a sentence with no finding that says the study is normal ("The lungs are
clear.", "No acute disease.") makes a report without findings an all-negative one (an empty mask),
where before it was read as nothing. Conventions: a statement counts only in a sentence that holds
no finding; a study-level statement starts its sentence ("No acute disease.", not "Compared with
the normal chest x-ray of 2010, ..."); "otherwise", "the remainder of" (something else was
described), a side ("The right lung is clear.") or a part of the lungs stop a match."""
import pytest

from medseg_r.report import parse_report
from medseg_r.report.schema import Report
from medseg_r.report.vocab import load_vocabulary

NORMAL = [
    "The lungs are clear.",
    "Lungs clear.",
    "Clear lungs.",
    "Both lungs are clear and expanded.",
    "The lungs are hyperinflated but clear.",
    "Lungs appear grossly clear.",
    "The cardiomediastinal contours, lungs, pleura, osseous structures and visualized upper abdomen "
    "are normal.",
    "No acute disease.",
    "No active cardiopulmonary disease.",
    "No radiographic evidence of acute cardiopulmonary process.",
    "No acute cardiopulmonary process.",
    "Normal chest x-ray.",
    "Negative chest.",
    "Unremarkable radiographs of the chest.",
    "The study is unremarkable.",
    "Heart size is upper limits normal and lungs are clear.",
    "The lungs are clear bilaterally.",
    "No visible active cardiopulmonary disease.",
    "2. No acute cardiopulmonary disease.",
]
NOT_NORMAL = [
    "Heart size is normal.",  # the heart says nothing about the lungs
    "Cardiomediastinal silhouette within normal limits.",
    "The lungs are otherwise clear.",  # something else was described
    "The right lung is clear.",  # one lung
    "The lungs are not clear.",
    "Otherwise unremarkable exam.",
    "Normal chest wall.",
    "Lungs are hyperexpanded.",
    "Lung fields look clean.",  # a word the vocabulary does not hold (the phantom's held-out bank)
    # another study, or a normal one denied
    "Compared with the normal chest x-ray of 2010, there is new hilar adenopathy.",
    "Previously normal chest x-ray now shows hilar adenopathy.",
    "Not a normal chest.",
    # one side or part of the lungs
    "The right lower lung is clear.",
    "Right-sided lung is clear.",
    "The right  lung is clear.",
    "The lungs are clear on the right.",
    "The upper lungs are clear.",
    "The lung bases are clear.",
    # worse, or something else described
    "Lungs are less clear than on the prior study.",
    "The lungs are abnormal but clear.",
    "Otherwise, normal chest.",
    "Otherwise  unremarkable exam.",
    "Otherwise, the lungs are clear.",
    "The remainder of the lungs are clear.",
]


@pytest.mark.parametrize("text", NORMAL)
def test_a_normal_study_is_stated(text):
    report = parse_report(text)
    assert report.findings == [] and len(report.normal_statements) == 1
    assert report.all_negative and not report.positive_findings


@pytest.mark.parametrize("text", NOT_NORMAL)
def test_other_sentences_state_no_normal_study(text):
    report = parse_report(text)
    assert report.normal_statements == [] and not report.all_negative


def test_a_report_reads_nothing_only_without_a_finding_and_without_a_normal_statement():
    assert parse_report("").reads_nothing and parse_report("Heart size is normal.").reads_nothing
    assert not parse_report("The lungs are clear.").reads_nothing
    assert not parse_report("No nodule.").reads_nothing
    assert not parse_report("Nodule in the right upper lobe.").reads_nothing


def test_a_numbered_statement_starts_at_its_first_word():
    text = "1. No acute disease."
    (start, end), = parse_report(text).normal_statements
    assert text[start:end] == "No acute disease"


def test_the_span_is_the_statement_and_round_trips_through_json():
    text = "Heart size is normal. The lungs are clear. No acute disease."
    report = parse_report(text)
    assert [text[s:e] for s, e in report.normal_statements] == ["lungs are clear", "No acute disease"]
    again = Report.from_dict(report.to_dict())
    assert again == report and again.all_negative
    assert Report.from_dict({"report": "x", "findings": []}).normal_statements == []  # older JSON


def test_a_sentence_with_a_finding_states_no_normal_study_and_a_positive_finding_wins():
    report = parse_report("Lungs are clear except for a 6 mm nodule in the right upper lobe.")
    assert report.normal_statements == [] and len(report.positive_findings) == 1
    report = parse_report("Round nodule in the left upper lobe. No acute disease.")
    assert len(report.normal_statements) == 1 and not report.all_negative
    report = parse_report("No effusion. The lungs are clear.")  # both ask for an empty mask
    assert report.all_negative and len(report.normal_statements) == 1


def test_a_pack_adds_normal_statements_and_bad_patterns_are_value_errors(tmp_path):
    pack = tmp_path / "site.yaml"
    pack.write_text("domain: site\nnormal_statements:\n  - '\\bnothing\\s+abnormal\\s+detected\\b'\n")
    vocab = load_vocabulary([pack])
    assert parse_report("Nothing abnormal detected.", vocabulary=vocab).all_negative
    assert not parse_report("Nothing abnormal detected.").all_negative
    bad = tmp_path / "bad.yaml"
    bad.write_text("normal_statements: ['lungs (are clear']\n")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        load_vocabulary([bad])
    bad.write_text("normal_statements: [12]\n")
    with pytest.raises(ValueError, match="is not a regular expression"):
        load_vocabulary([bad])
