"""Geometry of one lesion mask: size (longest diameter, short axis, area or volume) and the contour
measures that the shape classifier reads (:mod:`.shape`).

Conventions:

* Pixel ``spacing`` is ``(row_mm, col_mm)`` for 2-D masks and ``(x_mm, y_mm, z_mm)`` for 3-D masks
  ``[X, Y, Z]`` (the package's RAS+ voxel order; z is the superior axis, axial slices are
  ``mask[..., z]``). ``None`` measures in pixels.
* The longest diameter is the largest caliper (Feret) distance between pixel centres plus one
  pixel's width along that direction, so a row of ``n`` pixels measures ``n`` pixels: the
  edge-to-edge length a reader measures on screen. The short axis is the longest chord
  perpendicular to it (RECIST), measured on the outline's pixels the same way. In volumes both
  are measured in the axial slice where the longest diameter is largest (RECIST's axial long
  axis).
* Shape measures are computed on one 2-D section: the mask itself, or for volumes the axial slice
  with the largest area, resampled to a common scale (:func:`canonical_section`). They are ratios,
  so a mask measured at any resolution gives comparable values; below about 6 pixels across the
  outline carries little information.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

SHAPE_FEATURES = ("circularity", "solidity", "convexity", "elongation", "ellipse_residual",
                  "spectrum_low", "spectrum_mid", "spectrum_high", "defects", "defect_depth",
                  "spike_fraction")
_SIGNATURE_POINTS = 128


@dataclass
class Size:
    """Size of one lesion. Lengths are in mm when the spacing is known, else in pixels (``unit``).

    Attributes:
        longest: longest diameter (axial for volumes).
        short_axis: longest chord perpendicular to ``longest`` in the same plane.
        longest_3d: largest extent in any direction (volumes; equals ``longest`` for 2-D masks).
        area: pixel count times pixel area (mm² or px²) of the mask, or of the largest axial
            section for volumes.
        volume_ml: volume in millilitres (volumes with spacing), else ``None``.
        voxels: pixel or voxel count.
        unit: ``"mm"`` or ``"px"``.
    """

    longest: float
    short_axis: float
    longest_3d: float
    area: float
    volume_ml: Optional[float]
    voxels: int
    unit: str

    def to_dict(self) -> Dict[str, object]:
        return {"longest": round(self.longest, 2), "short_axis": round(self.short_axis, 2),
                "longest_3d": round(self.longest_3d, 2), "area": round(self.area, 2),
                "volume_ml": None if self.volume_ml is None else round(self.volume_ml, 4),
                "voxels": self.voxels, "unit": self.unit}


def _boundary_points(mask: np.ndarray) -> np.ndarray:
    """Coordinates ``[N, D]`` of the pixels of ``mask`` that touch the background."""
    inner = ndimage.binary_erosion(mask, border_value=0)
    return np.argwhere(mask & ~inner).astype(float)


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull, QhullError

    if len(points) <= 64:
        return points
    try:
        return points[ConvexHull(points).vertices]
    except QhullError:  # collinear or coplanar points: every point may be extreme
        return points


def caliper(points_mm: np.ndarray, pixel_mm: Sequence[float]) -> Tuple[float, float, np.ndarray]:
    """(longest, short axis, unit direction of the longest) of pixel centres ``points_mm`` [N, 2]
    in mm; each length gets one pixel's width along its direction (``pixel_mm`` per axis)."""
    pixel = np.asarray(pixel_mm, float)
    if len(points_mm) == 1:
        return float(pixel.max()), float(pixel.min()), np.array([1.0, 0.0])
    hull = _hull_vertices(points_mm)
    diff = hull[:, None, :] - hull[None, :, :]
    dist = np.sqrt((diff ** 2).sum(-1))
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    if dist[i, j] == 0:
        return float(pixel.max()), float(pixel.min()), np.array([1.0, 0.0])
    direction = diff[i, j] / dist[i, j]
    normal = np.array([-direction[1], direction[0]])
    longest = dist[i, j] + float(np.abs(direction) @ pixel)
    # The short axis is the longest chord perpendicular to the long axis: points are binned along
    # the long axis (one pixel wide) and the largest extent across within a bin is kept.
    along, across = points_mm @ direction, points_mm @ normal
    step = float(np.abs(direction) @ pixel)
    bins = np.floor((along - along.min()) / max(step, 1e-9)).astype(int)
    order = np.argsort(bins, kind="stable")
    starts = np.r_[0, np.nonzero(np.diff(bins[order]))[0] + 1]
    widths = np.maximum.reduceat(across[order], starts) - np.minimum.reduceat(across[order], starts)
    short = float(widths.max()) + float(np.abs(normal) @ pixel)
    return float(longest), min(short, float(longest)), direction


def measure_size(mask: np.ndarray, spacing: Optional[Sequence[float]] = None) -> Size:
    """Size of a 2-D ``[H, W]`` or 3-D ``[X, Y, Z]`` boolean mask (one lesion, any number of
    pieces); ``spacing`` in mm per axis, or ``None`` for pixels."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("cannot measure an empty mask")
    unit = "px" if spacing is None else "mm"
    step = np.ones(mask.ndim) if spacing is None else np.asarray(spacing, float)
    if mask.ndim == 2:
        longest, short, _ = caliper(_boundary_points(mask) * step, step)
        return Size(longest, short, longest, float(mask.sum() * step.prod()), None,
                    int(mask.sum()), unit)
    best = (0.0, 0.0)
    for z in np.nonzero(mask.any(axis=(0, 1)))[0]:
        section = mask[..., z]
        result = caliper(_boundary_points(section) * step[:2], step[:2])[:2]
        best = max(best, result)
    points = _boundary_points(mask) * step
    hull = _hull_vertices(points)
    far = float(np.sqrt(((hull[:, None] - hull[None]) ** 2).sum(-1)).max()) + float(step.min())
    areas = mask.sum(axis=(0, 1))
    volume = None if spacing is None else float(mask.sum() * step.prod() / 1000.0)
    return Size(best[0], best[1], max(far, best[0]), float(areas.max() * step[:2].prod()), volume,
                int(mask.sum()), unit)


def largest_section(mask: np.ndarray) -> np.ndarray:
    """The 2-D section whose shape is measured: the mask itself, or the axial slice of a volume
    with the largest area (``[X, Y]``)."""
    mask = np.asarray(mask, bool)
    if mask.ndim == 2:
        return mask
    return mask[..., int(np.argmax(mask.sum(axis=(0, 1))))]


def isotropic(section: np.ndarray, pixel_mm: Optional[Sequence[float]]) -> np.ndarray:
    """Resample a 2-D mask to square pixels (nearest neighbour) when its spacing differs by axis."""
    if pixel_mm is None or abs(pixel_mm[0] - pixel_mm[1]) <= 0.02 * max(pixel_mm):
        return section
    finest = min(pixel_mm)
    zoom = (pixel_mm[0] / finest, pixel_mm[1] / finest)
    return ndimage.zoom(section.astype(np.uint8), zoom, order=0).astype(bool)


def _outer_contour(section: np.ndarray) -> np.ndarray:
    from skimage.measure import find_contours

    contours = find_contours(np.pad(section, 2).astype(float), 0.5)
    return max(contours, key=len)


def _signature_spectrum(contour: np.ndarray, centre: np.ndarray) -> Tuple[float, float, float]:
    """Amplitudes (relative to the mean radius) of the centroid-distance signature of the outline,
    resampled at equal arc length, in three harmonic bands: 2-4 (elongation, broad lobes),
    5-12 (lobulation), 13-40 (spicules and fine irregularity)."""
    closed = np.vstack([contour, contour[:1]])
    steps = np.sqrt((np.diff(closed, axis=0) ** 2).sum(1))
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    even = np.linspace(0.0, arc[-1], _SIGNATURE_POINTS, endpoint=False)
    points = np.stack([np.interp(even, arc, closed[:, k]) for k in (0, 1)], axis=1)
    radius = np.sqrt(((points - centre) ** 2).sum(1))
    spectrum = np.abs(np.fft.rfft(radius / max(radius.mean(), 1e-9))) / (_SIGNATURE_POINTS / 2)

    def band(lo: int, hi: int) -> float:
        return float(np.sqrt((spectrum[lo:hi + 1] ** 2).sum()))

    return band(2, 4), band(5, 12), band(13, 40)


CANONICAL_DIAMETER = 40.0
CANONICAL_SMOOTHING = 0.0


def canonical_section(section: np.ndarray, *, diameter: float = CANONICAL_DIAMETER,
                      smoothing: float = CANONICAL_SMOOTHING) -> np.ndarray:
    """The largest piece of a 2-D mask resampled (bilinear; anti-aliased when shrinking) so that
    its equivalent-circle diameter is ``diameter`` pixels, optionally smoothed by a Gaussian of
    ``smoothing`` times that diameter, and thresholded at one half. Every outline is measured at
    one scale, so the measures do not depend on the pixel size (the pixel size itself reaches
    the shape models only through the lesion's size in mm)."""
    section = np.asarray(section, bool)
    labels, n = ndimage.label(section, structure=np.ones((3, 3)))
    if n > 1:
        sizes = ndimage.sum(section, labels, range(1, n + 1))
        section = labels == (int(np.argmax(sizes)) + 1)
    ys, xs = np.nonzero(section)
    crop = section[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(float)
    zoom = diameter / max(2.0 * np.sqrt(crop.sum() / np.pi), 1.0)
    margin = int(np.ceil(2 + 3 * smoothing * diameter / zoom))
    crop = np.pad(crop, margin)
    if zoom < 1:
        crop = ndimage.gaussian_filter(crop, 0.5 / zoom)
    big = ndimage.zoom(crop, zoom, order=1)
    big = ndimage.gaussian_filter(big, smoothing * diameter) if smoothing > 0 else big
    out = big >= 0.5
    return out if out.any() else big >= big.max() / 2


def shape_features(section: np.ndarray, *, canonical: bool = True) -> Dict[str, float]:
    """Scale-free contour measures of a 2-D boolean mask (square pixels; largest piece), measured
    on its :func:`canonical_section` unless ``canonical`` is false.

    Returns a dict with the keys of :data:`SHAPE_FEATURES`: ``circularity`` (4 pi A / P^2 of the
    sub-pixel outline), ``solidity`` (area / convex-hull area), ``convexity`` (hull perimeter /
    perimeter), ``elongation`` (minor / major axis of the second moments; 1 = round),
    ``ellipse_residual`` (pixels outside the moment-equivalent ellipse, or inside it and not in
    the mask, over the area), ``spectrum_low/mid/high`` (:func:`_signature_spectrum`),
    ``defects`` (convexity defects deeper than 0.15 equivalent radii), ``defect_depth`` (the
    deepest, in equivalent radii) and ``spike_fraction`` (share of the area an opening with a disc
    of a quarter equivalent radius removes: thin spicules vanish, broad lobes stay)."""
    from scipy.spatial import ConvexHull, QhullError
    from skimage.morphology import convex_hull_image, disk

    section = canonical_section(section) if canonical else np.asarray(section, bool)
    labels, n = ndimage.label(section, structure=np.ones((3, 3)))
    if n > 1:
        sizes = ndimage.sum(section, labels, range(1, n + 1))
        section = labels == (int(np.argmax(sizes)) + 1)
    ys, xs = np.nonzero(section)
    crop = np.pad(section[ys.min():ys.max() + 1, xs.min():xs.max() + 1], 1)
    area_px = float(crop.sum())
    r_eq = np.sqrt(area_px / np.pi)
    contour = _outer_contour(crop)
    x, y = contour[:, 1], contour[:, 0]
    poly_area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    steps = np.diff(np.vstack([contour, contour[:1]]), axis=0)
    perimeter = float(np.sqrt((steps ** 2).sum(1)).sum())
    try:
        hull = ConvexHull(contour)
        hull_area, hull_perimeter = float(hull.volume), float(hull.area)
    except QhullError:
        hull_area, hull_perimeter = max(poly_area, 1e-9), perimeter
    points = np.argwhere(crop).astype(float)
    centre = points.mean(0)
    cov = np.cov(points.T) if len(points) > 2 else np.eye(2) / 12
    cov = cov + np.eye(2) / 12  # a pixel's own spread, so one row of pixels has a finite minor axis
    eig = np.linalg.eigvalsh(cov)
    grid = np.argwhere(np.ones_like(crop)).astype(float) - centre
    inside = (np.einsum("ni,ij,nj->n", grid, np.linalg.inv(cov), grid) <= 4.0).reshape(crop.shape)
    hull_mask = convex_hull_image(crop)
    deficiency, n_def = ndimage.label(hull_mask & ~crop)
    depth = ndimage.distance_transform_edt(hull_mask)
    depths = ndimage.maximum(depth, deficiency, range(1, n_def + 1)) if n_def else []
    depths = np.asarray(depths, float) / max(r_eq, 1e-9)
    opened = ndimage.binary_opening(crop, structure=disk(max(1, int(round(0.25 * r_eq)))))
    low, mid, high = _signature_spectrum(contour, np.array([centre[0] + 2, centre[1] + 2]))
    return {
        "circularity": float(min(4 * np.pi * poly_area / max(perimeter ** 2, 1e-9), 1.0)),
        "solidity": float(min(poly_area / max(hull_area, 1e-9), 1.0)),
        "convexity": float(min(hull_perimeter / max(perimeter, 1e-9), 1.0)),
        "elongation": float(np.sqrt(eig[0] / eig[1])),
        "ellipse_residual": float((crop ^ inside).sum() / area_px),
        "spectrum_low": low, "spectrum_mid": mid, "spectrum_high": high,
        "defects": float((depths >= 0.15).sum()),
        "defect_depth": float(depths.max()) if depths.size else 0.0,
        "spike_fraction": float((crop & ~opened).sum() / area_px),
    }
