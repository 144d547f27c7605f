"""Where a lesion is, in the words of ``PRIORS.md``.

* 2-D chest radiographs: side and zone from the lung fields (:mod:`.chest`); organ ``lung``.
* Volumes (``[X, Y, Z]``, RAS+; world coordinates from the affine when the case came from a
  file, else from the spacing): side from the lesion's centre against the body's centre along the
  patient's left-right axis (``midline`` when at least a quarter of the lesion lies on each side);
  zone from the third of the organ's cranio-caudal extent holding the centre (in chest CT the
  slices with aerated lung, -950 to -400 HU; elsewhere the slices of the body); organ from the
  domain (``lung``, ``brain``, ``breast``) or the ``organ`` argument.
* Other 2-D images: brain and abdomen slices (axial, radiological display) get a side from the
  image's vertical midline and the domain's organ; breast ultrasound, endoscopy and plain images
  get an image-relative region: the 3 x 3 cell of the image that holds the centre
  (``top_left`` ... ``bottom_right``, ``center``).

Zones list the third holding the lesion's centre and every third holding at least 30 % of its
pixels (voxels), with any third between them, in their usual order, so a large lesion can span
"upper and middle zones".
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from scipy import ndimage

from ..report.schema import ZONES, Location
from .chest import LungFields, lung_of

PATIENT_SIDE = {("image_left", "radiological"): "right", ("image_right", "radiological"): "left",
                ("image_left", "neurological"): "left", ("image_right", "neurological"): "right"}
ZONE_SHARE = 0.3
REGIONS = {(0, 0): "top_left", (0, 1): "top", (0, 2): "top_right", (1, 0): "left",
           (1, 1): "center", (1, 2): "right", (2, 0): "bottom_left", (2, 1): "bottom",
           (2, 2): "bottom_right"}


def _zones(positions: np.ndarray, top: float, bottom: float, centre: float) -> List[str]:
    """Thirds of [top, bottom] (top = upper) holding the centre or >= 30 % of ``positions``."""
    fraction = (np.asarray(positions, float) - top) / max(bottom - top, 1e-9)
    index = np.clip((fraction * 3).astype(int), 0, 2)
    first = ZONES[int(np.clip(int((centre - top) / max(bottom - top, 1e-9) * 3), 0, 2))]
    shares = np.bincount(index, minlength=3) / max(len(index), 1)
    chosen = [k for k, z in enumerate(ZONES[:3]) if z == first or shares[k] >= ZONE_SHARE]
    return list(ZONES[min(chosen):max(chosen) + 1])  # contiguous: "upper to lower" holds middle


def chest_radiograph(component: np.ndarray, fields: LungFields, *,
                     orientation: str) -> Location:
    """Side and zones of a lesion on a frontal chest radiograph."""
    lung = lung_of(component, fields)
    rows = np.nonzero(component)[0]
    centre = float(ndimage.center_of_mass(component)[0])
    top, bottom = fields.extent[lung]
    return Location(side=PATIENT_SIDE[(lung, orientation)],
                    zones=_zones(rows, top, bottom, centre), organ="lung")


def image_region(component: np.ndarray) -> Location:
    """The 3 x 3 cell of the image holding the lesion's centre."""
    cy, cx = ndimage.center_of_mass(component)
    h, w = component.shape
    cell = (min(int(3 * cy / h), 2), min(int(3 * cx / w), 2))
    return Location(organ="image", image_region=REGIONS[cell])


def slice_side(component: np.ndarray, *, orientation: str, organ: Optional[str]) -> Location:
    """Side of a lesion on an axial slice in display orientation, from the image's midline."""
    columns = np.nonzero(component)[1]
    middle = component.shape[1] / 2.0
    left_share = float(np.mean(columns < middle))
    if min(left_share, 1 - left_share) >= 0.25:
        side = "midline"
    else:
        side = PATIENT_SIDE[("image_left" if left_share > 0.5 else "image_right", orientation)]
    return Location(side=side, organ=organ)


def world(points: np.ndarray, *, affine: Optional[np.ndarray],
          spacing: Sequence[float]) -> np.ndarray:
    """Voxel indices [N, 3] -> RAS millimetres (affine, or spacing along RAS+ voxel axes)."""
    if affine is not None:
        return points @ affine[:3, :3].T + affine[:3, 3]
    return points * np.asarray(spacing, float)


def organ_extent(grey: np.ndarray, *, domain: str, hounsfield: bool) -> np.ndarray:
    """Boolean mask of the voxels whose cranio-caudal extent gives the zones: aerated lung for
    chest CT, else the body (voxels above the Otsu threshold)."""
    from skimage.filters import threshold_otsu

    if domain == "chest" and hounsfield:
        lung = (grey > -950) & (grey < -400)
        body = ndimage.binary_fill_holes(grey > -400, structure=np.ones((3, 3, 1)))
        inside = lung & body
        if inside.sum() > 0.01 * grey.size:
            return inside
    return grey > threshold_otsu(grey)


def volume_location(component: np.ndarray, *, grey: np.ndarray, extent: np.ndarray,
                    affine: Optional[np.ndarray], spacing: Sequence[float],
                    organ: Optional[str]) -> Location:
    """Side (patient's, from world x) and zones (world z thirds of ``extent``) of a 3-D lesion."""
    voxels = np.argwhere(component).astype(float)
    points = world(voxels, affine=affine, spacing=spacing)
    body = np.argwhere(extent[::4, ::4, ::2]).astype(float) * [4, 4, 2]
    body_world = world(body, affine=affine, spacing=spacing) if len(body) else points
    middle_x = float(np.median(body_world[:, 0]))
    right_share = float(np.mean(points[:, 0] > middle_x))
    if min(right_share, 1 - right_share) >= 0.25:
        side = "midline"
    else:
        side = "right" if right_share > 0.5 else "left"
    top, bottom = float(body_world[:, 2].max()), float(body_world[:, 2].min())
    zones = _zones(-points[:, 2], -top, -bottom, -float(points[:, 2].mean()))
    return Location(side=side, zones=zones, organ=organ)
