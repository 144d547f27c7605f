"""A generated example case (no data ships or downloads): a chest-radiograph-like picture and its report."""
from __future__ import annotations

from typing import Tuple

import numpy as np

EXAMPLE_REPORT = "A 2 cm round dense nodule in the right upper lobe. No pleural effusion."


def chest_like_image(size: int = 256, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A uint8 ``[size, size]`` picture (two dark lung fields, mediastinum, ribs) with one bright round
    nodule in the patient's right upper lung (image left, radiological convention), and its bool mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.full((size, size), 0.75)
    for cx in (0.3, 0.7):
        lung = ((xx - cx) / 0.17) ** 2 + ((yy - 0.5) / 0.36) ** 2 < 1.0
        img[lung] = 0.28
    for k in range(7):  # ribs: faint bright arcs across both lungs
        ribs = np.abs(yy - (0.2 + 0.1 * k) - 0.06 * np.cos(6 * (xx - 0.5))) < 0.012
        img[ribs] += 0.12
    cy, cx, r = 0.3, 0.3, 0.045
    nodule = (xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2
    img[nodule] = 0.8
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), nodule
