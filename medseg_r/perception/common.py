"""Helpers shared by the perception modules: pooled prior tokens per group."""

from __future__ import annotations

from typing import Dict

import torch

GROUP_INDEX = {"pos": 0, "tex": 1, "shape": 2, "meta": 3}


def pooled(priors: Dict[str, torch.Tensor], group: str) -> torch.Tensor:
    """Mean of ``group``'s fused tokens over positive findings ``[B, d]``; the report's global token
    when a report has no positive finding (negative or empty reports)."""
    tokens = priors["tokens"][:, :, GROUP_INDEX[group]]  # [B, F, d]
    keep = priors["positive"].unsqueeze(-1).to(tokens.dtype)
    count = keep.sum(1)
    mean = (tokens * keep).sum(1) / count.clamp(min=1.0)
    return torch.where(count > 0, mean, priors["global"])
