"""What ``predict`` may be asked to do, checked before anything heavy is imported (no torch here: a
bad option is reported at once)."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass
class PredictOptions:
    """threshold: probability cut-off. box: ``(x0, y0, x1, y1)`` prompt (2-D images and one-slice volumes).
    window: CT ``(level, width)``, else percentile normalisation. z_zones: map report zones to
    cranio-caudal slices of volumes. largest: keep the N largest connected components (0 = all).
    fill_holes: fill enclosed holes. no_finding: what a report without any finding (nor a statement of
    a normal study, which gives an empty mask) does: ``"error"`` (default) or ``"segment"`` (run the
    model anyway, no prior). sheet_tiles: slices on a contact sheet."""

    threshold: float = 0.5
    box: Optional[Tuple[float, float, float, float]] = None
    window: Optional[Tuple[float, float]] = None
    z_zones: bool = True
    largest: int = 0
    fill_holes: bool = False
    no_finding: str = "error"
    sheet_tiles: int = 36
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        for name, low in (("largest", 0), ("sheet_tiles", 1)):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
        if self.window is not None and (len(self.window) != 2 or not all(
                math.isfinite(float(v)) for v in self.window) or float(self.window[1]) <= 0):
            raise ValueError(f"window must be (level, width) with a finite level and a positive "
                             f"width, got {tuple(self.window)}")
        if self.no_finding not in ("error", "segment"):
            raise ValueError(f"no_finding must be 'error' or 'segment', got {self.no_finding!r}")
        if self.box is not None:
            check_box(self.box)


def check_box(box) -> None:
    """A box in pixels: four finite numbers ``(x0, y0, x1, y1)`` with ``x1 > x0`` and ``y1 > y0``;
    else ``ValueError``."""
    if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
        raise ValueError(f"box must be four finite numbers (x0, y0, x1, y1), got {tuple(box)}")
    x0, y0, x1, y1 = box
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {tuple(box)}")
