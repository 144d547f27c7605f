"""Training-time augmentation: translation that works with cached encoder features, and warps and
re-toning for models that read the image alone.

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
import torch.nn.functional as F

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


def warp_and_tone(batch: dict, generator: torch.Generator, strength: float) -> dict:
    """``batch`` with each image zoomed, stretched and rotated a little about the canvas centre
    (its mask and attribute label maps alike) and its intensities re-toned (gamma, contrast,
    brightness, Gaussian noise), each draw scaled by ``strength`` (1: zoom within about 15 %,
    aspect within 6 %, rotation within 6 degrees, gamma within 0.78-1.28, contrast within 15 %,
    brightness within 0.05, noise up to 0.02 of the unit range).

    For a model whose training reads the image alone (an image localiser trained on its maps: it
    needs no encoder pass, so there is no cached feature for the change to miss). As with
    :func:`shift_batch`, the report and its location maps stay: the anatomy moves and reshapes
    under them a little, as lung fields differ between patients. Images are unit floats ``[B, C,
    H, W]``; masks ``[B, 1, H, W]`` in {0, 1}; attributes ``[B, 2, H, W]`` integer codes.
    """
    if strength <= 0:
        return batch
    image = batch["image"]
    n = image.shape[0]
    u = torch.rand(n, 8, generator=generator) * 2 - 1  # uniform in [-1, 1]
    zoom = torch.exp(0.15 * strength * u[:, 0])
    aspect = torch.exp(0.06 * strength * u[:, 1])
    angle = torch.deg2rad(6.0 * strength * u[:, 2])
    sx, sy = zoom * aspect, zoom / aspect
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output coordinates to input ones: the inverse of the zoom
    theta = torch.stack([torch.stack([cos / sx, -sin / sx, torch.zeros(n)], 1),
                         torch.stack([sin / sy, cos / sy, torch.zeros(n)], 1)], 1)
    theta = theta.to(image.device, image.dtype)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    out = dict(batch)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gamma = torch.exp(0.25 * strength * u[:, 3]).view(n, 1, 1, 1).to(image)
    contrast = torch.exp(0.15 * strength * u[:, 4]).view(n, 1, 1, 1).to(image)
    brightness = (0.05 * strength * u[:, 5]).view(n, 1, 1, 1).to(image)
    sigma = (0.01 * strength * (u[:, 6] + 1)).view(n, 1, 1, 1).to(image)
    toned = warped.clamp(0, 1) ** gamma
    mean = toned.mean(dim=(1, 2, 3), keepdim=True)
    # one noise field per image, the same on its channels (a grey radiograph's), drawn where the
    # image lies from a seed of the generator
    noisy = torch.Generator(device=image.device).manual_seed(
        int(torch.randint(2**62, (1,), generator=generator)))
    noise = torch.randn((n, 1, *image.shape[-2:]), generator=noisy, device=image.device,
                        dtype=image.dtype)
    out["image"] = ((toned - mean) * contrast + mean + brightness + sigma * noise).clamp(0, 1)
    if "mask" in batch:
        mask = batch["mask"].float()
        out["mask"] = (F.grid_sample(mask, grid.to(mask.dtype), mode="bilinear", padding_mode="zeros",
                                     align_corners=False) > 0.5).to(batch["mask"].dtype)
    if "attributes" in batch:
        labels = batch["attributes"]
        out["attributes"] = F.grid_sample(labels.float(), grid.float(), mode="nearest",
                                          padding_mode="zeros", align_corners=False).round().to(labels.dtype)
    return out
