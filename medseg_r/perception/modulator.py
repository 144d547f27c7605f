"""One injection site: project encoder features to a bottleneck, run the enabled prior modules, and
add their results back through zero-initialised per-module residual gates."""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .deformable_sampling import DeformableSampling
from .dynamic_conv import DynamicConv
from .spatial_attention import SpatialAttention

MODULES = ("spatial_attention", "dynamic_conv", "deformable")


class SiteModulator(nn.Module):
    """``x <- x + sum_m g_m * U_m(m(D(LN(x))))`` over the enabled modules ``m``. Every gate ``g_m``
    (one per channel) starts at zero, so a wrapped pretrained encoder is unchanged until trained.
    The gated up-projections are applied as one matrix product (``diag(g_m) U_m`` side by side).

    Mixed precision: under autocast the update may be computed in bf16/fp16, but it is added to the
    encoder's main path in the main path's own dtype, so a zero gate leaves ``x`` bit for bit
    unchanged (and an fp32 residual stream stays fp32).

    Args:
        channels: encoder channels ``C`` at the site. prior_dim: token width ``d``.
        bottleneck: working width ``r``. modules: which of :data:`MODULES` run. use_map: spatial
        attention also reads the rasterised location map. max_grid: modules work on at most
        ``max_grid`` positions per side (average-pooled, results upsampled), which bounds their cost
        at high-resolution sites. positional_keys: spatial attention's keys also carry each
        cell's position.

    Shapes: ``x`` channels-last ``[B, H, W, C]`` -> (same shape and dtype, spatial attention
    ``[B, 1, h, w]`` at the modules' grid or ``None`` without that module); ``location_map``
    ``[B, 1, H, W]``.
    """

    def __init__(
        self,
        *,
        channels: int,
        prior_dim: int,
        bottleneck: int = 64,
        modules: tuple = MODULES,
        use_map: bool = True,
        max_grid: int = 64,
        positional_keys: bool = False,
    ) -> None:
        super().__init__()
        unknown = set(modules) - set(MODULES)
        if unknown:
            raise ValueError(f"unknown perception modules {sorted(unknown)}; choose from {MODULES}")
        if not modules:
            raise ValueError("a SiteModulator needs at least one module")
        if max_grid < 1:
            raise ValueError("max_grid must be >= 1")
        self.bottleneck = bottleneck
        self.max_grid = max_grid
        self.norm = nn.LayerNorm(channels)
        self.down = nn.Linear(channels, bottleneck)
        blocks: Dict[str, nn.Module] = {}
        if "spatial_attention" in modules:
            blocks["spatial_attention"] = SpatialAttention(
                dim=bottleneck, prior_dim=prior_dim, use_map=use_map, positional=positional_keys
            )
        if "dynamic_conv" in modules:
            blocks["dynamic_conv"] = DynamicConv(dim=bottleneck, prior_dim=prior_dim)
        if "deformable" in modules:
            blocks["deformable"] = DeformableSampling(dim=bottleneck, prior_dim=prior_dim)
        self.blocks = nn.ModuleDict(blocks)
        self.up = nn.ParameterDict(
            {
                name: nn.Parameter(
                    torch.empty(channels, bottleneck).uniform_(
                        -1 / math.sqrt(bottleneck), 1 / math.sqrt(bottleneck)
                    )
                )
                for name in blocks
            }
        )
        self.gate = nn.ParameterDict({name: nn.Parameter(torch.zeros(channels)) for name in blocks})
        # the features reach the modules channels-last (a permuted view): channels-last weights
        # spare oneDNN a reordering at every call (the values and the state dict are unchanged)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.to(memory_format=torch.channels_last)

    def gate_parameters(self) -> Dict[str, nn.Parameter]:
        """The zero-initialised residual gates, by name relative to this module."""
        return {f"gate.{name}": gate for name, gate in self.gate.items()}

    def forward(
        self, x: torch.Tensor, priors: Dict[str, torch.Tensor], location_map: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        B, H, W, C = x.shape
        factor = max(1, math.ceil(max(H, W) / self.max_grid))
        pooled = x
        if factor > 1:  # pool first: the norm and the down-projection run at the modules' grid
            pooled = F.avg_pool2d(x.permute(0, 3, 1, 2), factor, ceil_mode=True).permute(0, 2, 3, 1)
        z = self.down(self.norm(pooled)).permute(0, 3, 1, 2)  # [B, r, h, w]
        if factor > 1 and location_map is not None:
            location_map = F.adaptive_avg_pool2d(location_map, z.shape[-2:])
        deltas, attention = [], None
        for name, block in self.blocks.items():
            if name == "spatial_attention":
                delta, attention = block(z, priors, location_map)
            else:
                delta = block(z, priors)
            deltas.append(delta)
        delta = torch.cat(deltas, dim=1)  # [B, M*r, h, w] at the modules' grid
        weight = torch.cat([self.gate[n].unsqueeze(1) * self.up[n] for n in self.blocks], dim=1)
        h, w = delta.shape[-2:]
        update = delta.permute(0, 2, 3, 1).reshape(-1, delta.shape[1]) @ weight.t()  # autocast: low
        update = update.view(B, h, w, C)
        if factor > 1:  # the up-projection is linear per position: project, then upsample (cheaper)
            update = F.interpolate(update.permute(0, 3, 1, 2), size=(H, W), mode="bilinear",
                                   align_corners=False).permute(0, 2, 3, 1)
        return x + update.to(x.dtype), attention
