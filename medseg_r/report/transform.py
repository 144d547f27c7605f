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
