"""Lesions painted into the chest density map, and the radiograph's display and noise.

Lesions are real LIDC-IDRI outlines, rotated and scaled. Their look follows their texture:

* ``ground_glass``: faint (about half a solid nodule's peak density), hazy edges, mottled;
* ``solid``: a sphere-like density profile with fairly sharp edges (softer when the LIDC margin
  rating says ill-defined); small solid nodules are fainter, as a thin nodule absorbs less;
* ``part_solid``: a ground-glass halo around an off-centre solid core;
* ``calcified``: very bright, flat-topped and sharp, whatever its size;
* ``cavitary``: a bright wall around a darker air-filled centre.

:func:`finish` turns density into a displayed radiograph: detector blur, a film-like
characteristic curve (bright regions are compressed), unsharp-mask edge enhancement as radiograph
processing does, a random window and gamma, then quantum-like noise: spatially correlated (detector
blur) and stronger where the image is brighter (fewer photons reach the detector there).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from scipy import ndimage

from .sources import Nodule

# Below this size (at 256 px) an outline's shape is not told apart (by_shape's smallest lesions)
SHAPE_SHOWN_PX = 13.0
# Peak density range per texture before size scaling (lungs are about 0.1-0.3, mediastinum 0.7).
TEXTURE_DENSITY = {"ground_glass": (0.075, 0.11), "part_solid": (0.11, 0.18),
                   "solid": (0.11, 0.19), "calcified": (0.22, 0.32), "cavitary": (0.15, 0.22)}


@dataclass
class Lesion:
    """One lesion of a case: its mask, its attributes and its role in the report."""

    mask: np.ndarray  # bool [S, S]
    side: str  # patient side
    zone: str
    texture: str
    shape: str
    ill_defined: bool
    size_px: float  # largest dimension in pixels
    density: float  # peak density once painted (before: a factor on the texture's density)
    annotation_id: int
    role: str = "target"  # target | mentioned | omitted
    tags: List[str] = field(default_factory=list)
    contrast: float = 0.0  # on the final image: lesion mean minus the surrounding ring's mean
    cnr: float = 0.0  # contrast / standard deviation of the surrounding ring
    outline_shape: Optional[str] = None  # the shape its outline clearly shows (sources.shows_shape)

    @property
    def shape_shown(self) -> bool:
        """Whether the image shows the lesion's rated shape: its outline clearly has that shape
        (:func:`~medseg_r.data.phantom.sources.shows_shape`), it is drawn at least
        :data:`SHAPE_SHOWN_PX` across (at 256 px) and its edges are sharp (not ground-glass, not an
        ill-defined margin unless calcified). A rating the image does not show is label noise for
        a model that learns shapes from pixels (:func:`medseg_r.model.attributes.label_map`)."""
        sharp = self.texture == "calcified" or (self.texture != "ground_glass"
                                                 and not self.ill_defined)
        big = self.size_px >= SHAPE_SHOWN_PX * self.mask.shape[0] / 256.0
        return self.outline_shape == self.shape and big and sharp

    @property
    def bbox(self) -> List[int]:
        """[x0, y0, x1, y1] in pixels, inclusive (as the package's box prompts)."""
        ys, xs = np.nonzero(self.mask)
        return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


def zone_of(mask: np.ndarray, lung: np.ndarray) -> str:
    """Upper, middle or lower third of ``lung``'s height, by the centre of ``mask``."""
    ys = np.nonzero(lung)[0]
    top, bottom = ys.min(), ys.max()
    third = (ndimage.center_of_mass(mask)[0] - top) / max(bottom - top, 1)
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


def lesion_density(texture: str, size_mm: float, rng: np.random.Generator) -> float:
    """Peak density for a lesion of ``texture`` and size: small soft-tissue nodules are fainter."""
    lo, hi = TEXTURE_DENSITY[texture]
    if texture == "calcified":
        factor = float(np.clip((size_mm / 8.0) ** 0.3, 0.7, 1.1))
    elif texture == "ground_glass":
        factor = float(np.clip((size_mm / 15.0) ** 0.3, 0.7, 1.15))
    else:
        factor = float(np.clip((size_mm / 15.0) ** 0.5, 0.55, 1.25))
    return float(rng.uniform(lo, hi) * factor)


def _window(mask: np.ndarray, pad: int) -> Tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    S = mask.shape[0]
    return (slice(max(0, ys.min() - pad), min(S, ys.max() + pad + 1)),
            slice(max(0, xs.min() - pad), min(S, xs.max() + pad + 1)))


def paint_lesion(density: np.ndarray, lesion: Lesion, rng: np.random.Generator) -> None:
    """Add ``lesion`` to ``density`` in place, with the look of its texture."""
    u = density.shape[0] / 256.0
    hazy = lesion.texture == "ground_glass"
    if hazy:
        sigma = max(0.8 * u, lesion.size_px / 8.0)
    elif lesion.texture == "calcified":
        sigma = 0.35 * u
    else:
        sigma = max(0.5 * u, lesion.size_px / (10.0 if lesion.ill_defined else 24.0))
    win = _window(lesion.mask, int(3 * sigma) + 3)
    m = lesion.mask[win]
    depth = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    reach = max(depth.max(), 1.0)
    frac = depth / reach
    sphere = np.sqrt(np.clip(2 * frac - frac * frac, 0, 1))
    mottle = ndimage.gaussian_filter(rng.standard_normal(m.shape), 1.2 * u)
    mottle /= max(mottle.std(), 1e-6)
    a = lesion.density
    if hazy:
        value = a * (0.6 + 0.4 * sphere) * (1 + 0.25 * mottle) * m
    elif lesion.texture == "calcified":
        value = a * np.clip(3.0 * frac + 0.4, 0, 1) * (1 + 0.05 * mottle) * m
    elif lesion.texture == "part_solid":
        core = depth > reach * rng.uniform(0.35, 0.55)
        shift = rng.uniform(-0.15, 0.15, 2) * reach
        core = ndimage.shift(core.astype(float), shift, order=0) > 0.5
        halo = 0.35 * a * (0.7 + 0.3 * sphere) * (1 + 0.2 * mottle)
        value = (halo + a * core * (0.3 + 0.7 * sphere)) * m
    elif lesion.texture == "cavitary":
        wall = max(1.5 * u, 0.3 * reach)
        air = np.clip((depth - wall) / max(reach - wall, 1.0), 0, 1)
        value = a * (np.clip(1.6 * sphere, 0, 1) - 1.35 * np.sqrt(air)) * m
    else:
        value = a * (0.3 + 0.7 * sphere) * (1 + 0.08 * mottle) * m  # thin spicules still show
    density[win] += ndimage.gaussian_filter(value, sigma)


def finish(density: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Density map -> displayed radiograph in [0, 1] (see the module docstring)."""
    u = density.shape[0] / 256.0
    img = ndimage.gaussian_filter(density, rng.uniform(0.45, 0.75) * u)
    img = 1.0 - np.exp(-rng.uniform(1.4, 1.9) * img)
    img = img + rng.uniform(0.3, 0.7) * (img - ndimage.gaussian_filter(img, 6 * u))
    lo, hi = np.percentile(img, 1.0), np.percentile(img, 99.7)
    img = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1) ** rng.uniform(1.15, 1.5)
    img = img * rng.uniform(0.85, 1.0) + rng.uniform(0.0, 0.06)
    sigma = rng.uniform(0.008, 0.02) * (0.6 + 0.8 * img)
    smooth = ndimage.gaussian_filter(rng.standard_normal(img.shape), 0.8 * u)
    noise = 0.85 * smooth / max(smooth.std(), 1e-6) + 0.5 * rng.standard_normal(img.shape)
    return np.clip(img + sigma * noise, 0, 1)


def measure_contrast(image: np.ndarray, mask: np.ndarray,
                     others: Optional[np.ndarray] = None) -> Tuple[float, float]:
    """(contrast, contrast-to-noise ratio) of ``mask`` in ``image``.

    Contrast: the lesion's mean minus the mean of a ring 2-6 px (at 256 px) around it, ``others``
    excluded; CNR: that difference over the ring's standard deviation, which includes the anatomy
    around the lesion (ribs, vessels) as well as the noise."""
    u = image.shape[0] / 256.0
    win = _window(mask, int(8 * u) + 2)
    m = mask[win]
    near = ndimage.binary_dilation(m, iterations=max(1, int(round(2 * u))))
    far = ndimage.binary_dilation(m, iterations=max(2, int(round(6 * u))))
    ring = far & ~near
    if others is not None:
        ring &= ~others[win]
    if ring.sum() < 4 or not m.any():
        return 0.0, 0.0
    values = image[win]
    diff = float(values[m].mean() - values[ring].mean())
    return diff, diff / max(float(values[ring].std()), 1e-3)
