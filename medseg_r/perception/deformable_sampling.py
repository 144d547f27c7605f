"""Shape priors -> deformable sampling: offsets from features and the shape token (DCNv2)."""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn
from torchvision.ops import deform_conv2d

from .common import pooled


class DeformableSampling(nn.Module):
    """Modulated deformable convolution whose offsets and masks are predicted from ``z + c(t)``, ``t``
    the pooled shape token. Offsets start at zero (a regular grid), as in DCNv2.

    Args:
        dim: channels ``r``. prior_dim: token width ``d``. kernel_size: odd kernel size.

    Shapes: ``z`` ``[B, r, H, W]`` -> ``[B, r, H, W]``; ``last_offsets`` keeps ``[B, 2k^2, H, W]``.
    """

    def __init__(self, *, dim: int, prior_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        k2 = kernel_size * kernel_size
        self.kernel_size = kernel_size
        self.condition = nn.Linear(prior_dim, dim)
        self.offset = nn.Conv2d(dim, 3 * k2, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.weight = nn.Parameter(torch.empty(dim, dim, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.last_offsets: torch.Tensor | None = None

    def forward(self, z: torch.Tensor, priors: Dict[str, torch.Tensor]) -> torch.Tensor:
        k2 = self.kernel_size * self.kernel_size
        cond = z + self.condition(pooled(priors, "shape"))[:, :, None, None]
        pred = self.offset(cond)
        offsets, mask = pred[:, : 2 * k2], torch.sigmoid(pred[:, 2 * k2:])
        self.last_offsets = offsets.detach()
        return deform_conv2d(z, offsets, self.weight, padding=self.kernel_size // 2, mask=mask)
