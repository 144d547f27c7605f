"""Lung fields of a frontal chest radiograph, found with classical image processing (no trained
weights ship offline for this), for the side and zone of a finding.

Method (all lengths are fractions of the image side ``S``):

1. intensities are scaled to the 1st-99th percentiles and smoothed (Gaussian, 0.006 S);
2. three-class Otsu thresholds (``skimage.filters.threshold_multiotsu``) split the picture into
   air outside the body (darkest), aerated lung, and soft tissue/bone; lung candidates are the
   middle class (or, when that finds fewer lungs, as on a film cropped to the chest, the darkest
   class), closed along the vertical (0.05 S) to bridge ribs and clavicles, opened (0.01 S) and
   cut at the spine (the brightest column of the central 30 %);
3. on each side of the spine, the largest candidate not touching the top or bottom border and
   covering at least 2 % of the image is that lung (holes, e.g. a dense lesion, filled);
4. thresholding misses the thin lung edges (apex, costophrenic angles), so the height of each
   field is widened by fractions fitted on phantom radiographs with known lung masks
   (:mod:`.fitted_radiograph`; ``python -m medseg_r.describe.fit_radiograph``).

Zones are thirds of the widened lung height, as the phantom and chest radiograph reports use them.
When a lung is not found (a cropped or non-chest image), its side takes the other lung's height, or
without any lung the image's middle 80 % of rows, and the spine column, or the image centre,
separates the sides (documented fallbacks; ``LungFields.found`` says which).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
from scipy import ndimage


@dataclass
class LungFields:
    """Lung fields in image terms: ``image_left`` / ``image_right`` bool masks or ``None``;
    ``extent`` maps each of them to its widened (top, bottom) rows; ``midline`` is the column
    separating them; ``found`` counts the lungs found (0-2)."""

    image_left: Optional[np.ndarray]
    image_right: Optional[np.ndarray]
    extent: Dict[str, Tuple[float, float]]
    midline: float
    found: int


def _correction() -> Tuple[float, float]:
    from .fitted_radiograph import PARAMETERS

    widen = PARAMETERS["lung_extent"]
    return float(widen["top"]), float(widen["bottom"])


def _spine_column(smooth: np.ndarray) -> int:
    S = smooth.shape[1]
    lo, hi = int(0.35 * S), int(0.65 * S)
    rows = smooth[int(0.2 * smooth.shape[0]):int(0.8 * smooth.shape[0]), lo:hi]
    profile = ndimage.uniform_filter1d(rows.mean(0), max(3, int(0.03 * S)))
    return lo + int(np.argmax(profile))


def _lungs_from(candidates: np.ndarray, spine: int, S: int) -> list:
    """The largest candidate component on each side of the spine (step 3)."""
    lung = ndimage.binary_closing(candidates, structure=np.ones((max(3, int(0.05 * S)), 1)))
    lung = ndimage.binary_opening(lung, iterations=max(1, int(0.01 * S)))
    half = max(1, int(0.01 * S))
    lung[:, max(0, spine - half):spine + half + 1] = False
    labels, n = ndimage.label(lung)
    edge = set(np.unique(np.concatenate([labels[0], labels[-1]])).tolist())
    best: list = [None, None]
    areas = [0.0, 0.0]
    if n:
        sizes = ndimage.sum(lung, labels, range(1, n + 1))
        centres = ndimage.center_of_mass(lung, labels, range(1, n + 1))
        for k in range(1, n + 1):
            if k in edge or sizes[k - 1] < 0.02 * lung.size:
                continue
            side = 0 if centres[k - 1][1] < spine else 1
            if sizes[k - 1] > areas[side]:
                areas[side], best[side] = sizes[k - 1], k
    return [None if k is None else ndimage.binary_fill_holes(labels == k) for k in best]


def raw_lung_masks(image: np.ndarray) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], int]:
    """(image-left lung, image-right lung, spine column) before widening (steps 1-3). The middle
    Otsu class is tried first (air outside the body is the darkest); a film without air around
    the body (cropped to the chest) has the lungs in the darkest class, tried next."""
    from skimage.filters import threshold_multiotsu

    img = np.asarray(image, float)
    if img.ndim == 3:
        img = img[..., :3].mean(-1)
    S = max(img.shape)
    lo, hi = np.percentile(img, [1, 99])
    img = np.clip((img - lo) / max(hi - lo, 1e-9), 0, 1)
    smooth = ndimage.gaussian_filter(img, 0.006 * S)
    spine = _spine_column(smooth)
    try:
        t_air, t_tissue = threshold_multiotsu(smooth, 3)
    except ValueError:  # fewer than three grey levels
        return None, None, spine
    found: list = [None, None]
    for candidates in ((smooth >= t_air) & (smooth < t_tissue), smooth < t_air):
        lungs = _lungs_from(candidates, spine, S)
        if sum(m is not None for m in lungs) > sum(m is not None for m in found):
            found = lungs
        if all(m is not None for m in found):
            break
    return found[0], found[1], spine


def find_lung_fields(image: np.ndarray) -> LungFields:
    """The lung fields of a frontal chest radiograph ``[H, W]`` (or ``[H, W, C]``; bright =
    dense), with the fallbacks of the module docstring."""
    left, right, spine = raw_lung_masks(image)
    top_widen, bottom_widen = _correction()
    extent: Dict[str, Tuple[float, float]] = {}
    for name, mask in (("image_left", left), ("image_right", right)):
        if mask is not None:
            rows = np.nonzero(mask.any(1))[0]
            height = float(rows.max() - rows.min())
            extent[name] = (rows.min() - top_widen * height, rows.max() + bottom_widen * height)
    found = len(extent)
    height = np.asarray(image).shape[0]
    for name in ("image_left", "image_right"):
        if name not in extent:
            extent[name] = next(iter(extent.values())) if found else (0.1 * height, 0.9 * height)
    midline = float(spine) if found else np.asarray(image).shape[1] / 2.0
    return LungFields(image_left=left, image_right=right, extent=extent, midline=midline,
                      found=found)


def lung_of(component: np.ndarray, fields: LungFields) -> str:
    """``image_left`` or ``image_right``: the lung field the component overlaps most, else the
    nearest one, else the side of the midline its centre lies on."""
    centre_x = float(np.nonzero(component)[1].mean())
    scores = {}
    for name in ("image_left", "image_right"):
        mask = getattr(fields, name)
        if mask is None:
            continue
        overlap = float((mask & component).sum())
        if overlap:
            scores[name] = overlap
    if scores:
        return max(scores, key=scores.get)
    distances = {}
    for name in ("image_left", "image_right"):
        mask = getattr(fields, name)
        if mask is not None:
            reach = ndimage.distance_transform_edt(~mask)
            distances[name] = float(reach[component].min())
    if distances:
        return min(distances, key=distances.get)
    return "image_left" if centre_x < fields.midline else "image_right"
