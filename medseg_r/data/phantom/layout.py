"""Where lesions go: placement inside a lung zone, away from other lesions; and the source pools.

A lesion is placed by its centre inside the named third of the named lung, far enough from the lung
edge for its outline to fit, and at least 3 px (at 256 px) from every other lesion, so that masks
never touch and the reference mask of a target never includes a distractor. After rasterising the
real outline, its zone is checked again from the mask's centre; a lesion that drifted into another
zone is redrawn, never described wrongly.
"""
from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy import ndimage

from .anatomy import Anatomy
from .render import Lesion, lesion_mask, zone_of
from .sources import Nodule, clear_shape_nodules, load_nodules, lung_mask_names, shows_shape

SPLITS = ("train", "val", "test")
SIDES = ("right", "left")
ZONES = ("upper", "middle", "lower")
CELLS = tuple((side, zone) for side in SIDES for zone in ZONES)
# Where a lesion centre may go, as a fraction of its lung's height (zones are thirds of it).
ZONE_BANDS = {"upper": (0.06, 0.29), "middle": (0.38, 0.62), "lower": (0.71, 0.92)}


def split_of(key: str, fractions=(0.7, 0.1, 0.2)) -> str:
    """Stable split for a source item (lung mask name, nodule id), independent of the seed."""
    u = (zlib.crc32(key.encode()) % 10_000) / 10_000
    return "train" if u < fractions[0] else "val" if u < fractions[0] + fractions[1] else "test"


@dataclass
class Pools:
    """Source items of one split: lung mask names, and nodules by texture, by (texture, rated shape)
    and by (texture, shape shown by the outline)."""

    lungs: List[str]
    by_texture: Dict[str, List[Nodule]]
    by_texture_shape: Dict[Tuple[str, str], List[Nodule]]
    clear_shape: Dict[Tuple[str, str], List[Nodule]]


def make_pools() -> Dict[str, Pools]:
    """Pools per split; lung masks and nodules never cross splits."""
    pools = {s: Pools([], defaultdict(list), defaultdict(list), defaultdict(list)) for s in SPLITS}
    for name in lung_mask_names():
        pools[split_of("lung:" + name)].lungs.append(name)
    for nod in load_nodules():
        pool = pools[split_of(f"nodule:{nod.annotation_id}")]
        pool.by_texture[nod.texture].append(nod)
        pool.by_texture_shape[(nod.texture, nod.shape)].append(nod)
    for nod in clear_shape_nodules():
        pool = pools[split_of(f"nodule:{nod.annotation_id}")]
        pool.clear_shape[(nod.texture, shows_shape(nod))].append(nod)
    return pools


class Layout:
    """Places lesions in one chest; remembers what is already there."""

    def __init__(self, anatomy: Anatomy, rng: np.random.Generator):
        self.anatomy, self.rng = anatomy, rng
        self.S = anatomy.lungs.shape[0]
        self.depth = anatomy.lung_depth
        self.occupied = np.zeros_like(anatomy.lungs)
        self.gap = max(2, int(round(3 * self.S / 256)))
        self.points = {}
        for side in SIDES:
            lung = self.lung(side)
            ys, xs = np.nonzero(lung)
            top, bottom = ys.min(), ys.max()
            self.points[side] = (ys, xs, (ys - top) / max(bottom - top, 1))

    def lung(self, side: str) -> np.ndarray:
        return self.anatomy.right_lung if side == "right" else self.anatomy.left_lung

    def centre(self, side: str, zone: str, reach: float) -> Optional[Tuple[float, float]]:
        """A random point of (side, zone) at least ``reach`` px inside the lung, or None."""
        ys, xs, frac = self.points[side]
        lo, hi = ZONE_BANDS[zone]
        ok = np.nonzero((frac >= lo) & (frac <= hi) & (self.depth[ys, xs] > reach))[0]
        if ok.size == 0:
            return None
        k = int(ok[int(self.rng.integers(ok.size))])
        return float(ys[k]), float(xs[k])

    def add(self, nodule: Nodule, size_px: float, side: str, zone: str, *, role: str, strict: bool,
            tries: int = 12, near: Optional[Tuple[float, float]] = None) -> Optional[Lesion]:
        """Rasterise ``nodule`` at ``size_px`` in (side, zone) without touching other lesions.

        ``strict``: the whole outline must lie inside the lung (else it is clipped to it). ``near``:
        a centre to place it close to (hilar lymph nodes). Returns None when no place was found."""
        for _ in range(tries):
            if near is None:
                centre = self.centre(side, zone, 0.6 * size_px + 1 if strict else 0.3 * size_px)
            else:
                jitter = self.rng.normal(0, 0.01 * self.S, 2)
                centre = (near[0] + jitter[0], near[1] + jitter[1])
            if centre is None:
                return None
            mask = lesion_mask(nodule, size_px, centre, self.S, self.rng)
            outside = mask & ~self.lung(side)
            if (strict and outside.any()) or outside.sum() > 0.3 * mask.sum():
                continue
            mask &= self.lung(side)
            if not mask.any() or zone_of(mask, self.lung(side)) != zone:
                continue
            if (mask & self.occupied).any():
                continue
            self.occupied |= ndimage.binary_dilation(mask, iterations=self.gap)
            return Lesion(mask=mask, side=side, zone=zone, texture=nodule.texture,
                          shape=nodule.shape, ill_defined=nodule.ill_defined,
                          size_px=float(size_px), density=1.0,
                          annotation_id=nodule.annotation_id, role=role,
                          outline_shape=shows_shape(nodule))
        return None

    def overlap_fraction(self, mask: np.ndarray) -> float:
        """Share of ``mask`` over what hides lesions: heart, hila, clavicles, rib crossings."""
        a = self.anatomy
        hidden = a.heart | a.hila | a.clavicles | a.rib_crossings
        return float((mask & hidden).sum() / max(mask.sum(), 1))


def pick(items: List, rng: np.random.Generator):
    """One item of a non-empty list."""
    return items[int(rng.integers(len(items)))]


def free_cells(excluded) -> List[Tuple[str, str]]:
    """The (side, zone) cells not in ``excluded``."""
    return [c for c in CELLS if c not in set(excluded)]
