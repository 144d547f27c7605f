"""Every benchmark command refuses a bad argument as a usage error (exit 2), before any work."""
import importlib

import pytest


@pytest.mark.parametrize("module, argv, message", [
    ("parser_speed", ["-n", "0"], "must be >= 1"),
    ("parser_speed", ["--runs", "-3"], "must be >= 1"),
    ("describe_lidc", ["--max-scans", "0"], "must be >= 1"),
    ("predict_speed", ["--backbones", "bogus"], "unknown bogus"),
    ("accuracy", ["--n", "0"], "must be >= 1"),
    ("accuracy", ["--precision", "bogus"], "invalid choice"),
    ("overhead", ["--repeats", "0"], "must be >= 1"),
    ("iu_reports", ["--labels", "/nonexistent/labels.tsv"], "file not found"),
    ("hedge", ["litemedsam_phantom", "--data", "/nonexistent/data"], "--data"),
    ("shipped_scores", ["--names", "bogus", "--out", "OUT"], "no shipped weights bogus"),
])
def test_a_bad_argument_is_a_usage_error_before_any_work(tmp_path, capsys, module, argv, message):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    main = importlib.import_module(f"medseg_r.benchmarks.{module}").main
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
