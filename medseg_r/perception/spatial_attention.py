"""Location priors -> spatial attention: a gate over positions from prior-feature affinity +
location map."""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from .common import GROUP_INDEX, CellPosition


class SpatialAttention(nn.Module):
    """``A = sigmoid(logsumexp_f <q_f, k(z)> / sqrt(r) + w * (2 M - 1))`` and output ``z * A``.

    ``q_f`` are the fused location tokens of the positive findings plus the report's global token,
    ``k`` a 1x1 projection of the features (plus, with ``positional``, a linear map of each cell's
    position, :func:`~medseg_r.perception.common.position_features`, so that a query can name a
    region of the image and not only a kind of feature), ``M`` the rasterised location map
    (optional, weight ``w`` learned).

    Args:
        dim: feature channels ``r`` of ``z``.
        prior_dim: prior token width ``d``.
        use_map: add the rasterised location map to the logits.
        positional: the keys also carry each cell's position.

    Shapes: ``z`` ``[B, r, H, W]``, map ``[B, 1, H, W]`` -> (``[B, r, H, W]``, attention ``[B, 1, H,
    W]``).
    """

    def __init__(self, *, dim: int, prior_dim: int, use_map: bool = True,
                 positional: bool = False) -> None:
        super().__init__()
        self.query = nn.Linear(prior_dim, dim)
        self.key = nn.Conv2d(dim, dim, kernel_size=1)
        self.position = CellPosition(dim) if positional else None
        self.use_map = use_map
        self.map_weight = nn.Parameter(torch.tensor(2.0)) if use_map else None
        self.scale = 1.0 / math.sqrt(dim)

    def forward(
        self,
        z: torch.Tensor,
        priors: Dict[str, torch.Tensor],
        location_map: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        tokens = priors["tokens"][:, :, GROUP_INDEX["pos"]]  # [B, F, d]
        queries = torch.cat([tokens, priors["global"].unsqueeze(1)], dim=1)  # [B, F+1, d]
        keep = torch.cat([priors["positive"], torch.ones_like(priors["positive"][:, :1])], dim=1)
        q = self.query(queries)  # [B, F+1, r]
        k = self.key(z)  # [B, r, H, W]
        if self.position is not None:
            k = self.position.add_to(k)
        logits = torch.einsum("bfr,brhw->bfhw", q, k) * self.scale
        logits = logits.masked_fill(~keep[:, :, None, None], float("-inf")).logsumexp(
            dim=1, keepdim=True
        )
        if self.use_map:
            if location_map is None:
                raise ValueError("SpatialAttention(use_map=True) needs a location map")
            logits = logits + self.map_weight * (2.0 * location_map - 1.0)
        attention = torch.sigmoid(logits)
        return z * attention, attention
