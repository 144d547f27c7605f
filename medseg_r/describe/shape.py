"""Shape words from contour measures, with rating models fitted on LIDC-IDRI outlines.

Each of the readers' shape ratings (``sphericity``, ``margin``, ``lobulation``, ``spiculation``;
1-5) is predicted from the scale-free measures of :func:`.measures.shape_features` alone by an
ordinal model (:func:`.ordinal.fit_ordinal`) fitted by ``python -m medseg_r.benchmarks.describe_lidc
--write-params`` (parameters in :mod:`.fitted_shape`). The shape word follows from the predicted
ratings with the rule the phantom benchmark uses for its own truth (``medseg_r.data.phantom``):
spiculation >= 3 -> ``spiculated``; else lobulation >= 3 -> ``lobulated``; else sphericity >= 4
-> ``round``, 3 -> ``oval``, below -> ``irregular``. A section under :data:`MIN_SHAPE_PIXELS`
across has no stated shape (its outline is a few pixels).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from .measures import SHAPE_FEATURES, shape_features
from .ordinal import ordinal_rating, ordinal_score

SHAPE_RATINGS = ("sphericity", "margin", "lobulation", "spiculation")
# The outline alone: readers rate larger LIDC nodules as more lobulated and spiculated, and adding
# the size in mm raises the LIDC agreement a little, but then any large lesion is called
# spiculated (the size is reported on its own).
MODEL_FEATURES = SHAPE_FEATURES
MIN_SHAPE_PIXELS = 6.0


def _models() -> Dict[str, Dict[str, object]]:
    from .fitted_shape import PARAMETERS

    return PARAMETERS["models"]


def shape_code(ratings: Dict[str, int]) -> str:
    """The shape word of LIDC-style ratings (see the module docstring)."""
    if ratings["spiculation"] >= 3:
        return "spiculated"
    if ratings["lobulation"] >= 3:
        return "lobulated"
    if ratings["sphericity"] >= 4:
        return "round"
    return "oval" if ratings["sphericity"] == 3 else "irregular"


def rate_shape(features: Dict[str, float]) -> Tuple[Dict[str, int], Dict[str, float]]:
    """(predicted ratings 1-5, continuous scores) for the measures of one section."""
    row = np.array([[features[name] for name in MODEL_FEATURES]])
    ratings, scores = {}, {}
    for name, model in _models().items():
        ratings[name] = int(ordinal_rating(model, row)[0])
        scores[name] = round(float(ordinal_score(model, row)[0]), 3)
    return ratings, scores


def describe_shape(section: np.ndarray, *, longest_px: float) -> Dict[str, object]:
    """Shape of one 2-D section (bool, square pixels): ``{"shape": code or None, "ratings": ...,
    "scores": ..., "features": ...}``; ``longest_px`` is its longest diameter in pixels."""
    features = shape_features(section)
    ratings, scores = rate_shape(features)
    code: Optional[str] = shape_code(ratings) if longest_px >= MIN_SHAPE_PIXELS else None
    return {"shape": code, "ratings": ratings, "scores": scores,
            "features": {k: round(v, 4) for k, v in features.items()}}
