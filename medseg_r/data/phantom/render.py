"""Chest-radiograph-like pictures from a real lung mask and real nodule outlines.

The picture (values in [0, 1], bright = dense, as a radiograph is displayed): soft-tissue body, dark lung
fields, a heart shadow that overlaps the left lung medially (patient's left = image right, radiological
convention), posterior ribs crossing both lungs, bright sub-diaphragmatic region, then lesions, blur,
contrast/gamma variation and noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np
from scipy import ndimage

from .sources import Nodule

# Added brightness per texture (before the case's contrast scaling); cavitary lesions are a ring.
TEXTURE_CONTRAST = {"ground_glass": 0.10, "part_solid": 0.20, "solid": 0.30, "calcified": 0.55, "cavitary": 0.30}


@dataclass
class Anatomy:
    lungs: np.ndarray  # bool [S, S]
    right_lung: np.ndarray  # patient's right = image left
    left_lung: np.ndarray
    heart: np.ndarray  # bool
    ribs: np.ndarray  # bool
    image: np.ndarray  # float [S, S] without lesions


@dataclass
class Lesion:
    mask: np.ndarray  # bool [S, S]
    side: str  # patient side
    zone: str
    texture: str
    shape: str
    ill_defined: bool
    size_px: float  # largest dimension in pixels
    contrast: float
    annotation_id: int
    tags: List[str] = field(default_factory=list)


def split_lungs(lungs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    labels, n = ndimage.label(lungs)
    centres = ndimage.center_of_mass(lungs, labels, range(1, n + 1))
    order = np.argsort([c[1] for c in centres])  # by x
    image_left = labels == order[0] + 1
    image_right = labels == order[-1] + 1
    return image_left, image_right  # patient's right, patient's left (radiological display)


def draw_anatomy(lungs: np.ndarray, rng: np.random.Generator) -> Anatomy:
    S = lungs.shape[0]
    yy, xx = np.mgrid[0:S, 0:S] / S
    right, left = split_lungs(lungs)
    body = 0.55 + 0.08 * (yy - 0.5) + rng.normal(0, 0.02)
    img = np.full((S, S), 1.0) * body
    lung_soft = ndimage.gaussian_filter(lungs.astype(float), S / 128)
    img = img * (1 - 0.65 * lung_soft)
    # heart: an ellipse centred right of the midline (patient's left), in the lower half of the chest
    ys, xs = np.nonzero(lungs)
    top, bottom = ys.min() / S, ys.max() / S
    cx = 0.5 + rng.uniform(0.03, 0.08)
    cy = top + (bottom - top) * rng.uniform(0.62, 0.72)
    rx, ry = rng.uniform(0.13, 0.18), rng.uniform(0.12, 0.16)
    heart = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1.0
    img = img + ndimage.gaussian_filter(heart.astype(float), S / 60) * rng.uniform(0.14, 0.22)
    # lung markings: faint low-frequency texture inside the lung fields
    img = img + 0.015 * lung_soft * ndimage.gaussian_filter(rng.normal(0, 1, (S, S)), S / 96) / 0.1
    # posterior ribs: gently curved bright bands across both lungs
    ribs = np.zeros((S, S), bool)
    spacing = (bottom - top) / rng.uniform(7.0, 9.0)
    for k in range(12):
        y0 = top - spacing + k * spacing
        band = np.abs(yy - y0 - 0.05 * np.cos(5.0 * (xx - 0.5))) < rng.uniform(0.008, 0.013)
        ribs |= band & ndimage.binary_dilation(lungs, iterations=max(1, S // 64))
    img = img + 0.09 * ndimage.gaussian_filter(ribs.astype(float), S / 256)
    # diaphragm: below each lung the body is bright
    below = np.zeros((S, S), bool)
    for lung in (right, left):
        cols = np.nonzero(lung.any(0))[0]
        for c in cols:
            below[np.nonzero(lung[:, c])[0].max():, c] = True
    img = np.where(below & ~lungs, np.maximum(img, 0.62), img)
    return Anatomy(lungs=lungs, right_lung=right, left_lung=left, heart=heart, ribs=ribs, image=img)


def zone_of(mask: np.ndarray, lung: np.ndarray) -> str:
    ys = np.nonzero(lung)[0]
    top, bottom = ys.min(), ys.max()
    cy = ndimage.center_of_mass(mask)[0]
    third = (cy - top) / max(bottom - top, 1)
    return "upper" if third < 1 / 3 else "middle" if third < 2 / 3 else "lower"


def lesion_mask(nodule: Nodule, size_px: float, centre: Tuple[float, float], S: int,
                rng: np.random.Generator) -> np.ndarray:
    """The nodule's real outline, rotated, scaled to ``size_px`` (largest dimension) and centred."""
    from skimage.draw import polygon as fill_polygon

    pts = nodule.polygon - nodule.polygon.mean(0)
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    pts = pts @ rot.T
    extent = max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1e-6)
    pts = pts * (size_px / extent) + np.array([centre[1], centre[0]])
    mask = np.zeros((S, S), bool)
    rr, cc = fill_polygon(pts[:, 1], pts[:, 0], shape=(S, S))
    mask[rr, cc] = True
    if not mask.any():
        mask[int(np.clip(centre[0], 0, S - 1)), int(np.clip(centre[1], 0, S - 1))] = True
    return mask


def paint_lesion(img: np.ndarray, lesion: Lesion, S: int) -> np.ndarray:
    base = lesion.mask.astype(float)
    sigma = max(0.6, lesion.size_px / (6.0 if lesion.ill_defined or lesion.texture == "ground_glass" else 14.0))
    soft = ndimage.gaussian_filter(base, sigma)
    soft = soft / max(soft.max(), 1e-6)
    if lesion.texture == "cavitary":
        inner = ndimage.binary_erosion(lesion.mask, iterations=max(1, int(lesion.size_px / 5)))
        soft = soft - 1.2 * ndimage.gaussian_filter(inner.astype(float), sigma)
    return img + lesion.contrast * np.clip(soft, -0.6, 1.0)


def finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = ndimage.gaussian_filter(img, rng.uniform(0.4, 1.0))
    lo, hi = np.percentile(img, 0.5), np.percentile(img, 99.5)
    img = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1) ** rng.uniform(0.8, 1.25)
    img = img * rng.uniform(0.8, 1.0) + rng.uniform(0.0, 0.1)
    img = img + rng.normal(0, rng.uniform(0.01, 0.04), img.shape)
    return np.clip(img, 0, 1)
