"""Cross-attribute fusion: a transformer over all prior tokens of a report (groups x findings)."""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn


class PriorFusion(nn.Module):
    """Pre-norm transformer encoder over the ``F x 4`` prior tokens, with padding masks.

    Args:
        dim: token width.
        depth: number of transformer layers.
        heads: attention heads.

    ``forward(priors)`` takes the output of :class:`~.prior_encoder.PriorEncoder` and returns it with
    ``tokens`` replaced by the fused tokens ``[B, F, 4, d]`` and ``global`` ``[B, d]`` (mean of the valid
    tokens) added.
    """

    def __init__(self, *, dim: int, depth: int = 2, heads: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        layer = nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=2 * dim, dropout=0.0,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, priors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        tokens, valid = priors["tokens"], priors["valid"]
        B, F, G, d = tokens.shape
        pad = ~valid.unsqueeze(-1).expand(B, F, G).reshape(B, F * G)
        fused = self.norm(self.encoder(tokens.reshape(B, F * G, d), src_key_padding_mask=pad))
        keep = (~pad).unsqueeze(-1).to(fused.dtype)
        out = dict(priors)
        out["tokens"] = fused.view(B, F, G, d)
        out["global"] = (fused * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return out
