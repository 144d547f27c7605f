import numpy as np
import pytest

from medseg_r.benchmarks import describe_lidc
from medseg_r.describe.lidc import load_annotations, patient_part
from medseg_r.describe.ordinal import (cohen_kappa, fit_ordinal, ordinal_rating, python_literal,
                                       weighted_kappa)


def test_kappas():
    a = [1, 2, 3, 4, 5, 3]
    assert weighted_kappa(a, a) == pytest.approx(1.0)
    assert weighted_kappa([1, 5, 1, 5], [5, 1, 5, 1]) < -0.9
    # 2 x 2 table [[2, 1], [0, 1]]: p_o = 0.75, p_e = 0.75 * 0.5 + 0.25 * 0.5 = 0.5
    assert cohen_kappa([1, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.5)


def test_ordinal_fit_orders_and_matches_the_marginal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2))
    ratings = np.clip(np.round(3 + 1.2 * x[:, 0] + 0.2 * rng.normal(size=600)), 1, 5).astype(int)
    model = fit_ordinal(x, ratings, names=["a", "b"])
    predicted = ordinal_rating(model, x)
    assert weighted_kappa(predicted, ratings) > 0.9
    for level in range(1, 6):
        assert abs(np.mean(predicted == level) - np.mean(ratings == level)) < 0.02
    assert eval(python_literal(model))["cuts"] == pytest.approx(model["cuts"], rel=1e-6)


def test_reader_pairs_are_ordered_pairs_within_nodules():
    nodules = np.array([7, 7, 7, 9, 9, 4])
    pairs = describe_lidc.reader_pairs(nodules, np.arange(6))
    assert len(pairs) == 3 * 2 + 2 * 1
    assert all(nodules[a] == nodules[b] and a != b for a, b in pairs)


def test_annotations_group_into_nodules_of_one_scan():
    annotations = load_annotations(40)
    by_nodule = {}
    for ann in annotations:
        by_nodule.setdefault(ann.nodule, set()).add(ann.scan_id)
    assert all(len(scans) == 1 for scans in by_nodule.values())
    sizes = np.bincount([a.nodule for a in annotations])
    assert sizes.max() <= 4 and (sizes >= 2).sum() > 0.5 * (sizes > 0).sum()
    assert {patient_part(a.patient_id) for a in annotations} == {"train", "test"}


def test_benchmark_on_a_few_scans_with_the_shipped_models():
    from medseg_r.describe.fitted_shape import PARAMETERS

    result = describe_lidc.run(max_scans=40, models=PARAMETERS["models"])
    assert result["pairs"] > 100 and result["annotations"] > 100
    for row in result["ordinal"].values():
        assert -1 <= row["kappa_classifier"] <= 1 and -1 <= row["kappa_readers"] <= 1
    # describe measures edge to edge, pylidc from outline vertex to vertex: about one pixel more
    diameter = result["diameter"]
    assert 0.3 < diameter["mean_difference_mm"] < 1.2
    assert diameter["mean_abs_difference_mm"] < 1.5
    table = describe_lidc.format_table(result)
    assert "| spiculation |" in table and "shape word" in table
