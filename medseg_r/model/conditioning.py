"""What a model is conditioned on, by prior source: the fused prior tokens and the location maps.

* ``structured`` (MedSeg-R): the parsed report's codes and evidence words
  (:class:`~medseg_r.cognition.PriorEncoder`) and the rasterised location map;
* ``text_token`` with matched capacity: one embedding of the whole report text, through the same
  prior modules (no parser: no location map, a flat 0.5 map instead);
* ``none`` with matched capacity: the same modules fed the embedding of an empty text (a constant).

Every source ends in the same :class:`~medseg_r.cognition.PriorFusion`, so the three models of a
comparison have the same parameters and differ only in what they read.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from ..report import Report
from .geometry import Frame

Priors = Dict[str, torch.Tensor]
Render = Callable[[Tuple[int, int]], torch.Tensor]


def prior_tokens(model, reports: Sequence[Report]) -> Optional[Priors]:
    """Fused prior tokens ``{"tokens" [B, F, 4, d], "valid", "positive", "global" [B, d]}``."""
    if model.prior_encoder is None:
        return None
    source = model.config.priors
    if source == "structured":
        tokens = model.prior_encoder(reports)
    else:
        texts = [r.text for r in reports] if source == "text_token" else [""] * len(reports)
        tokens = model.prior_encoder.encode_text(texts)
    return model.fusion(tokens)


def location_render(model, reports: Sequence[Report], frame: Frame,
                    device: torch.device) -> Optional[Render]:
    """``render(size) -> [B, 1, h, w]``: the rasterised location prior (MedSeg-R), a flat 0.5 map
    (matched baselines: same modules, no location), or ``None`` (no map used)."""
    if not model.config.location_map or model.prior_encoder is None:
        return None
    content = [frame.content] * len(reports)
    if model.config.priors == "structured":
        def render(size):
            return model.rasteriser.render(reports, size=size, content=content, device=device)
    else:
        def render(size):
            return torch.full((len(reports), 1, *size), 0.5, device=device)
    return render
