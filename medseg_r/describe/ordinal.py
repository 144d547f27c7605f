"""Small, dependency-free fitting tools: ordinal ratings from measures (ridge regression + cut
points), multinomial logistic classes, and the agreement statistics the benchmarks report.

Models are plain dicts of numbers (JSON-able), so fitted parameters ship as Python data modules
(:mod:`.fitted_shape`, :mod:`.fitted_radiograph`; :func:`python_literal`) and load without pickle.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np


def weighted_kappa(a: Sequence[int], b: Sequence[int], *, levels: int = 5,
                   weights: str = "quadratic") -> float:
    """Cohen's weighted kappa of two ratings on ``1..levels`` (``weights``: quadratic or linear)."""
    a, b = np.asarray(a, int) - 1, np.asarray(b, int) - 1
    observed = np.zeros((levels, levels))
    np.add.at(observed, (a, b), 1.0)
    observed /= max(observed.sum(), 1.0)
    expected = np.outer(observed.sum(1), observed.sum(0))
    i, j = np.mgrid[:levels, :levels]
    power = 2 if weights == "quadratic" else 1
    w = np.abs(i - j) ** power / (levels - 1) ** power
    denominator = float((w * expected).sum())
    return 1.0 - float((w * observed).sum()) / denominator if denominator > 0 else 0.0


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two binary labellings."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    observed = float(np.mean(a == b))
    expected = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return (observed - expected) / (1 - expected) if expected < 1 else 0.0


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def _standardise(features: np.ndarray):
    mean = features.mean(0)
    scale = features.std(0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_ordinal(features: np.ndarray, ratings: Sequence[int], *, names: Sequence[str],
                ridge: float = 1.0, levels: int = 5) -> Dict[str, object]:
    """A rating model: ridge regression of the rating on standardised ``features`` [N, F] gives a
    score; cut points between consecutive ratings are set so that the predicted ratings of the
    fitting set occur as often as the real ones (quantile matching)."""
    x = np.asarray(features, float)
    y = np.asarray(ratings, float)
    mean, scale = _standardise(x)
    design = np.column_stack([(x - mean) / scale, np.ones(len(x))])
    penalty = ridge * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    coef = np.linalg.solve(design.T @ design + penalty, design.T @ y)
    score = design @ coef
    shares = np.cumsum([np.mean(y == k) for k in range(1, levels)])
    cuts = np.quantile(score, np.clip(shares, 0.0, 1.0))
    return {"names": list(names), "mean": mean.tolist(), "scale": scale.tolist(),
            "weights": coef[:-1].tolist(), "bias": float(coef[-1]), "cuts": cuts.tolist()}


def ordinal_score(model: Dict[str, object], features: np.ndarray) -> np.ndarray:
    """The model's continuous score for ``features`` [N, F] (columns in ``model['names']``)."""
    x = np.atleast_2d(np.asarray(features, float))
    z = (x - np.asarray(model["mean"])) / np.asarray(model["scale"])
    return z @ np.asarray(model["weights"]) + float(model["bias"])


def ordinal_rating(model: Dict[str, object], features: np.ndarray) -> np.ndarray:
    """Predicted ratings ``1..levels`` (int array [N])."""
    return 1 + np.searchsorted(np.asarray(model["cuts"]), ordinal_score(model, features),
                               side="right")


def quadratic_terms(features: np.ndarray) -> np.ndarray:
    """``[N, F]`` -> ``[N, F + F (F + 1) / 2]``: the features, then every product of two."""
    x = np.atleast_2d(np.asarray(features, float))
    pairs = [x[:, i] * x[:, j] for i in range(x.shape[1]) for j in range(i, x.shape[1])]
    return np.column_stack([x] + pairs)


def fit_logistic(features: np.ndarray, labels: Sequence[str], *, names: Sequence[str],
                 penalty: float, quadratic: bool = True) -> Dict[str, object]:
    """Multinomial logistic regression (L2 ``penalty`` on the weights, L-BFGS) on standardised
    features, with their pairwise products when ``quadratic``: class boundaries may curve."""
    from scipy.optimize import minimize

    raw = np.asarray(features, float)
    mean, scale = _standardise(raw)
    z = (raw - mean) / scale
    z = quadratic_terms(z) if quadratic else z
    z_mean, z_scale = _standardise(z)
    z = (z - z_mean) / z_scale
    labels = np.asarray(labels)
    classes: List[str] = sorted(set(labels.tolist()))
    target = np.stack([labels == c for c in classes], 1).astype(float)
    n, f, k = len(z), z.shape[1], len(classes)

    def loss(w: np.ndarray):
        weights, bias = w[:f * k].reshape(f, k), w[f * k:]
        logits = z @ weights + bias
        logits -= logits.max(1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(1, keepdims=True)
        value = -(target * np.log(prob + 1e-12)).sum() / n + penalty * (weights ** 2).sum()
        grad = (prob - target) / n
        return value, np.concatenate([(z.T @ grad + 2 * penalty * weights).ravel(), grad.sum(0)])

    w = minimize(loss, np.zeros(f * k + k), jac=True, method="L-BFGS-B",
                 options={"maxiter": 3000}).x
    return {"names": list(names), "classes": classes, "quadratic": quadratic,
            "mean": mean.tolist(), "scale": scale.tolist(), "term_mean": z_mean.tolist(),
            "term_scale": z_scale.tolist(), "weights": w[:f * k].reshape(f, k).tolist(),
            "bias": w[f * k:].tolist(), "penalty": penalty}


def logistic_classes(model: Dict[str, object], features: np.ndarray) -> List[str]:
    """The most likely class of each row of ``features`` [N, F] under :func:`fit_logistic`."""
    z = (np.atleast_2d(np.asarray(features, float)) - np.asarray(model["mean"])) / np.asarray(
        model["scale"])
    z = quadratic_terms(z) if model["quadratic"] else z
    z = (z - np.asarray(model["term_mean"])) / np.asarray(model["term_scale"])
    logits = z @ np.asarray(model["weights"]) + np.asarray(model["bias"])
    return [model["classes"][k] for k in np.argmax(logits, axis=1)]


def python_literal(value, indent: int = 0, width: int = 96) -> str:
    """A compact, line-wrapped Python literal of nested dicts, lists, numbers and strings (floats
    to 7 significant digits), for the fitted-parameter modules."""
    import textwrap

    pad = " " * (indent + 4)
    newline = "\n"
    if isinstance(value, dict):
        items = [f"{pad}{k!r}: {python_literal(v, indent + 4, width)}," for k, v in value.items()]
        return "{" + newline + newline.join(items) + newline + " " * indent + "}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            flat = ", ".join(f"{v:.7g}" if isinstance(v, float) else str(v) for v in value)
            body = textwrap.fill(flat, width=width - len(pad), break_long_words=False)
            return "[" + newline + textwrap.indent(body, pad) + newline + " " * indent + "]"
        items = [f"{pad}{python_literal(v, indent + 4, width)}," for v in value]
        return "[" + newline + newline.join(items) + newline + " " * indent + "]"
    if isinstance(value, float):
        return f"{value:.7g}"
    return repr(value)
