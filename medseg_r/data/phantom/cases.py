"""The lesions of one case, by kind (:mod:`.generate` documents the kinds and distractor rules)."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from .layout import CELLS, Layout, Pools, free_cells, pick
from .render import Lesion

TEXTURE_WEIGHTS = {"ground_glass": 0.26, "solid": 0.26, "part_solid": 0.12, "calcified": 0.2,
                   "cavitary": 0.16}
SHAPE_TEXTURE_WEIGHTS = {"solid": 0.6, "part_solid": 0.2, "calcified": 0.2}
GRANULOMA_MAX_MM = 5.5  # calcified granulomas at most this big may go unreported
SHAPE_CONSPICUITY = 1.35  # by_shape look-alikes are drawn denser (both alike): outlines must show


class CaseFailed(Exception):
    """This random draw cannot be laid out (no room in the chosen zone); the caller redraws."""


def _weighted(weights: Dict[str, float], allowed, rng: np.random.Generator) -> str:
    names = [t for t in weights if t in allowed]
    if not names:
        raise CaseFailed("no source items for this kind")
    p = np.array([weights[t] for t in names])
    return str(names[int(rng.choice(len(names), p=p / p.sum()))])


def _log_uniform(lo: float, hi: float, rng: np.random.Generator) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _textures(pool: Pools) -> List[str]:
    return [t for t in pool.by_texture if pool.by_texture[t]]


def random_targets(layout: Layout, pool: Pools, rng: np.random.Generator) -> List[Lesion]:
    """1-3 described lesions of any texture, shape and size (3 px to 18 % of the image width),
    each in its own (side, zone) cell."""
    u = layout.S / 256.0
    count = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    cells = [CELLS[i] for i in rng.choice(len(CELLS), size=count, replace=False)]
    lesions = []
    for side, zone in cells:
        nodule = pick(pool.by_texture[_weighted(TEXTURE_WEIGHTS, _textures(pool), rng)], rng)
        size = _log_uniform(3 * u, 0.18 * layout.S, rng)
        lesion = layout.add(nodule, size, side, zone, role="target", strict=False)
        if lesion is not None:
            lesions.append(lesion)
    if not lesions:
        raise CaseFailed("no target fitted")
    return lesions


def _similar(layout: Layout, nodules, base: float, cells, rng: np.random.Generator) -> List[Lesion]:
    """Lesions of ``nodules`` at sizes within 10 % of ``base``, one per cell; all must fit. One of
    them, at random, is the target; the others are mentioned as not the target."""
    out = []
    for nodule, (side, zone) in zip(nodules, cells):
        size = base * rng.uniform(0.9, 1.1)
        lesion = layout.add(nodule, size, side, zone, role="mentioned", strict=True)
        if lesion is None:
            raise CaseFailed("a look-alike did not fit")
        out.append(lesion)
    out[int(rng.integers(len(out)))].role = "target"
    return out


def _distinct(items: List, count: int, rng: np.random.Generator) -> List:
    if len(items) < count:
        raise CaseFailed("too few source items")
    return [items[i] for i in rng.choice(len(items), size=count, replace=False)]


def by_location(layout: Layout, pool: Pools, rng: np.random.Generator) -> List[Lesion]:
    """2-3 lesions of one texture and one rated shape, similar sizes, in different cells."""
    u = layout.S / 256.0
    pairs = [key for key, nodules in pool.by_texture_shape.items() if len(nodules) >= 3]
    texture = _weighted(TEXTURE_WEIGHTS, {t for t, _ in pairs}, rng)
    shape = pick(sorted(s for t, s in pairs if t == texture), rng)
    count = 2 if rng.random() < 0.7 else 3
    cells = [CELLS[i] for i in rng.choice(len(CELLS), size=count, replace=False)]
    nodules = _distinct(pool.by_texture_shape[(texture, shape)], count, rng)
    return _similar(layout, nodules, _log_uniform(6 * u, 22 * u, rng), cells, rng)


def by_texture(layout: Layout, pool: Pools, rng: np.random.Generator) -> List[Lesion]:
    """Two lesions in one cell with different textures, one rated shape, similar sizes."""
    u = layout.S / 256.0
    cell = pick(list(CELLS), rng)
    first = _weighted(TEXTURE_WEIGHTS, _textures(pool), rng)
    shapes = {s for (t, s), v in pool.by_texture_shape.items() if t == first and v}
    others = {t for (t, s), v in pool.by_texture_shape.items() if t != first and s in shapes and v}
    second = _weighted(TEXTURE_WEIGHTS, others, rng)
    shape = pick(sorted(s for s in shapes if pool.by_texture_shape.get((second, s))), rng)
    nodules = [pick(pool.by_texture_shape[(t, shape)], rng) for t in (first, second)]
    return _similar(layout, nodules, _log_uniform(7 * u, 20 * u, rng), [cell, cell], rng)


def by_shape(layout: Layout, pool: Pools, rng: np.random.Generator) -> List[Lesion]:
    """Two lesions in one cell with one texture and different shapes shown by their real outlines,
    13-29 px across at 256 px, rendered equally sharp (the margin is no cue) and 35 % denser."""
    u = layout.S / 256.0
    cell = pick(list(CELLS), rng)
    shapes_of: Dict[str, List[str]] = {}
    for (texture, shape), nodules in pool.clear_shape.items():
        if nodules:
            shapes_of.setdefault(texture, []).append(shape)
    usable = [t for t, shapes in shapes_of.items() if len(shapes) >= 2]
    texture = _weighted(SHAPE_TEXTURE_WEIGHTS, usable, rng)
    shapes = _distinct(sorted(shapes_of[texture]), 2, rng)
    nodules = [pick(pool.clear_shape[(texture, s)], rng) for s in shapes]
    lesions = _similar(layout, nodules, rng.uniform(15 * u, 26 * u), [cell, cell], rng)
    for lesion in lesions:
        lesion.ill_defined = False
        lesion.density = SHAPE_CONSPICUITY
    return lesions


def granulomas(layout: Layout, pool: Pools, mm_per_px: float, rng: np.random.Generator,
               avoid) -> List[Lesion]:
    """1-3 small calcified granulomas (at most 5.5 mm) outside the cells in ``avoid``."""
    u = layout.S / 256.0
    cells = free_cells(avoid)
    hi = min(4.0 * u, GRANULOMA_MAX_MM / mm_per_px)
    out = []
    for _ in range(int(rng.integers(1, 4))):
        if not cells:
            break
        side, zone = pick(cells, rng)
        nodule = pick(pool.by_texture["calcified"], rng)
        size = rng.uniform(min(2.2 * u, hi), hi)
        lesion = layout.add(nodule, size, side, zone, role="omitted", strict=True)
        if lesion is not None:
            out.append(lesion)
    return out


def benign_lesion(layout: Layout, pool: Pools, rng: np.random.Generator, avoid) -> Optional[Lesion]:
    """A lesion of 6-16 px (8-22 mm at 256 px) that the report names as a known benign finding."""
    u = layout.S / 256.0
    cells = free_cells(avoid)
    if not cells:
        return None
    side, zone = pick(cells, rng)
    nodule = pick(pool.by_texture[_weighted(TEXTURE_WEIGHTS, _textures(pool), rng)], rng)
    return layout.add(nodule, rng.uniform(6 * u, 16 * u), side, zone, role="mentioned", strict=True)


def hilar_node(layout: Layout, pool: Pools, rng: np.random.Generator, avoid) -> Optional[Lesion]:
    """A calcified lymph node (3-4.5 px) at one hilum, outside the cells in ``avoid``; the report
    names it by an ``ignore:`` phrase of the parser's vocabulary."""
    u = layout.S / 256.0
    side = pick(["right", "left"], rng)
    near = layout.anatomy.hilum_centres[side]
    ys = np.nonzero(layout.lung(side))[0]
    fraction = (near[0] - ys.min()) / max(ys.max() - ys.min(), 1)
    zone = "upper" if fraction < 1 / 3 else "middle" if fraction < 2 / 3 else "lower"
    if (side, zone) in set(avoid):
        return None
    nodule = pick(pool.by_texture["calcified"], rng)
    lesion = layout.add(nodule, rng.uniform(3 * u, 4.5 * u), side, zone, role="mentioned",
                        strict=True, near=near)
    if lesion is not None:
        lesion.tags.append("hilar_node")
    return lesion
