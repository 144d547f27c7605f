"""Location prior -> coarse spatial map, from per-organ layouts and the image orientation convention.

Layouts are written in the *radiological* convention (patient's right on the image's left) in
normalised content coordinates ``(x0, y0, x1, y1)``; ``orientation="neurological"`` (patient's left on
the image's left) mirrors the whole anatomy, sided or not (the liver and spleen change sides as the
lungs do). Image-relative regions ("upper left of the image") are never mirrored. Users may pass their own ``layouts`` mapping with the same keys.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from ..report.schema import Finding, Report

Box = Tuple[float, float, float, float]

_THIRDS = {"upper": (0.0, 0.36), "middle": (0.32, 0.68), "lower": (0.64, 1.0), "all": (0.0, 1.0)}
DEFAULT_LAYOUTS: Dict[str, dict] = {
    # Frontal chest radiograph / axial chest CT: two lung fields, zones by height within them.
    "lung": {"extent": (0.08, 0.08, 0.92, 0.9),
             "sides": {"right": (0.08, 0.08, 0.5, 0.9), "left": (0.5, 0.08, 0.92, 0.9),
                       "midline": (0.38, 0.08, 0.62, 0.9)},
             "zones": {"upper": (0.08, 0.38), "middle": (0.34, 0.64), "lower": (0.6, 0.9), "all": (0.08, 0.9)}},
    "heart": {"extent": (0.35, 0.45, 0.75, 0.85), "sides": {}, "zones": {}},
    "liver": {"extent": (0.05, 0.1, 0.62, 0.75),
              "sides": {"right": (0.05, 0.1, 0.42, 0.75), "left": (0.35, 0.1, 0.62, 0.6),
                        "midline": (0.3, 0.2, 0.5, 0.7)}, "zones": {}},
    "spleen": {"extent": (0.62, 0.15, 0.92, 0.6), "sides": {}, "zones": {}},
    "kidney": {"extent": (0.15, 0.3, 0.85, 0.8),
               "sides": {"right": (0.15, 0.3, 0.42, 0.8), "left": (0.58, 0.3, 0.85, 0.8)}, "zones": {}},
    "pancreas": {"extent": (0.3, 0.35, 0.75, 0.6), "sides": {}, "zones": {}},
    # A breast image shows one breast: the side says which breast, not where in the image.
    "breast": {"extent": (0.0, 0.0, 1.0, 1.0), "sides": {}, "zones": _THIRDS},
    "generic": {"extent": (0.0, 0.0, 1.0, 1.0),
                "sides": {"right": (0.0, 0.0, 0.5, 1.0), "left": (0.5, 0.0, 1.0, 1.0),
                          "midline": (0.3, 0.0, 0.7, 1.0)}, "zones": _THIRDS},
}
IMAGE_REGION_BOXES: Dict[str, Box] = {
    "top_left": (0.0, 0.0, 0.55, 0.55), "top_right": (0.45, 0.0, 1.0, 0.55),
    "bottom_left": (0.0, 0.45, 0.55, 1.0), "bottom_right": (0.45, 0.45, 1.0, 1.0),
    "center": (0.25, 0.25, 0.75, 0.75), "left": (0.0, 0.0, 0.55, 1.0), "right": (0.45, 0.0, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.55), "bottom": (0.0, 0.45, 1.0, 1.0),
}
ORIENTATIONS = ("radiological", "neurological")


def _mirror(box: Box) -> Box:
    x0, y0, x1, y1 = box
    return (1.0 - x1, y0, 1.0 - x0, y1)


class LocationRasteriser:
    """Turn each report's positive findings into a soft map ``[1, h, w]`` in ``[0, 1]``.

    Args:
        orientation: ``"radiological"`` (default; patient's left on the image's right) or ``"neurological"``.
        layouts: per-organ layouts (default :data:`DEFAULT_LAYOUTS`); ``"generic"`` is the fallback.
        softness: edge width of the soft boxes, as a fraction of the image.
    """

    def __init__(self, *, orientation: str = "radiological", layouts: Optional[Dict[str, dict]] = None,
                 softness: float = 0.04) -> None:
        if orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
        if softness <= 0:
            raise ValueError("softness must be positive")
        self.orientation = orientation
        self.layouts = dict(DEFAULT_LAYOUTS if layouts is None else layouts)
        self.layouts.setdefault("generic", DEFAULT_LAYOUTS["generic"])
        self.softness = softness

    def boxes(self, finding: Finding) -> Optional[List[Box]]:
        """Boxes (content coordinates) where ``finding`` may lie, or ``None`` when it has no location."""
        loc = finding.location
        if loc.image_region:
            return [IMAGE_REGION_BOXES.get(loc.image_region, (0.0, 0.0, 1.0, 1.0))]
        if not (loc.side or loc.zones or loc.organ):
            return None
        layout = self.layouts.get(loc.organ or "", self.layouts["generic"])
        sides = ["left", "right"] if loc.side == "bilateral" else [loc.side] if loc.side else []
        boxes = [layout["sides"][s] for s in sides if s in layout["sides"]] or [layout["extent"]]
        zones = layout["zones"] or _THIRDS
        if loc.zones and "all" not in loc.zones:
            ranges = [zones[z] for z in loc.zones if z in zones]
            boxes = [(x0, max(y0, r0), x1, min(y1, r1)) for (x0, y0, x1, y1) in boxes for r0, r1 in ranges]
        if self.orientation == "neurological":  # layouts are written radiologically: mirror all anatomy
            boxes = [_mirror(b) for b in boxes]
        return boxes

    def _soft_box(self, box: Box, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x0, y0, x1, y1 = box
        s = self.softness
        return (torch.sigmoid((u - x0) / s) * torch.sigmoid((x1 - u) / s)
                * torch.sigmoid((v - y0) / s) * torch.sigmoid((y1 - v) / s))

    @staticmethod
    def _grid(size: Tuple[int, int], fraction: Tuple[float, float], device):
        h, w = size
        fh, fw = fraction
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h / fh
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w / fw
        v, u = torch.meshgrid(ys, xs, indexing="ij")
        return u, v, ((u <= 1.0) & (v <= 1.0)).float()

    def finding_map(self, finding: Finding, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """One finding's soft map on the grid ``u, v`` (0.5 everywhere when it has no location)."""
        boxes = self.boxes(finding)
        if boxes is None:
            return torch.full_like(u, 0.5)
        prob = torch.zeros_like(u)
        for box in boxes:
            prob = torch.maximum(prob, self._soft_box(box, u, v))
        return prob

    def render(self, reports: Sequence[Report], *, size: Tuple[int, int],
               content: Iterable[Tuple[float, float]] | None = None, device=None) -> torch.Tensor:
        """Maps ``[B, 1, h, w]``: the union of the positive findings' maps. ``content`` gives per
        image the (height, width) fraction of the canvas holding the image (the rest is padding and
        gets 0); default: the whole canvas."""
        h, w = size
        content = list(content) if content is not None else [(1.0, 1.0)] * len(reports)
        out = torch.zeros(len(reports), 1, h, w, device=device)
        for b, (report, fraction) in enumerate(zip(reports, content)):
            u, v, inside = self._grid(size, fraction, device)
            if not report.findings:
                out[b, 0] = 0.5 * inside  # nothing said: no spatial preference
                continue
            prob = torch.zeros(h, w, device=device)
            for finding in report.positive_findings:
                prob = torch.maximum(prob, self.finding_map(finding, u, v))
            out[b, 0] = prob * inside
        return out

    def render_findings(self, reports: Sequence[Report], *, size: Tuple[int, int],
                        content: Iterable[Tuple[float, float]] | None = None,
                        device=None) -> List[torch.Tensor]:
        """Per report, one map per positive finding ``[n, h, w]`` (``n`` may be 0), in the order
        of :attr:`Report.positive_findings`."""
        content = list(content) if content is not None else [(1.0, 1.0)] * len(reports)
        out = []
        for report, fraction in zip(reports, content):
            u, v, inside = self._grid(size, fraction, device)
            maps = [self.finding_map(f, u, v) * inside for f in report.positive_findings]
            out.append(torch.stack(maps) if maps else torch.zeros(0, *size, device=device))
        return out
