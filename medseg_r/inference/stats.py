"""Per-finding statistics of a predicted mask.

The model predicts one mask for a whole report. Each connected component of it is assigned to the
positive finding whose location prior covers the component's centre best (in-plane boxes of the
:class:`~medseg_r.cognition.LocationRasteriser`; for volumes also the cranio-caudal zone); with one
positive finding every component is its own, unless the user's box or points chose what was
segmented. Components no finding's location covers are "unassigned".
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy import ndimage

from ..cognition.rasterise import LocationRasteriser
from ..report.schema import Finding, Report
from ..report.transform import Z_ZONES


def _box_score(boxes, u: float, v: float) -> float:
    if boxes is None:
        return 0.5
    return max((1.0 if x0 <= u <= x1 and y0 <= v <= y1 else 0.0) for x0, y0, x1, y1 in boxes)


def _finding_score(finding: Finding, rasteriser: LocationRasteriser, u: float, v: float,
                   f: Optional[float]) -> float:
    loc = finding.location
    zones = [z for z in loc.zones if z in Z_ZONES]
    if f is not None:  # volume: zones are along the body axis
        if zones and "all" not in loc.zones and not any(Z_ZONES[z][0] <= f <= Z_ZONES[z][1] for z in zones):
            return 0.0
        saved = list(loc.zones)
        loc.zones = []
        try:
            return _box_score(rasteriser.boxes(finding), u, v)
        finally:
            loc.zones = saved
    return _box_score(rasteriser.boxes(finding), u, v)


def finding_statistics(mask: np.ndarray, prob: np.ndarray, report: Report, *,
                       rasteriser: Optional[LocationRasteriser] = None,
                       spacing: Optional[Tuple[float, float]] = None,
                       slice_mm: Optional[float] = None, prompted: bool = False) -> Dict[str, object]:
    """Statistics of ``mask`` (``[H, W]`` image or ``[Z, H, W]`` display-ordered stack) per finding.

    Args:
        prob: probabilities, same shape as ``mask``.
        spacing: in-plane (row, column) spacing in mm, when known. slice_mm: slice spacing for stacks
            (``None``: areas in mm², also for a one-slice volume). prompted: a box or points of the
            user's placed the mask, so a lone finding owns only the components its location covers
            (a box drawn in the right upper zone is not the "left lower lobe mass" of the report).
    Returns ``{"total": {...}, "findings": [{...} per positive finding], "unassigned": {...}}``."""
    rasteriser = rasteriser or LocationRasteriser()
    volume = mask.ndim == 3
    labels, count = ndimage.label(mask)
    # Work on foreground pixels only (fast on 10k x 10k images): component sizes, probability sums, centres.
    coords = np.nonzero(labels)
    lab = labels[coords]
    sizes = np.bincount(lab, minlength=count + 1).astype(np.float64)
    prob_sums = np.bincount(lab, weights=prob[coords], minlength=count + 1)
    centres = np.stack([np.bincount(lab, weights=c, minlength=count + 1) for c in coords], axis=1) / \
        np.maximum(sizes, 1)[:, None]
    positives = report.positive_findings
    groups: Dict[int, List[int]] = {i: [] for i in range(len(positives))}
    groups[-1] = []
    shape = mask.shape
    for label in range(1, count + 1):
        centre = centres[label]
        if volume:
            z, y, x = centre
            f = z / (shape[0] - 1) if shape[0] > 1 else None
        else:
            (y, x), f = centre, None
        u, v = (x + 0.5) / shape[-1], (y + 0.5) / shape[-2]
        scores = [_finding_score(p, rasteriser, u, v, f) for p in positives]
        if len(positives) == 1 and not prompted:
            groups[0].append(label)
        elif scores and max(scores) > 0:
            groups[int(np.argmax(scores))].append(label)
        else:
            groups[-1].append(label)

    pixel_mm2 = spacing[0] * spacing[1] if spacing else None

    def describe(chosen: List[int]) -> Dict[str, object]:
        n = int(sizes[chosen].sum()) if chosen else 0
        out: Dict[str, object] = {"components": len(chosen), ("voxels" if volume else "area_px"): n,
                                  "mean_probability": float(prob_sums[chosen].sum() / n) if n else None}
        if pixel_mm2 is not None:
            if volume and slice_mm is not None:
                out["volume_ml"] = round(n * pixel_mm2 * slice_mm / 1000.0, 4)
            else:  # a 2-D image, or one slice: an area (a thickness would be invented)
                out["area_mm2"] = round(n * pixel_mm2, 3)
        return out

    findings = []
    for i, finding in enumerate(positives):
        entry = {"index": report.findings.index(finding), "target": finding.target,
                 "location": finding.location.to_dict(), "reported_size_mm": finding.size_mm,
                 **describe(groups[i])}
        findings.append(entry)
    return {"total": describe(list(range(1, count + 1))), "findings": findings, "unassigned": describe(groups[-1])}
