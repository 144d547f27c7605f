"""How prior modulators enter an image encoder: one small adapter per encoder family.

The interface, in full:

* an adapter names the encoder's **sites** (``patch_embed``, ``blocks.0`` ... or ``layers.0`` ...)
  and the channel count at each (:meth:`EncoderAdapter.sites`);
* :meth:`EncoderAdapter.run` runs the encoder's own submodules in the order its ``forward`` does
  and, after each site, calls ``modulate(site, features)``. A site **receives** its output as
  channels-last ``[B, H, W, C]`` in the main path's dtype and **returns** a tensor of the same shape
  and dtype (the features, changed or not). Whatever the modulation needs (priors, location maps)
  travels in the ``modulate`` closure of that one call: no hooks, no module or global state, so
  several threads, ``nn.DataParallel`` replicas and activation checkpointing all see their own
  priors, and the wrapped SAM keeps its code, its state-dict keys and its behaviour when used on its
  own.

With ``modulate`` returning its input unchanged, :meth:`EncoderAdapter.run` gives exactly what the
encoder's own ``forward`` gives (tested for every registered backbone).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint as _checkpoint

Modulate = Callable[[str, torch.Tensor], torch.Tensor]


def _stage(module: nn.Module, x: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    """Run one encoder stage, recomputing its activations in the backward pass when asked."""
    if checkpointed and torch.is_grad_enabled() and x.requires_grad:
        return _checkpoint(module, x, use_reentrant=False)
    return module(x)


def _tokens_to_grid(x: torch.Tensor) -> torch.Tensor:
    B, L, C = x.shape
    side = math.isqrt(L)
    if side * side != L:
        raise ValueError(f"cannot view {L} tokens as a square grid")
    return x.view(B, side, side, C)


class EncoderAdapter:
    """Base adapter. Subclasses set ``family`` and ``default_sites`` and implement the three
    methods."""

    family = ""
    default_sites: Sequence[str] = ()

    def matches(self, encoder: nn.Module) -> bool:
        """Whether this adapter can drive ``encoder`` (checked by structure, not by class name)."""
        raise NotImplementedError

    def sites(self, encoder: nn.Module) -> Dict[str, int]:
        """Site name -> channels ``C`` of its output, in the order the encoder runs them."""
        raise NotImplementedError

    def run(
        self, encoder: nn.Module, x: torch.Tensor, modulate: Modulate, *, checkpointed: bool = False
    ) -> torch.Tensor:
        """``x`` ``[B, 3, S, S]`` canvas -> image embedding ``[B, E, s, s]``, calling ``modulate``
        at every site; ``checkpointed`` recomputes each stage's activations in the backward pass."""
        raise NotImplementedError


class ViTAdapter(EncoderAdapter):
    """segment_anything's ``ImageEncoderViT`` (SAM, MedSAM): channels-last after patch embedding and
    after every block. The patch-embedding site is modulated before the positional embedding is
    added.
    """

    family = "vit"
    default_sites = ("patch_embed", "blocks.0", "blocks.1")

    def matches(self, encoder):
        return all(
            hasattr(encoder, a) for a in ("patch_embed", "blocks", "neck", "pos_embed")
        ) and hasattr(getattr(encoder, "patch_embed"), "proj")

    def sites(self, encoder):
        channels = encoder.patch_embed.proj.out_channels
        return {
            "patch_embed": channels,
            **{f"blocks.{i}": channels for i in range(len(encoder.blocks))},
        }

    def run(self, encoder, x, modulate, *, checkpointed=False):
        x = modulate("patch_embed", encoder.patch_embed(x))
        if encoder.pos_embed is not None:
            x = x + encoder.pos_embed
        for i, block in enumerate(encoder.blocks):
            x = modulate(f"blocks.{i}", _stage(block, x, checkpointed))
        return encoder.neck(x.permute(0, 3, 1, 2))


class TinyViTAdapter(EncoderAdapter):
    """LiteMedSAM's hierarchical ``TinyViT``: NCHW after patch embedding, tokens ``[B, L, C]`` after
    each stage (viewed as a square grid for the site)."""

    family = "tinyvit"
    # patch_embed runs at a quarter of the input resolution with few channels; the stage outputs are
    # the early, cheap sites.
    default_sites = ("layers.0", "layers.1")

    def matches(self, encoder):
        return all(hasattr(encoder, a) for a in ("patch_embed", "layers", "neck")) and not hasattr(
            encoder, "blocks"
        )

    def sites(self, encoder):
        out = {
            "patch_embed": (
                encoder.patch_embed.embed_dim
                if hasattr(encoder.patch_embed, "embed_dim")
                else encoder.layers[0].dim
            )
        }
        for i, layer in enumerate(encoder.layers):
            out[f"layers.{i}"] = (
                layer.downsample.out_dim if layer.downsample is not None else layer.dim
            )
        return out

    def run(self, encoder, x, modulate, *, checkpointed=False):
        x = encoder.patch_embed(x)
        x = modulate("patch_embed", x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for i, layer in enumerate(encoder.layers):
            x = _stage(layer, x, checkpointed)
            shape = x.shape
            x = modulate(f"layers.{i}", _tokens_to_grid(x) if x.ndim == 3 else x).reshape(shape)
        return encoder.neck(_tokens_to_grid(x).permute(0, 3, 1, 2))


ADAPTERS: Dict[str, EncoderAdapter] = {a.family: a for a in (ViTAdapter(), TinyViTAdapter())}


def adapter_for(family: str) -> EncoderAdapter:
    """The adapter registered for an encoder ``family`` (``"vit"`` or ``"tinyvit"``)."""
    if family not in ADAPTERS:
        raise ValueError(
            f"no perception adapter for encoder family {family!r}; known: {sorted(ADAPTERS)}"
        )
    return ADAPTERS[family]


def detect_family(encoder: nn.Module) -> str:
    """The family whose adapter can drive ``encoder``; a clear error for an encoder none can."""
    for family, adapter in ADAPTERS.items():
        if adapter.matches(encoder):
            return family
    raise ValueError(
        f"no perception adapter can drive a {type(encoder).__name__} encoder: expected SAM's "
        "ImageEncoderViT (patch_embed, blocks, neck) or TinyViT (patch_embed, layers, neck)"
    )


def resolve_sites(
    adapter: EncoderAdapter, encoder: nn.Module, requested: Optional[Sequence[str]]
) -> List[str]:
    """The requested injection sites (default: the adapter's), checked against the encoder's."""
    available = adapter.sites(encoder)
    names = list(adapter.default_sites if requested is None else requested)
    bad = [n for n in names if n not in available]
    if bad:
        raise ValueError(
            f"unknown injection site(s) {bad} for a {adapter.family} encoder; "
            f"available: {', '.join(available)}"
        )
    return names


def site_key(site: str) -> str:
    """The ``nn.ModuleDict`` key of a site's modulator (``blocks.0`` -> ``blocks_0``)."""
    return site.replace(".", "_")
