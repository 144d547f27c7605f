"""The parser speed benchmark builds the corpora the issue names and reports every figure (timings
themselves are only printed, never asserted)."""
from medseg_r.benchmarks import parser_speed
from medseg_r.report import parse_report, split_sentences


def test_multi_sentence_reports_are_3_to_6_sentences_of_about_350_characters():
    sentences = parser_speed.annotated_sentences()
    reports = parser_speed.multi_sentence_reports(sentences, 300)
    assert reports == parser_speed.multi_sentence_reports(sentences, 300)  # fixed seed
    assert all(310 <= len(r) <= 400 for r in reports)
    assert 330 <= sum(map(len, reports)) / len(reports) <= 370
    assert all(r.split(" ", 1)[0] in {s.split(" ", 1)[0] for s in sentences} for r in reports)


def test_the_long_text_has_no_sentence_break_and_is_read_in_full():
    text = parser_speed.text_without_breaks(parser_speed.annotated_sentences())
    assert len(text) == parser_speed.NO_BREAK_CHARS == 199_000
    assert split_sentences(text) == [(0, 199_000)]
    report = parse_report(text)
    assert len(report.findings) > 2_000
    assert report.findings[-1].spans["target"][0][0] > 190_000  # findings up to the very end


def test_the_text_without_findings_is_one_sentence_read_to_the_end_without_a_statement():
    text = parser_speed.text_without_findings()
    assert len(text) == 199_000 and split_sentences(text) == [(0, 199_000)]
    report = parse_report(text)
    assert report.findings == [] and report.normal_statements == []


def test_measure_reports_all_four_figures(monkeypatch):
    monkeypatch.setattr(parser_speed, "NO_BREAK_CHARS", 5_000)
    def short_text(sentences, length=5_000):
        return ", ".join(s.rstrip(".") for s in sentences)[:length]

    monkeypatch.setattr(parser_speed, "text_without_breaks", short_text)
    result = parser_speed.measure(n=30, runs=1)
    assert set(result) == {"first_call_seconds", "iu", "350_char", "no_breaks", "no_finding"}
    assert result["no_finding"] == {"chars": 5_000, "seconds": result["no_finding"]["seconds"],
                                    "findings": 0}
    assert result["350_char"]["reports"] == 30 and 310 <= result["350_char"]["mean_chars"] <= 400
    assert result["no_breaks"]["chars"] == 5_000 and result["no_breaks"]["findings"] > 20
    if not isinstance(result["iu"], str):
        assert result["iu"]["reports"] == 30 and result["iu"]["mean_chars"] > 100
