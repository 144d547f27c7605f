"""Fused priors -> SAM mask-decoder prompts, with identity at initialisation.

* ``dense``: a prior map ``[B, E, h, w]`` added to the dense prompt embedding through a zero-initialised
  per-channel gate (an exact no-op until trained).
* ``token``: one sparse prompt token per positive finding. An extra attention token changes SAM's output
  even when it is zero, so its *effect* is gated: ``out = out_plain + g * (out_with_tokens - out_plain)``
  with scalar ``g`` initialised to zero (the decoder runs twice; it is small next to the encoder).
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn

from ..perception.common import pooled

DECODER_MODES = ("both", "dense", "token", "none")


class DecoderPriorPrompts(nn.Module):
    def __init__(self, *, prior_dim: int, embed_dim: int, mode: str = "both") -> None:
        super().__init__()
        if mode not in DECODER_MODES:
            raise ValueError(f"decoder_prior must be one of {DECODER_MODES}, got {mode!r}")
        self.mode = mode
        if self.uses_dense:
            self.dense_global = nn.Linear(prior_dim, embed_dim)
            self.dense_local = nn.Linear(prior_dim, embed_dim)
            self.dense_gate = nn.Parameter(torch.zeros(embed_dim))
        if self.uses_token:
            self.token = nn.Sequential(nn.Linear(prior_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))
            self.token_gate = nn.Parameter(torch.zeros(1))

    @property
    def uses_dense(self) -> bool:
        return self.mode in ("both", "dense")

    @property
    def uses_token(self) -> bool:
        return self.mode in ("both", "token")

    def dense(self, priors: Dict[str, torch.Tensor], location_map: torch.Tensor) -> torch.Tensor:
        """``[B, E, h, w]`` to add to the dense prompt; ``location_map`` ``[B, 1, h, w]``."""
        glob = self.dense_global(priors["global"])[:, :, None, None]
        local = self.dense_local(pooled(priors, "pos"))[:, :, None, None] * (2.0 * location_map - 1.0)
        return self.dense_gate[None, :, None, None] * (glob + local)

    def tokens(self, priors: Dict[str, torch.Tensor], index: int) -> torch.Tensor:
        """Sparse tokens ``[1, N, E]`` for image ``index``: one per positive finding (the report's global
        token when it has none)."""
        keep = priors["positive"][index]
        per_finding = priors["tokens"][index].mean(dim=1)  # [F, d]
        chosen = per_finding[keep] if bool(keep.any()) else priors["global"][index: index + 1]
        return self.token(chosen).unsqueeze(0)


class TextTokenPrompt(nn.Module):
    """The naive baseline (as MedSAM's text-prompt extension): the whole report as one sentence embedding,
    projected to one extra sparse prompt token, ungated."""

    def __init__(self, *, text_encoder: nn.Module, embed_dim: int) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.proj = nn.Sequential(nn.Linear(text_encoder.dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, texts) -> torch.Tensor:
        return self.proj(self.text_encoder(list(texts))).unsqueeze(1)  # [B, 1, E]
