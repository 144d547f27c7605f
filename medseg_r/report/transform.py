"""Transformations of parsed reports that keep them consistent with transformed images."""
from __future__ import annotations

import copy

from .schema import Report

_SIDE_SWAP = {"left": "right", "right": "left"}
_REGION_SWAP = {"left": "right", "right": "left", "top_left": "top_right", "top_right": "top_left",
                "bottom_left": "bottom_right", "bottom_right": "bottom_left"}


def flip_report(report: Report) -> Report:
    """The report as it must read for a horizontally flipped image: patient sides and image-relative
    left/right swap (a mirrored radiograph shows the patient's right lung where the left one was)."""
    out = copy.deepcopy(report)
    for f in out.findings:
        f.location.side = _SIDE_SWAP.get(f.location.side, f.location.side)
        f.location.image_region = _REGION_SWAP.get(f.location.image_region, f.location.image_region)
    return out


# Cranio-caudal thirds of a volume as fractions of its superior-inferior extent (0 = most caudal slice,
# 1 = most cranial); they overlap a little, like the in-plane zones of the location rasteriser.
Z_ZONES = {"upper": (0.64, 1.0), "middle": (0.32, 0.68), "lower": (0.0, 0.36)}


def slice_report(report: Report, fraction: float) -> Report:
    """The report as it applies to one axial slice at ``fraction`` of the volume's cranio-caudal extent
    (0 = caudal end, 1 = cranial end).

    On an axial slice, "upper / middle / lower" are positions along the body axis, not in the image plane:
    a positive finding is kept only on slices inside one of its zones, and its zones are then cleared so
    that the in-plane location prior uses the side and organ alone. Negated findings are kept as they are.
    A report whose positive findings all fall outside the slice therefore has none left for it."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    out = copy.deepcopy(report)
    kept = []
    for f in out.findings:
        zones = [z for z in f.location.zones if z in Z_ZONES]
        if f.negated or not zones or "all" in f.location.zones:
            if not f.negated:
                f.location.zones = []
            kept.append(f)
            continue
        if any(Z_ZONES[z][0] <= fraction <= Z_ZONES[z][1] for z in zones):
            f.location.zones = []
            kept.append(f)
    out.findings = kept
    return out
