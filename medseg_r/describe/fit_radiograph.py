"""Fit the chest radiograph parameters of ``describe`` on phantom radiographs.

    python -m medseg_r.describe.fit_radiograph [--data DIR] [--n 600] [--seed 1]

Uses the train and val splits of a phantom generated with ``--seed`` (default 1; the recovery
benchmark scores the test split of seed 0, whose lung masks and LIDC nodules never occur in train
or val of any seed). Writes :mod:`medseg_r.describe.fitted_radiograph`:

* ``lung_extent``: how much to widen the thresholded lung fields of :mod:`.chest` at the top and
  bottom, as fractions of their height: the medians over both lungs of all cases of the gap to
  the generator's real lung masks (which thresholding misses at the apices and costophrenic
  angles);
* ``texture``: a multinomial logistic regression with pairwise products
  (:func:`.ordinal.fit_logistic`) of the five phantom textures from
  :func:`.texture.radiograph_features` of the described lesions; its penalty is chosen by 5-fold
  cross-validation on the same lesions.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from typing import Dict, List, Optional

import numpy as np

from ..io.atomic import atomic_write
from .chest import raw_lung_masks
from .inputs import load_case
from .ordinal import fit_logistic, logistic_classes, python_literal
from .recovery import match, read_manifest
from .texture import (RADIOGRAPH_FEATURES, lesion_ring, radiograph_features, radiograph_levels,
                      to_unit)

PARAMS_PATH = os.path.join(os.path.dirname(__file__), "fitted_radiograph.py")
SPLITS = ("train", "val")
PENALTIES = (0.001, 0.003, 0.01, 0.03, 0.1)


def true_lungs(index: int, *, seed: int, size: int, pools) -> tuple:
    """The generator's own (patient's right, patient's left) lung masks of case ``index``."""
    from ..data.phantom.generate import _lay_out, case_kind

    split, kind, _ = case_kind(index, seed)
    layout = _lay_out(index, kind, seed, size, pools[split])[2]
    return layout.anatomy.right_lung, layout.anatomy.left_lung


def lung_gaps(data_dir: str, rows: List[Dict], *, seed: int, size: int) -> Dict[str, float]:
    from ..data.phantom.layout import make_pools

    pools = make_pools()
    tops, bottoms = [], []
    for row in rows:
        index = int(row["id"].split("_")[-1])
        truth = true_lungs(index, seed=seed, size=size, pools=pools)
        grey = load_case(os.path.join(data_dir, row["image"]),
                         os.path.join(data_dir, row["mask"])).grey
        found = raw_lung_masks(grey)[:2]
        for real, mask in zip(truth, found):  # image left = patient's right
            if mask is None:
                continue
            found_rows, real_rows = np.nonzero(mask.any(1))[0], np.nonzero(real.any(1))[0]
            height = max(found_rows.max() - found_rows.min(), 1)
            tops.append((found_rows.min() - real_rows.min()) / height)
            bottoms.append((real_rows.max() - found_rows.max()) / height)
    return {"top": round(float(np.median(tops)), 4), "bottom": round(float(np.median(bottoms)), 4),
            "lungs": len(tops)}


def texture_table(data_dir: str, rows: List[Dict]):
    """(features [N, F], textures [N]) of the described lesions matched to mask components."""
    features, labels = [], []
    for row in rows:
        case = load_case(os.path.join(data_dir, row["image"]), os.path.join(data_dir, row["mask"]))
        truth = [lesion for lesion in row["lesions"] if lesion["described"]]
        centres = [np.argwhere(m).mean(0) for m in case.lesions]
        if not case.lesions:
            continue
        unit = to_unit(case.grey)
        everything = np.any(case.lesions, axis=0)
        left, right, spine = raw_lung_masks(case.grey)
        lungs = np.zeros(unit.shape, bool)
        for mask in (left, right):
            if mask is not None:
                lungs |= mask
        levels = radiograph_levels(unit, lungs, spine, everything)
        for lesion, k in zip(truth, match(truth, centres)):
            if k is None:
                continue
            component = case.lesions[k]
            ring = lesion_ring(component, others=everything & ~component, spacing=None)
            values = radiograph_features(unit, component, ring, levels=levels)
            features.append([values[name] for name in RADIOGRAPH_FEATURES])
            labels.append(lesion["texture"])
    return np.array(features), np.array(labels)


def cross_validated_accuracy(x: np.ndarray, y: np.ndarray, *, penalty: float,
                             folds: int = 5) -> float:
    order = np.random.default_rng(0).permutation(len(y))
    right = 0
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        model = fit_logistic(x[train], y[train], names=RADIOGRAPH_FEATURES, penalty=penalty)
        right += int(np.sum(np.array(logistic_classes(model, x[test])) == y[test]))
    return right / len(y)


def fit(data_dir: str, *, seed: int, size: int) -> Dict:
    rows = [r for r in read_manifest(data_dir) if r["split"] in SPLITS]
    gaps = lung_gaps(data_dir, rows, seed=seed, size=size)
    x, y = texture_table(data_dir, rows)
    scores = {p: cross_validated_accuracy(x, y, penalty=p) for p in PENALTIES}
    penalty = max(PENALTIES, key=lambda p: (round(scores[p], 3), p))
    model = fit_logistic(x, y, names=RADIOGRAPH_FEATURES, penalty=penalty)
    resubstitution = float(np.mean(np.array(logistic_classes(model, x)) == y))
    return {"lung_extent": {"top": gaps["top"], "bottom": gaps["bottom"]}, "texture": model,
            "fitted_on": {"command": f"python -m medseg_r.describe.fit_radiograph --seed {seed}",
                          "cases": len(rows), "lungs": gaps["lungs"], "lesions": int(len(y)),
                          "texture_accuracy_fit": round(resubstitution, 4),
                          "texture_accuracy_5fold": round(scores[penalty], 4),
                          "texture_5fold_by_penalty": {str(p): round(v, 4)
                                                       for p, v in scores.items()}}}


def write_parameters(parameters: Dict, path: str = PARAMS_PATH) -> None:
    body = python_literal(parameters)
    text = ('"""Chest radiograph parameters of medseg_r.describe, fitted on phantom '
            'radiographs.\n\nWritten by ``python -m medseg_r.describe.fit_radiograph``; do not '
            'edit by hand."""\n' f"PARAMETERS = {body}\n")
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medseg_r.describe.fit_radiograph",
                                     description="fit describe's radiograph parameters")
    parser.add_argument("--data", help="an existing phantom folder generated with --seed")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data
        if data_dir is None:
            from ..data.phantom import make_phantom

            data_dir = os.path.join(scratch, "phantom")
            make_phantom(data_dir, n=args.n, seed=args.seed, size=args.size)
        parameters = fit(data_dir, seed=args.seed, size=args.size)
    write_parameters(parameters)
    info = parameters["fitted_on"]
    print(f"lung extent widening: top {parameters['lung_extent']['top']}, bottom "
          f"{parameters['lung_extent']['bottom']} ({info['lungs']} lungs)")
    print(f"texture: {info['lesions']} lesions, accuracy {info['texture_accuracy_fit']:.3f} on "
          f"the fitting set, {info['texture_accuracy_5fold']:.3f} in 5-fold cross-validation")
    print(f"wrote {PARAMS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
