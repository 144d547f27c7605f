"""Overlay a predicted mask (and optionally the reference outline) on the input image."""
from __future__ import annotations

from typing import Optional

import numpy as np


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image).astype(np.float32)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    arr = arr[..., :3]
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return (arr * 255).astype(np.uint8)


def overlay(image: np.ndarray, mask: np.ndarray, *, truth: Optional[np.ndarray] = None,
            alpha: float = 0.45) -> np.ndarray:
    """``[H, W, 3]`` uint8: the image, the mask in red with an outline, the ground truth outline in green
    (if given). The location attention is drawn beside it by
    :func:`medseg_r.viz.report_figure.prediction_figure`."""
    from scipy import ndimage

    rgb = _to_rgb8(image).astype(np.float32)
    mask = np.asarray(mask, dtype=bool)
    rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.array([255, 40, 40])
    edge = mask & ~ndimage.binary_erosion(mask)
    rgb[edge] = [255, 0, 0]
    if truth is not None:
        truth = np.asarray(truth, dtype=bool)
        rgb[truth & ~ndimage.binary_erosion(truth)] = [40, 255, 40]
    return np.clip(rgb, 0, 255).astype(np.uint8)
