"""Shape priors -> deformable sampling: channel groups gather features at learned, prior-dependent
offsets (bilinear ``grid_sample``), modulated by a predicted mask (DCNv2-style modulation)."""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import pooled


class DeformableSampling(nn.Module):
    """Split ``z`` into ``G`` channel groups; group ``g`` at position ``p`` reads
    ``z_g(p + Δ_g(p))`` times a modulation ``m_g(p)``; a 1x1 convolution mixes the groups.

    The shape token ``t`` (shape codes, size class and size) steers the sampling in two ways:
    ``Δ, m`` are predicted from ``z * (1 + γ(t)) + β(t)`` (FiLM of the offset branch), and each
    group's ring of radius ``radius`` is scaled by ``exp(ρ_g(t))``, so the pattern can widen for a
    large or spiculated lesion and narrow for a small round one. ``γ`` and ``ρ`` start at zero and
    the offset predictor at zero: until trained, the sampling is a fixed dilated ring.

    Args:
        dim: channels ``r`` (divisible by ``groups``). prior_dim: token width ``d``.
        groups: ``G`` offset groups. radius: initial ring radius in feature pixels.

    Shapes: ``z`` ``[B, r, H, W]`` -> ``[B, r, H, W]``; :meth:`sampling` gives the offsets
    ``[B, G, 2, H, W]`` (pixels) and modulation ``[B, G, 1, H, W]``.
    """

    def __init__(self, *, dim: int, prior_dim: int, groups: int = 4, radius: float = 2.0) -> None:
        super().__init__()
        if groups < 1 or dim % groups or radius <= 0:
            raise ValueError("groups must divide dim and radius must be positive")
        self.groups = groups
        self.condition = nn.Linear(prior_dim, dim)  # β(t)
        self.film = nn.Linear(prior_dim, dim)  # γ(t)
        self.radius = nn.Linear(prior_dim, groups)  # ρ(t): log scale of each group's ring
        for layer in (self.film, self.radius):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.offset = nn.Conv2d(dim, 3 * groups, kernel_size=3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        angles = torch.arange(groups, dtype=torch.float32) * (2 * math.pi / groups)
        self.register_buffer(
            "ring", radius * torch.stack([angles.cos(), angles.sin()], dim=1), persistent=False
        )
        self.proj = nn.Conv2d(dim, dim, kernel_size=1)

    def sampling(
        self, z: torch.Tensor, priors: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Offsets ``[B, G, 2, H, W]`` as (dx, dy) in feature pixels (fp32), and modulation ``[B, G,
        1, H, W]``."""
        B, _, H, W = z.shape
        G = self.groups
        shape = pooled(priors, "shape")
        cond = (z * (1.0 + self.film(shape))[:, :, None, None]
                + self.condition(shape)[:, :, None, None])
        pred = self.offset(cond)
        ring = self.ring.view(1, G, 2, 1, 1) * self.radius(shape).float().exp().view(B, G, 1, 1, 1)
        offsets = pred[:, : 2 * G].float().view(B, G, 2, H, W) + ring
        return offsets, torch.sigmoid(pred[:, 2 * G :]).unsqueeze(2)

    def forward(self, z: torch.Tensor, priors: Dict[str, torch.Tensor]) -> torch.Tensor:
        B, C, H, W = z.shape
        G = self.groups
        offsets, modulation = self.sampling(z, priors)
        # The sampling grid is built in fp32 whatever the autocast dtype: bf16 cannot place 64
        # positions
        # in [-1, 1] to a fraction of a pixel.
        ys = (
            torch.linspace(-1.0, 1.0, H, device=z.device)
            if H > 1
            else z.new_zeros(1, dtype=torch.float32)
        )
        xs = (
            torch.linspace(-1.0, 1.0, W, device=z.device)
            if W > 1
            else z.new_zeros(1, dtype=torch.float32)
        )
        base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [H, W, 2] as (x, y)
        scale = base.new_tensor([2.0 / max(W - 1, 1), 2.0 / max(H - 1, 1)])
        grid = base + offsets.permute(0, 1, 3, 4, 2) * scale  # [B, G, H, W, 2]
        sampled = F.grid_sample(
            z.float().reshape(B * G, C // G, H, W),
            grid.reshape(B * G, H, W, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
        sampled = sampled.view(B, G, C // G, H, W) * modulation
        return self.proj(sampled.view(B, C, H, W))
