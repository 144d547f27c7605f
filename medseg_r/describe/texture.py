"""Texture words from the intensities inside a lesion and in a ring of tissue around it.

What can be said depends on the modality, chosen from the domain and the data
(:func:`modality_of`):

* ``radiograph`` (2-D chest): ``ground_glass`` / ``solid`` / ``part_solid`` / ``calcified`` /
  ``cavitary`` by linear discriminant analysis of ring-relative measures
  (:func:`radiograph_features`), fitted on phantom radiographs
  (``python -m medseg_r.describe.fit_radiograph``; parameters in :mod:`.fitted_radiograph`).
  It has only ever seen phantom radiographs: on real films treat it as a first guess.
* ``ct`` (volumes in Hounsfield units: values down to -500 or below, :func:`~medseg_r.io.images.is_hounsfield`): in the lung (domain ``chest``) by the attenuation ranges
  of the Fleischner Society glossary: a share of voxels above 200 HU of at least 10 % is
  ``calcified``; otherwise the share above -300 HU (soft tissue) gives ``solid`` (>= 80 %),
  ``part_solid`` (20-80 %) or ``ground_glass`` (< 20 %); air (< -900 HU) filling at least 5 % of
  the lesion's filled outline inside its solid wall adds ``cavitary``. Elsewhere ``hypodense`` /
  ``isodense`` / ``hyperdense`` against the ring.
* ``mr``, ``ultrasound``, ``image``: ``hypo-/iso-/hyper-intense`` (MR and plain images) or
  ``-echoic`` (ultrasound; ``anechoic`` when the lesion is homogeneous and its mean lies in the
  darkest tenth of the range from black, 0, to the image's maximum), against the ring.
* ``endoscopy``: nothing (colour, not density, describes a polyp); nor when the mask leaves no
  tissue to compare with.

Ring comparisons use the standardised difference ``d = (lesion mean - ring mean) / pooled SD``:
``iso`` when ``|d| < 0.5`` (a medium effect size, Cohen 1988), and ``heterogeneous`` is added when
the lesion's SD exceeds 1.5 times the ring's. These two cut-offs are conventions, not fitted: no
labelled data for them ships offline.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from ..io.images import is_hounsfield
from .ordinal import logistic_classes

RADIOGRAPH_FEATURES = ("contrast", "peak", "core_rim", "spread", "flatness", "halo", "log_size",
                       "background", "contrast_size", "maximum", "cnr")
RELATIVE_WORDS = {"ct": ("hypodense", "isodense", "hyperdense"),
                  "mr": ("hypointense", "isointense", "hyperintense"),
                  "image": ("hypointense", "isointense", "hyperintense"),
                  "ultrasound": ("hypoechoic", "isoechoic", "hyperechoic")}
ISO_EFFECT = 0.5
ANECHOIC_LEVEL = 0.1  # of the range from black (0, or the minimum if negative) to the maximum
HETEROGENEOUS_RATIO = 1.5


def modality_of(domain: str, image: np.ndarray, *, volume: bool) -> str:
    """``radiograph``, ``ct``, ``mr``, ``ultrasound``, ``endoscopy`` or ``image``."""
    if domain == "colonoscopy":
        return "endoscopy"
    if volume and is_hounsfield(image):
        return "ct"
    if domain == "chest":
        return "mr" if volume else "radiograph"
    if domain == "breast" and not volume:
        return "ultrasound"
    if domain in ("brain", "abdomen", "breast"):
        return "mr"
    return "image"


def ring_around(component: np.ndarray, *, others: np.ndarray, near: Sequence[int],
                far: Sequence[int]) -> np.ndarray:
    """Pixels between ``near`` and ``far`` pixels (per axis, elliptic) outside ``component``, not
    in ``others`` (the other lesions). Works on the component's bounding box plus ``far``."""
    where = np.argwhere(component)
    lo = np.maximum(where.min(0) - np.asarray(far) - 1, 0)
    hi = np.minimum(where.max(0) + np.asarray(far) + 2, component.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    crop = component[box]

    def grow(steps: Sequence[int]) -> np.ndarray:
        shape = tuple(2 * s + 1 for s in steps)
        grid = np.indices(shape).astype(float)
        radius = np.sqrt(sum(((g - s) / max(s, 1e-9)) ** 2 for g, s in zip(grid, steps)))
        return ndimage.binary_dilation(crop, structure=radius <= 1.0)

    ring = np.zeros_like(component)
    ring[box] = grow(far) & ~grow(near) & ~others[box]
    return ring


def _pooled_effect(inside: np.ndarray, ring: np.ndarray) -> float:
    pooled = np.sqrt(0.5 * (inside.var() + ring.var()))
    return float((inside.mean() - ring.mean()) / max(pooled, 1e-9))


def relative_words(inside: np.ndarray, ring: np.ndarray, *, modality: str,
                   dark_level: float) -> List[str]:
    """Ring-relative texture words (see the module docstring)."""
    hypo, iso, hyper = RELATIVE_WORDS[modality]
    effect = _pooled_effect(inside, ring)
    heterogeneous = inside.std() > HETEROGENEOUS_RATIO * max(ring.std(), 1e-9)
    if modality == "ultrasound" and inside.mean() <= dark_level and not heterogeneous:
        return ["anechoic"]
    words = [hypo if effect <= -ISO_EFFECT else hyper if effect >= ISO_EFFECT else iso]
    return words + (["heterogeneous"] if heterogeneous else [])


def lung_ct_words(hounsfield: np.ndarray, component: np.ndarray) -> List[str]:
    """Lung-window texture of a CT lesion from its voxels in HU (see the module docstring)."""
    values = hounsfield[component]
    if np.mean(values > 200) >= 0.10:
        return ["calcified"]
    soft = float(np.mean(values > -300))
    words = ["solid" if soft >= 0.8 else "part_solid" if soft >= 0.2 else "ground_glass"]
    filled = ndimage.binary_fill_holes(component) if component.ndim == 2 else np.stack(
        [ndimage.binary_fill_holes(component[..., z]) for z in range(component.shape[-1])], -1)
    inner = ndimage.binary_erosion(filled, iterations=1)
    air = inner & (hounsfield < -900)
    if air.sum() >= 0.05 * filled.sum() and soft >= 0.2:
        words.append("cavitary")
    return words


def radiograph_levels(unit: np.ndarray, lungs: Optional[np.ndarray], spine: float,
                      lesions: np.ndarray) -> Tuple[float, float]:
    """(lung level, soft-tissue level) of a radiograph scaled to [0, 1]: the median of the lung
    fields without lesions (else the 25th percentile of the image), and the median of a band
    of 7 pixels (per 256) around the spine column over the middle 40 % of rows. Their difference
    scales every contrast, so the window, gamma and exposure of the film matter less."""
    if lungs is not None and (lungs & ~lesions).any():
        lung_level = float(np.median(unit[lungs & ~lesions]))
    else:
        lung_level = float(np.percentile(unit, 25))
    rows, cols = unit.shape
    half = max(1, int(round(3 * cols / 256)))
    column = int(round(spine))
    band = unit[int(0.3 * rows):int(0.7 * rows), max(0, column - half):column + half + 1]
    return lung_level, float(np.median(band))


def radiograph_features(unit: np.ndarray, component: np.ndarray, ring: np.ndarray, *,
                        levels: Tuple[float, float]) -> Dict[str, float]:
    """Measures of one lesion on a radiograph scaled to [0, 1], contrasts over ``levels``'
    difference (soft tissue minus lung, at least 0.05): ``contrast`` (mean minus ring mean),
    ``peak`` (90th percentile minus ring mean), ``core_rim`` (inner half of the depth minus the
    outer half), ``spread`` (SD inside), ``flatness`` (median over 90th percentile, above the ring),
    ``halo`` (the one-pixel band just outside over the contrast: haze spreads out),
    ``log_size`` (log of the longest extent in pixels), ``background`` (ring over the lung level:
    over ribs, heart or clear lung), ``contrast_size`` (contrast times log size), ``maximum``
    (brightest pixel minus ring mean) and ``cnr`` (contrast over the ring's SD)."""
    lung_level, tissue_level = levels
    span = max(tissue_level - lung_level, 0.05)
    values = unit[component]
    around = unit[ring] if ring.any() else unit[~component]
    base = float(around.mean())
    contrast = float(values.mean()) - base
    depth = ndimage.distance_transform_edt(np.pad(component, 1))[1:-1, 1:-1]
    core = component & (depth >= 0.5 * depth.max())
    rim = component & ~core
    core_rim = float(unit[core].mean() - unit[rim].mean()) if rim.any() and core.any() else 0.0
    band = ndimage.binary_dilation(component) & ~component
    p50, p90, top = np.percentile(values, [50, 90, 100])
    ys, xs = np.nonzero(component)
    log_size = float(np.log(max(np.ptp(ys), np.ptp(xs)) + 1))
    return {"contrast": contrast / span, "peak": float(p90 - base) / span,
            "core_rim": core_rim / span, "spread": float(values.std()) / span,
            "flatness": float((p50 - base) / max(p90 - base, 1e-3)),
            "halo": float(unit[band].mean() - base) / max(abs(contrast), 0.02),
            "log_size": log_size, "background": (base - lung_level) / span,
            "contrast_size": contrast / span * log_size, "maximum": float(top - base) / span,
            "cnr": contrast / max(float(around.std()), 1e-3)}


def radiograph_words(features: Dict[str, float]) -> List[str]:
    """The fitted radiograph texture class of one lesion."""
    from .fitted_radiograph import PARAMETERS

    row = np.array([[features[name] for name in RADIOGRAPH_FEATURES]])
    return [logistic_classes(PARAMETERS["texture"], row)[0]]


def to_unit(image: np.ndarray) -> np.ndarray:
    """A grey image or volume scaled to its 1st-99th percentiles and clipped to [0, 1]."""
    img = np.asarray(image, float)
    lo, hi = np.percentile(img, [1, 99])
    return np.clip((img - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def lesion_ring(component: np.ndarray, *, others: np.ndarray,
                spacing: Optional[Sequence[float]]) -> np.ndarray:
    """The ring of tissue a lesion is compared with: 1.5-5 mm around volumes with spacing, else
    2-6 pixels per 256 pixels of image side (as the phantom measures its contrast)."""
    if component.ndim == 3 and spacing is not None:
        near = [max(1, int(round(1.5 / s))) for s in spacing]
        far = [max(n + 2, int(round(5.0 / s))) for n, s in zip(near, spacing)]
    else:
        unit = max(component.shape[:2]) / 256.0
        near = [max(1, int(round(2 * unit)))] * component.ndim
        far = [max(n + 2, int(round(6 * unit))) for n in near]
    return ring_around(component, others=others, near=near, far=far)


def describe_texture(image: np.ndarray, component: np.ndarray, *, others: np.ndarray,
                     modality: str, domain: str, spacing: Optional[Sequence[float]],
                     levels: Optional[Tuple[float, float]] = None) -> Dict[str, object]:
    """``{"texture": [codes], "measures": {...}}`` of one lesion ``component`` (bool, the grid of
    the grey ``image``); ``others`` masks the other lesions out of its ring; ``levels``: the
    radiograph's (lung, soft tissue) levels of :func:`radiograph_levels` (radiographs only)."""
    if modality == "endoscopy":
        return {"texture": [], "measures": {}}
    ring = lesion_ring(component, others=others, spacing=spacing)
    if not ring.any():  # the lesion fills its surroundings: compare with the rest of the image
        ring = ~component & ~others
    if not ring.any():  # nothing to compare with (the mask covers the image)
        return {"texture": [], "measures": {}}
    if modality == "ct":
        hounsfield = np.asarray(image, float)
        if domain == "chest":
            return {"texture": lung_ct_words(hounsfield, component),
                    "measures": {"mean_hu": round(float(hounsfield[component].mean()), 1)}}
        inside, around = hounsfield[component], hounsfield[ring]
        words = relative_words(inside, around, modality="ct", dark_level=-np.inf)
        return {"texture": words, "measures": {"mean_hu": round(float(inside.mean()), 1),
                                               "ring_hu": round(float(around.mean()), 1)}}
    if modality == "radiograph":
        unit = to_unit(image)
        if levels is None:
            levels = radiograph_levels(unit, None, unit.shape[1] / 2.0, component | others)
        features = radiograph_features(unit, component, ring, levels=levels)
        return {"texture": radiograph_words(features),
                "measures": {k: round(v, 4) for k, v in features.items()}}
    raw = np.asarray(image, float)
    black = min(0.0, float(raw.min()))
    dark = black + ANECHOIC_LEVEL * (float(raw.max()) - black)
    inside, around = raw[component], raw[ring]
    words = relative_words(inside, around, modality=modality, dark_level=dark)
    return {"texture": words, "measures": {"effect": round(_pooled_effect(inside, around), 3)}}
