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
    ("overhead", ["--backbones", "sam_tiny", "bogus"], "unknown bogus"),
    ("predict_speed", ["--size", "0"], "must be >= 1"),
    ("iu_reports", ["--sample", "-1"], "must be >= 0"),
    ("accuracy", ["--one-seed", "bogus"], "--one-seed: unknown rows ['bogus']"),
    ("accuracy", ["--out", "FILE"], "is a file, not a folder"),
    ("describe_lidc", ["--ridge", "-1"], "--ridge must be a positive number"),
    ("describe_lidc", ["--write-params", "--max-scans", "2"], "--write-params ships the fit"),
    ("counterfactual", ["OUT"], "holds no benchmark data"),
])
def test_a_bad_argument_is_a_usage_error_before_any_work(tmp_path, capsys, module, argv, message):
    (tmp_path / "file.txt").write_text("not a folder")
    argv = [str(tmp_path / "out") if a == "OUT" else str(tmp_path / "file.txt") if a == "FILE" else a
            for a in argv]
    main = importlib.import_module(f"medseg_r.benchmarks.{module}").main
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
