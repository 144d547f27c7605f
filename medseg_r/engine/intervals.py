"""How sure a Dice margin is: its 95 % interval by a paired bootstrap over the test cases, from the
``cases.csv`` that :func:`medseg_r.engine.evaluate.evaluate` writes (one row per case: its subset
tags and, for a case with a described lesion, its Dice)."""
from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

BOOTSTRAP_DRAWS = 2000  # resamples of the test cases for each interval
CaseDice = Dict[str, Tuple[Set[str], float]]  # case id -> (subset tags, Dice)


def case_dice(path: str) -> CaseDice:
    """Case id -> (subset tags, Dice) of the described cases of an evaluation's ``cases.csv``."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["id"]: (set(filter(None, row["tags"].split(";"))), float(row["dice"]))
                for row in csv.DictReader(handle) if row["dice"] != ""}


def seed_mean(paths: Sequence[str]) -> Optional[CaseDice]:
    """One row's runs (one ``cases.csv`` per seed, the same test cases) as one table: each case's
    Dice averaged over the seeds that scored it in all of them; ``None`` when a file is missing."""
    if not paths or not all(os.path.isfile(p) for p in paths):
        return None
    runs = [case_dice(p) for p in paths]
    ids = set(runs[0]).intersection(*runs[1:])
    return {i: (runs[0][i][0], float(np.mean([run[i][1] for run in runs]))) for i in ids}


def margin_interval(a: CaseDice, b: CaseDice, subset: Optional[str], *,
                    draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Tuple[int, List[float]]:
    """``(n, [low, high])``: the 95 % interval of the mean Dice difference ``a - b`` over the cases
    both scored (of ``subset``, or all), by a paired bootstrap (cases drawn with replacement);
    ``n`` is 0 and the interval NaN when there is no such case."""
    ids = sorted(i for i in a.keys() & b.keys() if subset is None or subset in a[i][0])
    diffs = np.array([a[i][1] - b[i][1] for i in ids])
    if len(diffs) == 0:
        return 0, [float("nan"), float("nan")]
    means = diffs[np.random.default_rng(seed).integers(0, len(diffs), (draws, len(diffs)))].mean(1)
    return len(diffs), [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
