import json

import pytest

from medseg_r.benchmarks.predict_speed import main


def test_predict_speed_runs_the_real_command(tmp_path, capsys):
    assert main(["--backbones", "sam_tiny", "--batch-sizes", "1", "2", "--repeats", "1", "--slices", "3",
                 "--out", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["backbone"], r["batch_size"]) for r in rows] == [("sam_tiny", 1), ("sam_tiny", 2)]
    for r in rows:
        assert r["slices_run"] == 3 and r["slices_per_s"] > 0 and r["peak_rss_mb"] > 100


def test_predict_speed_rejects_bad_counts(tmp_path):
    with pytest.raises(SystemExit):
        main(["--repeats", "0", "--out", str(tmp_path)])
