import json

import pytest

from medseg_r.benchmarks.predict_speed import main


@pytest.mark.slow  # ~23 s on a 2-core CPU; the bad-argument test below stays in the default run
def test_predict_speed_runs_the_real_command(tmp_path, capsys):
    assert main(["--backbones", "sam_tiny", "--batch-sizes", "1", "2", "--repeats", "1", "--slices", "3",
                 "--out", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["backbone"], r["batch_size"]) for r in rows] == [("sam_tiny", 1), ("sam_tiny", 2)]
    for r in rows:
        assert r["slices_run"] == 3 and r["peak_rss_mb"] > 100  # at least the model's weights are resident
        assert r["slices_per_s"] == pytest.approx(1000 / r["ms_per_slice"], rel=0.01)
        assert r["ms_per_slice"] == pytest.approx(r["ms_per_slice_runs"][0], abs=0.05)  # one repeat


def test_predict_speed_rejects_bad_counts(tmp_path):
    with pytest.raises(SystemExit):
        main(["--repeats", "0", "--out", str(tmp_path)])
