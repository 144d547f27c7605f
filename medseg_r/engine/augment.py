"""Training-time translation that works with cached encoder features.

A frozen encoder's features are cached per image (:mod:`medseg_r.model.feature_cache`), so an
augmentation that changes the image would miss the cache and re-run the encoder at every step.
A translation by whole cells of the cached site commutes (up to the encoder's border effects) with
the encoder: :class:`ShiftedFeatures` reads the entry of the unshifted image and shifts the
features by the same cells, so a shifted batch costs no encoder pass. The images and masks are
shifted circularly by the same pixels (:func:`shift_batch`); the report and its location maps are
not, so the model sees the anatomy at other places relative to the location prior, as real
patients are positioned differently.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

Shift = Tuple[int, int]  # (rows, columns) in cells of the cached site


class ShiftedFeatures:
    """A view of a feature cache for canvases shifted by ``pixels`` ``(dy, dx)``: looks up the
    unshifted canvas and shifts its features by the same amount in cells (the pixels must be whole
    cells of the site)."""

    def __init__(self, cache, pixels: Shift) -> None:
        self.cache, self.pixels = cache, pixels

    def features(self, model, canvas: torch.Tensor, site: str) -> torch.Tensor:
        dy, dx = self.pixels
        original = canvas.roll((-dy, -dx), dims=(-2, -1))
        found = self.cache.features(model, original, site)  # [B, H, W, C]
        cell_y, cell_x = canvas.shape[-2] // found.shape[1], canvas.shape[-1] // found.shape[2]
        if dy % cell_y or dx % cell_x:
            raise ValueError(f"a shift of {self.pixels} px is not whole cells of {site!r}")
        return found.roll((dy // cell_y, dx // cell_x), dims=(1, 2))


def draw_shift(generator: torch.Generator, max_cells: int, cell: int) -> Shift:
    """A random ``(dy, dx)`` in pixels, each a whole number of ``cell``-pixel cells in
    ``[-max_cells, max_cells]``."""
    cells = torch.randint(-max_cells, max_cells + 1, (2,), generator=generator)
    return int(cells[0]) * cell, int(cells[1]) * cell


def shift_batch(batch: dict, pixels: Shift) -> dict:
    """``batch`` with its images, masks (and attribute label maps) shifted circularly by ``pixels``."""
    dy, dx = pixels
    out = dict(batch)
    for key in ("image", "mask", "attributes"):
        if key in batch:
            out[key] = batch[key].roll((dy, dx), dims=(-2, -1))
    return out


def cell_pixels(model) -> Optional[int]:
    """Pixels per cell of the cached site of ``model`` (the first modulated site's grid on the
    input canvas), or ``None`` when the model has no feature cache."""
    from ..model.encoding import first_site

    if getattr(model, "feature_cache", None) is None:
        return None
    site = first_site(model)
    with torch.no_grad():
        probe = torch.zeros(1, 3, model.img_size, model.img_size)
        grid = model.adapter.features_at(model.sam.image_encoder, probe, site).shape[1]
    return model.img_size // grid
