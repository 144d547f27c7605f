"""The image encoder, modulated by the report's priors at the injection sites (one call, no state).

When the encoder is frozen and a :class:`~medseg_r.model.feature_cache.FeatureCache` is attached to
the model, what comes before the first injection site is read from the cache (computed once per
image) and the encoder resumes from there.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch

from ..perception.injection import site_key

Render = Callable[[Tuple[int, int]], torch.Tensor]


def first_site(model) -> str:
    """The earliest site the model modulates (``neck`` when none: the embedding itself)."""
    stages = model.adapter.stages(model.sam.image_encoder)
    for stage in stages:
        if site_key(stage.site) in model.perception:
            return stage.site
    return stages[-1].site


def encoder_is_frozen(model) -> bool:
    """Whether the encoder's output is a fixed function of the image (no gradient, eval mode)."""
    encoder = model.sam.image_encoder
    return not encoder.training and not any(p.requires_grad for p in encoder.parameters())


def encode(model, canvas: torch.Tensor, priors: Optional[Dict[str, torch.Tensor]],
           render: Optional[Render] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``canvas`` ``[B, 3, S, S]`` -> (embedding ``[B, E, s, s]``, spatial attention ``[B, 1, h, w]``
    of the first site that has one, or ``None``). ``render(size) -> [B, 1, h, w]`` gives location
    maps at a site's grid (or ``None``)."""
    modulating = priors is not None and len(model.perception) > 0
    cache = getattr(model, "feature_cache", None)
    resume = None
    if cache is not None and encoder_is_frozen(model):
        site = first_site(model)
        resume = (site, cache.features(model, canvas, site))
    elif not modulating:
        return model.sam.image_encoder(canvas), None
    maps: Dict[Tuple[int, int], Optional[torch.Tensor]] = {}
    attention: List[torch.Tensor] = []

    def modulate(site: str, x: torch.Tensor) -> torch.Tensor:
        key = site_key(site)
        if not modulating or key not in model.perception:
            return x
        size = (x.shape[1], x.shape[2])
        if size not in maps:
            maps[size] = render(size) if render is not None else None
        out, att = model.perception[key](x, priors, maps[size])
        if att is not None:
            attention.append(att)
        return out

    embeddings = model.adapter.run(model.sam.image_encoder, canvas, modulate, resume=resume,
                                   checkpointed=model.config.activation_checkpointing)
    return embeddings, (attention[0] if attention else None)
