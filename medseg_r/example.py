"""A generated example case (no data ships or downloads): a phantom chest radiograph with one 2 cm
round solid nodule in the patient's right upper zone, and the report that describes it.

The picture is drawn by the phantom generator (:mod:`medseg_r.data.phantom`) from lung masks and a
nodule outline of its *test* pools, so no image the shipped weights were trained on is shown. The
report calls the nodule dense, so the first draw in which it stands out from what lies around it
(contrast-to-noise ratio of at least 1.5 against the ring around it, as the phantom measures it)
is kept: a faint nodule hidden behind the hilum would not match its own report."""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np

EXAMPLE_REPORT = "A 2 cm round dense nodule in the right upper lobe. No pleural effusion."
MIN_CNR = 1.5


@lru_cache(maxsize=4)
def _example(size: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    from .data.phantom.anatomy import draw_anatomy
    from .data.phantom.generate import CHEST_WIDTH_MM
    from .data.phantom.layout import Layout, make_pools
    from .data.phantom.render import finish, lesion_density, measure_contrast, paint_lesion
    from .data.phantom.sources import load_lung_mask

    pool = make_pools()["test"]
    nodules = pool.by_texture_shape[("solid", "round")] or pool.by_texture["solid"]
    mm_per_px = CHEST_WIDTH_MM / size
    for attempt in range(50):
        rng = np.random.default_rng([seed, attempt])
        lungs = load_lung_mask(pool.lungs[int(rng.integers(len(pool.lungs)))], size)
        if lungs is None:
            continue
        layout = Layout(draw_anatomy(lungs, rng), rng)
        nodule = nodules[int(rng.integers(len(nodules)))]
        lesion = layout.add(nodule, 20.0 / mm_per_px, "right", "upper", role="target", strict=True)
        if lesion is None:
            continue
        density = layout.anatomy.density
        lesion.density *= lesion_density("solid", 20.0, rng)
        paint_lesion(density, lesion, rng)
        image = finish(density, rng)
        if measure_contrast(image, lesion.mask)[1] < MIN_CNR:
            continue
        return (np.clip(image, 0, 1) * 255).astype(np.uint8), lesion.mask
    raise RuntimeError("could not lay out the example case")


def chest_like_image(size: int = 256, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A uint8 ``[size, size]`` phantom chest radiograph with a 2 cm round solid nodule in the
    patient's right upper zone (image left, radiological convention), and the nodule's bool mask."""
    image, mask = _example(size, seed)
    return image.copy(), mask.copy()
