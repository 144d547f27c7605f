"""Texture priors -> dynamic convolution: per-sample depthwise kernels mixed from a learned bank."""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import pooled


class DynamicConv(nn.Module):
    """Kernel ``W_b = sum_k softmax(g(t_b))_k W_k`` over a bank of ``K`` depthwise kernels, ``t_b``
    the pooled texture token; output ``gelu(W_b * z) * (1 + s(t_b))`` (channel FiLM from the same
    token).

    Args:
        dim: channels ``r``. prior_dim: token width ``d``. num_kernels: bank size ``K``.
        kernel_size: odd spatial size of the kernels.

    Shapes: ``z`` ``[B, r, H, W]`` -> ``[B, r, H, W]``.
    """

    def __init__(
        self, *, dim: int, prior_dim: int, num_kernels: int = 4, kernel_size: int = 3
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0 or num_kernels < 1:
            raise ValueError("kernel_size must be odd and num_kernels >= 1")
        self.dim, self.kernel_size = dim, kernel_size
        self.bank = nn.Parameter(torch.empty(num_kernels, dim, 1, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(
            self.bank.view(num_kernels * dim, 1, kernel_size, kernel_size), a=5**0.5
        )
        self.mix = nn.Linear(prior_dim, num_kernels)
        self.film = nn.Linear(prior_dim, dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def kernels(self, priors: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Each sample's depthwise kernels ``[B, r, 1, k, k]``, mixed from the bank by its texture
        token."""
        mix = torch.softmax(self.mix(pooled(priors, "tex")), dim=-1)  # [B, K]
        return torch.einsum("bk,kcxyz->bcxyz", mix, self.bank.to(mix.dtype))

    def forward(self, z: torch.Tensor, priors: Dict[str, torch.Tensor]) -> torch.Tensor:
        B, C, H, W = z.shape
        texture = pooled(priors, "tex")
        kernels = self.kernels(priors).reshape(B * C, 1, self.kernel_size, self.kernel_size)
        out = F.conv2d(
            z.reshape(1, B * C, H, W), kernels, padding=self.kernel_size // 2, groups=B * C
        )
        out = F.gelu(out.view(B, C, H, W))
        return out * (1.0 + self.film(texture))[:, :, None, None]
