"""Overlay a predicted mask (and optionally the reference outline) on the input image."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..io.images import to_rgb8


def overlay(image: np.ndarray, mask: np.ndarray, *, truth: Optional[np.ndarray] = None,
            alpha: float = 0.45) -> np.ndarray:
    """``[H, W, 3]`` uint8: the image, the mask in red with an outline, the ground truth outline in green
    (if given). The location attention is drawn beside it by
    :func:`medseg_r.viz.report_figure.prediction_figure`."""
    from scipy import ndimage

    rgb = to_rgb8(image).astype(np.float32)
    mask = np.asarray(mask, dtype=bool)
    rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.array([255, 40, 40])
    edge = mask & ~ndimage.binary_erosion(mask)
    rgb[edge] = [255, 0, 0]
    if truth is not None:
        truth = np.asarray(truth, dtype=bool)
        rgb[truth & ~ndimage.binary_erosion(truth)] = [40, 255, 40]
    return np.clip(rgb, 0, 255).astype(np.uint8)
