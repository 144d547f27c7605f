"""One CSV log per training run: ``RUN/logs/version_0/metrics.csv`` (Lightning's CSV logger), which a
resumed run goes on writing instead of starting ``version_1`` beside it.

A resume restarts from the end of an epoch (``global_step`` G of its checkpoint): the rows the stopped
run logged at steps before G are kept, those from G on (the part of an epoch the stop interrupted,
which the resumed run trains and logs again) are dropped. Lightning writes the file after every
logging step, so a killed run's log holds every row it logged. A run resumed from another folder's
checkpoint (``--resume OTHER/last.ckpt --out NEW``) starts a log of its own in NEW (the rows before
its resume point stay in OTHER's log), and a start that stopped before its first checkpoint leaves
its log as ``version_N`` beside the next start's.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from typing import List, Optional

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

LOGS = "logs"


def latest_version(out: str) -> Optional[int]:
    """The highest ``N`` of ``OUT/logs/version_N`` (None: no log yet)."""
    found = [int(m.group(1)) for path in glob.glob(os.path.join(out, LOGS, "version_*"))
             if os.path.isdir(path) and (m := re.fullmatch(r"version_(\d+)", os.path.basename(path)))]
    return max(found) if found else None


class _ContinuedWriter(ExperimentWriter):
    """Lightning's writer, which deletes an existing ``metrics.csv``; this one keeps its rows of steps
    before ``keep_before`` (all of them with ``keep_before`` None and no file: a new log)."""

    def __init__(self, log_dir: str, *, keep_before: Optional[int]) -> None:
        self._keep_before = keep_before
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if self._keep_before is None or not os.path.isfile(self.metrics_file_path):
            super()._check_log_dir_exists()
            return
        with open(self.metrics_file_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            keys: List[str] = list(reader.fieldnames or [])
            rows = [row for row in reader if _step(row) is not None and _step(row) < self._keep_before]
        with open(self.metrics_file_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = keys  # the file's header: appended rows follow it, new keys rewrite it


def _step(row: dict) -> Optional[int]:
    try:
        return int(float(row.get("step") or ""))
    except ValueError:
        return None


class RunLogger(CSVLogger):
    """``CSVLogger(out, name="logs")`` that a resumed run continues: ``resumed_step`` is the ``global_step``
    of the checkpoint it resumes from ``out``'s own checkpoints (None: a new log, ``version_0`` of an
    empty folder)."""

    def __init__(self, out: str, *, resumed_step: Optional[int] = None) -> None:
        version = latest_version(out) if resumed_step is not None else None
        super().__init__(out, name=LOGS, version=version)
        self._resumed_step = resumed_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedWriter(self.log_dir, keep_before=self._resumed_step)
        return self._experiment
