"""Hila and pulmonary vessels: lobulated hilar densities and branching vessel trees that taper
towards the periphery, with vessels seen end-on (bright round dots that look like small nodules).

The left hilum sits higher than the right, as in most normal chests. Vessels are splatted along
their course into three calibre classes, each blurred to its calibre; a vessel's density is
proportional to its calibre, so vessels fade out in the outer third of the lung. End-on vessels are
small discs about as wide as their vessel and denser than it (the X-ray runs along the vessel).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
from scipy import ndimage

WIDTH_CLASSES = (1.2, 2.2, 3.6)  # calibre (px at S = 256) each splat canvas is blurred to
VESSEL_DENSITY = 0.028  # peak density per pixel of calibre
DOT_DENSITY = 0.075  # peak density per pixel of radius for an end-on vessel


def _grow_trees(roots: np.ndarray, lung: np.ndarray, hilum, reach: float, u: float,
                rng: np.random.Generator, points: list, dots: list, levels: int = 5) -> None:
    """Grow the vessel trees of one lung level by level, all branches of a level at once.

    ``roots`` rows are (x, y, angle, length, width). A branch stops where it leaves the lung (after
    its first quarter); a branch that reached its full length forks in two, thinner and shorter,
    turning 14-34 degrees either way. Collects splat points (rows, cols, calibre) and end-on dots.
    """
    S = lung.shape[0]
    branches = roots
    for level in range(levels):
        if len(branches) == 0:
            return
        x, y, angle, length, width = branches.T
        steps = int(length.max() / (0.5 * u)) + 2  # a splat every half pixel along every branch
        t = (np.arange(steps) * 0.5 * u)[None, :] / length[:, None]
        valid = t <= 1.0
        bend = rng.normal(0, 0.15, len(branches))[:, None]
        cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
        xs = x[:, None] + length[:, None] * (t * cos - 0.5 * bend * t * t * sin)
        ys = y[:, None] + length[:, None] * (t * sin + 0.5 * bend * t * t * cos)
        xi, yi = np.round(xs).astype(int), np.round(ys).astype(int)
        in_image = (xi >= 0) & (xi < S) & (yi >= 0) & (yi < S)
        inside = in_image.copy()
        inside[in_image] = lung[yi[in_image], xi[in_image]]
        ok = (inside | (t < 0.25)) & in_image & valid
        alive = np.cumprod(ok, axis=1).astype(bool)  # up to where the branch leaves the lung
        kept = alive.sum(1)
        calibre = width[:, None] * (1.0 - 0.15 * t)
        points.append((yi[alive], xi[alive], calibre[alive]))
        last = np.maximum(kept - 1, 0)
        end_x, end_y = xs[np.arange(len(xs)), last], ys[np.arange(len(xs)), last]
        far = np.hypot(end_y - hilum[0], end_x - hilum[1]) / reach
        spot = (width >= 1.3 * u) & (far < 0.7) & (rng.random(len(xs)) < 0.18) & (kept >= 2)
        for k in np.nonzero(spot)[0]:
            radius = 0.5 * width[k] * rng.uniform(1.0, 1.35)
            dots.append((float(end_y[k]), float(end_x[k]), float(radius)))
        forks = (kept == valid.sum(1)) & (width * 0.72 >= 0.8 * u)
        n = int(forks.sum())
        if level == levels - 1 or n == 0:
            return
        turn = np.deg2rad(rng.uniform(14, 34, (n, 2))) * np.array([-1.0, 1.0])
        branches = np.stack([
            np.repeat(end_x[forks], 2), np.repeat(end_y[forks], 2),
            (angle[forks][:, None] + turn).ravel(),
            (length[forks][:, None] * rng.uniform(0.68, 0.86, (n, 2))).ravel(),
            (width[forks][:, None] * rng.uniform(0.66, 0.78, (n, 2))).ravel()], axis=1)


def draw_hila_and_vessels(right: np.ndarray, left: np.ndarray, lungs_soft: np.ndarray, mid: float,
                          top: float, height: float, rng: np.random.Generator):
    """Hila and vessels of both lungs (``lungs_soft``: the lung mask, slightly blurred).

    Returns (hila mask, density map, vessel-on-end dots [(y, x, r)], hilum centre per side)."""
    S = right.shape[0]
    u = S / 256.0
    grid = np.arange(S, dtype=float)
    hilar = np.zeros((S, S))
    points: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    dots: List[Tuple[float, float, float]] = []
    centres: Dict[str, Tuple[float, float]] = {}
    for side, lung, sign in (("right", right, -1), ("left", left, 1)):
        fraction = rng.uniform(0.42, 0.5) if side == "right" else rng.uniform(0.36, 0.44)
        level = top + fraction * height
        cols = np.nonzero(lung[int(np.clip(level, 0, S - 1))])[0]
        if cols.size:
            medial = cols.max() if side == "right" else cols.min()
        else:
            medial = mid + sign * 0.06 * S
        hx, hy = medial + sign * rng.uniform(0.015, 0.035) * S, level
        centres[side] = (float(hy), float(hx))
        for _ in range(4):  # a lobulated hilum: overlapping vessel and bronchus densities
            cy, cx = hy + rng.uniform(-0.06, 0.06) * S, hx + sign * rng.uniform(-0.01, 0.03) * S
            sy, sx = rng.uniform(0.018, 0.03) * S, rng.uniform(0.012, 0.02) * S
            blob = np.outer(np.exp(-((grid - cy) / sy) ** 2), np.exp(-((grid - cx) / sx) ** 2))
            hilar += rng.uniform(0.06, 0.1) * blob
        count = int(rng.integers(6, 10))
        angle = np.deg2rad(rng.uniform(-85, 88, count))  # from the lateral direction; < 0: upwards
        roots = np.stack([hx + sign * rng.uniform(0.0, 0.02, count) * S,
                          hy + rng.uniform(-0.05, 0.05, count) * S,
                          np.pi - angle if sign < 0 else angle,
                          rng.uniform(0.07, 0.11, count) * S,
                          rng.uniform(3.0, 4.2, count) * u], axis=1)
        _grow_trees(roots, lung, (hy, hx), 0.5 * height, u, rng, points, dots)
    canvases = [np.zeros(S * S) for _ in WIDTH_CLASSES]
    if points:
        yi = np.concatenate([p[0] for p in points])
        xi = np.concatenate([p[1] for p in points])
        calibre = np.concatenate([p[2] for p in points])
        klass = np.argmin(np.abs(calibre[:, None] / u - np.array(WIDTH_CLASSES)[None]), 1)
        for k in range(len(WIDTH_CLASSES)):
            sel = klass == k
            np.add.at(canvases[k], yi[sel] * S + xi[sel], calibre[sel])
    density = np.zeros((S, S))
    for k, width in enumerate(WIDTH_CLASSES):
        sigma = width * u / 2.0
        # a splat every 0.5*u px: after the blur, a peak of VESSEL_DENSITY per px of calibre
        line = ndimage.gaussian_filter(canvases[k].reshape(S, S), sigma)
        density += line * VESSEL_DENSITY * 0.5 * np.sqrt(2 * np.pi) * sigma
    dot_map = np.zeros((S, S))
    for cy, cx, r in dots:
        y0, y1 = max(0, int(cy - r - 2)), min(S, int(cy + r + 3))
        x0, x1 = max(0, int(cx - r - 2)), min(S, int(cx + r + 3))
        d2 = (np.arange(y0, y1)[:, None] - cy) ** 2 + (np.arange(x0, x1)[None] - cx) ** 2
        d2 = d2 / (r * r)
        dot_map[y0:y1, x0:x1] += DOT_DENSITY * r / u * np.sqrt(np.clip(1 - d2, 0, None))
    density += ndimage.gaussian_filter(dot_map, 0.5 * u)
    density = density * lungs_soft + hilar
    return hilar > 0.06, density, dots, centres
