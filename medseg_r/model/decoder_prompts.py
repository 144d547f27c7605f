"""Fused priors -> SAM mask-decoder prompts, each path an exact no-op at initialisation.

Modes (``decoder_prior``):

* ``dense``: a prior map ``[B, E, h, w]`` added to the dense prompt embedding through a
  zero-initialised per-channel gate.
* ``token``: the prior enters the decoder's token stream: ``g * P(prior)`` is added to every query
  token (SAM's output tokens and any box/point prompt tokens), ``g`` per channel and zero at start.
  One decoder pass; SAM's own ``MaskDecoder`` code runs on a per-call view of the decoder whose
  output-token embeddings carry the shift (:class:`medseg_r.model.decoding.DecoderCallView`), so
  nothing is hooked or mutated.
* ``extra_token``: one *extra* sparse prompt token per positive finding. An extra attention token
  changes SAM's output even when it is zero, so its *effect* is gated: ``out = out_plain + g *
  (out_tokens - out_plain)``, ``g`` a zero-initialised scalar. Costs a second decoder pass
  (about +8 % on LiteMedSAM).
* ``both`` (default): ``dense`` + ``token``. ``none``: the decoder sees no prior.
"""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn

from ..perception.common import pooled
from .options import DECODER_MODES


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
            self.token = nn.Sequential(
                nn.Linear(prior_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
            )
            self.token_gate = nn.Parameter(torch.zeros(embed_dim))
        if self.uses_extra_token:
            self.extra_token = nn.Sequential(
                nn.Linear(prior_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
            )
            self.extra_token_gate = nn.Parameter(torch.zeros(1))

    @property
    def uses_dense(self) -> bool:
        return self.mode in ("both", "dense")

    @property
    def uses_token(self) -> bool:
        return self.mode in ("both", "token")

    @property
    def uses_extra_token(self) -> bool:
        return self.mode == "extra_token"

    def gate_parameters(self) -> Dict[str, nn.Parameter]:
        """The zero-initialised gates of the enabled paths, by attribute name."""
        names = ("dense_gate", "token_gate", "extra_token_gate")
        return {n: getattr(self, n) for n in names if hasattr(self, n)}

    def dense(self, priors: Dict[str, torch.Tensor], location_map: torch.Tensor) -> torch.Tensor:
        """``[B, E, h, w]`` to add to the dense prompt; ``location_map`` ``[B, 1, h, w]``."""
        glob = self.dense_global(priors["global"])[:, :, None, None]
        local = self.dense_local(pooled(priors, "pos"))[:, :, None, None] * (
            2.0 * location_map - 1.0
        )
        return self.dense_gate[None, :, None, None] * (glob + local)

    def token_shift(self, priors: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, E]``: what is added to every decoder query token of each image."""
        return self.token_gate * self.token(priors["global"])

    def extra_tokens(self, priors: Dict[str, torch.Tensor], index: int) -> torch.Tensor:
        """Extra sparse tokens ``[1, N, E]`` for image ``index``: one per positive finding (the
        report's global token when it has none)."""
        keep = priors["positive"][index]
        per_finding = priors["tokens"][index].mean(dim=1)  # [F, d]
        chosen = per_finding[keep] if bool(keep.any()) else priors["global"][index : index + 1]
        return self.extra_token(chosen).unsqueeze(0)


class TextTokenPrompt(nn.Module):
    """The naive baseline (as MedSAM's text-prompt extension): the whole report as one sentence
    embedding, projected to one extra sparse prompt token, ungated."""

    def __init__(self, *, text_encoder: nn.Module, embed_dim: int) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.proj = nn.Sequential(
            nn.Linear(text_encoder.dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
        )

    def forward(self, texts) -> torch.Tensor:
        return self.proj(self.text_encoder(list(texts))).unsqueeze(1)  # [B, 1, E]
