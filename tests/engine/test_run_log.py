"""The CSV log of a training run: a resumed run goes on in its own log (engine/run_log.py)."""
import csv
import os

from medseg_r.engine.run_log import RunLogger, latest_version
from medseg_r.engine.train import _own


def _write_log(folder, steps):
    os.makedirs(folder)
    with open(os.path.join(folder, "metrics.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "step", "train/loss"])
        for step in steps:
            writer.writerow([step // 5, step, 1.0 / (step + 1)])


def test_a_resumed_log_keeps_the_rows_before_the_resume_point_and_goes_on(tmp_path):
    _write_log(tmp_path / "logs" / "version_0", range(12))  # killed in epoch 2, resumed from step 10
    logger = RunLogger(str(tmp_path), resumed_step=10)
    logger.log_metrics({"train/loss": 0.5}, step=10)
    logger.save()
    rows = list(csv.DictReader(open(tmp_path / "logs" / "version_0" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(11)) and rows[-1]["train/loss"] == "0.5"
    assert latest_version(str(tmp_path)) == 0


def test_a_new_log_beside_an_earlier_start_and_a_checkpoint_of_another_folder(tmp_path):
    _write_log(tmp_path / "logs" / "version_0", range(3))  # a start killed before its first checkpoint
    assert RunLogger(str(tmp_path)).log_dir.endswith("version_1")
    own = tmp_path / "checkpoints"
    own.mkdir()
    (own / "last.ckpt").write_bytes(b"")
    other = tmp_path / "other" / "checkpoints"
    other.mkdir(parents=True)
    (other / "last.ckpt").write_bytes(b"")
    # a checkpoint of another run folder starts a log of its own: its rows are in that folder's log
    assert _own(str(own / "last.ckpt"), str(own)) and not _own(str(other / "last.ckpt"), str(own))
    assert not _own(None, str(own)) and not _own(str(own / "last.ckpt"), str(tmp_path / "none"))
