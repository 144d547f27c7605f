"""One injection site: project encoder features to a bottleneck, run the enabled prior modules, and
add each one's result back through its own zero-initialised residual gate."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn

from .deformable_sampling import DeformableSampling
from .dynamic_conv import DynamicConv
from .spatial_attention import SpatialAttention

MODULES = ("spatial_attention", "dynamic_conv", "deformable")


class SiteModulator(nn.Module):
    """``x <- x + g_m * U_m(m(D(LN(x))))`` for each enabled module ``m``; every ``g_m`` starts at zero, so a
    wrapped pretrained encoder is unchanged until trained.

    Args:
        channels: encoder channels ``C`` at the site. prior_dim: token width ``d``.
        bottleneck: working width ``r``. modules: which of :data:`MODULES` run. use_map: spatial attention
        also reads the rasterised location map.

    Shapes: ``x`` channels-last ``[B, H, W, C]`` -> same; ``location_map`` ``[B, 1, H, W]``.
    """

    def __init__(self, *, channels: int, prior_dim: int, bottleneck: int = 64,
                 modules: tuple = MODULES, use_map: bool = True) -> None:
        super().__init__()
        unknown = set(modules) - set(MODULES)
        if unknown:
            raise ValueError(f"unknown perception modules {sorted(unknown)}; choose from {MODULES}")
        if not modules:
            raise ValueError("a SiteModulator needs at least one module")
        self.norm = nn.LayerNorm(channels)
        self.down = nn.Linear(channels, bottleneck)
        blocks: Dict[str, nn.Module] = {}
        if "spatial_attention" in modules:
            blocks["spatial_attention"] = SpatialAttention(dim=bottleneck, prior_dim=prior_dim, use_map=use_map)
        if "dynamic_conv" in modules:
            blocks["dynamic_conv"] = DynamicConv(dim=bottleneck, prior_dim=prior_dim)
        if "deformable" in modules:
            blocks["deformable"] = DeformableSampling(dim=bottleneck, prior_dim=prior_dim)
        self.blocks = nn.ModuleDict(blocks)
        self.up = nn.ModuleDict({name: nn.Linear(bottleneck, channels) for name in blocks})
        self.gate = nn.ParameterDict({name: nn.Parameter(torch.zeros(channels)) for name in blocks})
        self.last_attention: Optional[torch.Tensor] = None

    def forward(self, x: torch.Tensor, priors: Dict[str, torch.Tensor],
                location_map: Optional[torch.Tensor]) -> torch.Tensor:
        z = self.down(self.norm(x)).permute(0, 3, 1, 2)  # [B, r, H, W]
        out = x
        for name, block in self.blocks.items():
            if name == "spatial_attention":
                delta, self.last_attention = block(z, priors, location_map)
            else:
                delta = block(z, priors)
            out = out + self.gate[name] * self.up[name](delta.permute(0, 2, 3, 1))
        return out
