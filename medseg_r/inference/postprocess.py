"""Optional clean-up of predicted masks (scipy.ndimage): keep the largest components, fill holes."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def keep_largest(mask: np.ndarray, n: int = 1) -> np.ndarray:
    """Keep the ``n`` largest connected components (face connectivity, 2-D or 3-D)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    labels, count = ndimage.label(mask)
    if count <= n:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.argsort(sizes)[::-1][:n] + 1
    return np.isin(labels, keep)


def fill_holes(mask: np.ndarray, *, slice_axis: int = 0) -> np.ndarray:
    """Fill enclosed holes; a volume is filled slice by slice along ``slice_axis`` (0: the
    predictor's ``[Z, H, W]`` stacks of axial slices)."""
    mask = mask.astype(bool)
    if mask.ndim == 2:
        return ndimage.binary_fill_holes(mask)
    slices = np.moveaxis(mask, slice_axis, 0)
    filled = np.stack([ndimage.binary_fill_holes(s) for s in slices])
    return np.moveaxis(filled, 0, slice_axis)
