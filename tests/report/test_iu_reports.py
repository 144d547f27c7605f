"""The reader on 3,955 real chest X-ray reports (Indiana University, CC BY-NC-ND; read from the
installed torchxrayvision wheel at run time, never copied here). Timings:
``python -m medseg_r.benchmarks.parser_speed``."""
from medseg_r.benchmarks.iu_reports import load_iu_reports, statistics


def test_all_iu_reports_parse_with_plausible_statistics():
    reports = load_iu_reports()
    assert len(reports) == 3955
    stats = statistics(reports)
    print(f"\nIU reports: {stats}")
    assert stats["sentences"] > 20_000
    # Mostly normal studies: a minority of sentences name a finding, and most findings are negated.
    assert 25 <= stats["sentences_with_finding_pct"] <= 60
    assert stats["negated_pct"] >= 50
    # A normal study is mostly written without a finding ("The lungs are clear. No acute disease."):
    # such reports ask for an empty mask; before normal statements were read, 359 of the 3,927
    # reports with text were read as nothing (boxed from the image alone by a structured model).
    assert stats["reports_normal_statements_only"] >= 300
    assert stats["reports_read_as_nothing"] <= 20
