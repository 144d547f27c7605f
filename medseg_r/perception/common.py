"""Helpers shared by the perception modules: pooled prior tokens per group, cell positions."""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn

GROUP_INDEX = {"pos": 0, "tex": 1, "shape": 2, "meta": 3}
POSITION_FREQUENCIES = (1, 2, 4)  # periods over the grid's side (a lung zone spans 1/3-1/2 of it)
POSITION_CHANNELS = 2 + 4 * len(POSITION_FREQUENCIES)


def pooled(priors: Dict[str, torch.Tensor], group: str) -> torch.Tensor:
    """Mean of ``group``'s fused tokens over positive findings ``[B, d]``; the report's global token
    when a report has no positive finding (negative or empty reports)."""
    tokens = priors["tokens"][:, :, GROUP_INDEX[group]]  # [B, F, d]
    keep = priors["positive"].unsqueeze(-1).to(tokens.dtype)
    count = keep.sum(1)
    mean = (tokens * keep).sum(1) / count.clamp(min=1.0)
    return torch.where(count > 0, mean, priors["global"])


def position_features(height: int, width: int, *, device=None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Where each cell of a ``height x width`` grid lies: its centre's coordinates ``(x, y)`` in
    ``[-1, 1]`` and their sines and cosines ``sin(pi f x)``, ``cos(pi f x)`` for each ``f`` of
    :data:`POSITION_FREQUENCIES` (``f`` periods over the side), so that a linear map of them can
    draw coarse regions such as a lung zone.

    Shape: ``[1, POSITION_CHANNELS, height, width]``.
    """
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * 2 - 1
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    channels = [x, y]
    for f in POSITION_FREQUENCIES:
        for c in (x, y):
            channels += [torch.sin(torch.pi * f * c), torch.cos(torch.pi * f * c)]
    return torch.stack(channels).unsqueeze(0).to(dtype)


class CellPosition(nn.Conv2d):
    """A linear map of :func:`position_features` to ``dim`` channels, added to attention keys so
    that a query can name a region of the image, not only a kind of feature (a 1x1 convolution
    without bias: its state is ``weight`` alone).

    Shapes: :meth:`add_to` ``keys`` ``[B, dim, H, W]`` -> the same, plus each cell's term.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(POSITION_CHANNELS, dim, kernel_size=1, bias=False)

    def add_to(self, keys: torch.Tensor) -> torch.Tensor:
        where = position_features(*keys.shape[-2:], device=keys.device, dtype=self.weight.dtype)
        return keys + self(where).to(keys.dtype)
