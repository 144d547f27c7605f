"""Where and how modulators enter an image encoder: one small adapter per encoder family.

Modulators are attached with forward hooks on the encoder's own submodules, so the backbone's code
and state-dict keys stay untouched. Each adapter names the sites (``patch_embed``, ``blocks.0`` ...),
their channel count, and how to view a site's output as channels-last ``[B, H, W, C]`` and back.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn

ToChannelsLast = Callable[[torch.Tensor], Tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]]


def _identity(x: torch.Tensor):
    return x, lambda y: y


def _nchw(x: torch.Tensor):
    return x.permute(0, 2, 3, 1), lambda y: y.permute(0, 3, 1, 2).contiguous()


def _tokens(x: torch.Tensor):
    B, L, C = x.shape
    side = math.isqrt(L)
    if side * side != L:
        raise ValueError(f"cannot view {L} tokens as a square grid")
    return x.view(B, side, side, C), lambda y: y.reshape(B, L, C)


class EncoderAdapter:
    """Base adapter: ``sites(encoder)`` -> {name: (module, channels, to_channels_last)}."""

    family = ""
    default_sites: Tuple[str, ...] = ()

    def sites(self, encoder: nn.Module) -> Dict[str, Tuple[nn.Module, int, ToChannelsLast]]:
        raise NotImplementedError


class ViTAdapter(EncoderAdapter):
    """segment_anything ``ImageEncoderViT``: channels-last ``[B, H, W, C]`` after patch embedding and blocks."""

    family = "vit"
    default_sites = ("patch_embed", "blocks.0", "blocks.1")

    def sites(self, encoder):
        channels = encoder.patch_embed.proj.out_channels
        out = {"patch_embed": (encoder.patch_embed, channels, _identity)}
        for i, block in enumerate(encoder.blocks):
            out[f"blocks.{i}"] = (block, channels, _identity)
        return out


class TinyViTAdapter(EncoderAdapter):
    """LiteMedSAM's hierarchical ``TinyViT``: NCHW after patch embedding, tokens ``[B, L, C]`` after layers."""

    family = "tinyvit"
    # patch_embed runs at full input resolution (256 x 256): the stage outputs are the early, cheap sites.
    default_sites = ("layers.0", "layers.1")

    def sites(self, encoder):
        out = {"patch_embed": (encoder.patch_embed, encoder.patch_embed.embed_dim, _nchw)}
        for i, layer in enumerate(encoder.layers):
            channels = layer.downsample.out_dim if layer.downsample is not None else layer.dim
            out[f"layers.{i}"] = (layer, channels, _tokens)
        return out


ADAPTERS: Dict[str, EncoderAdapter] = {a.family: a for a in (ViTAdapter(), TinyViTAdapter())}


def adapter_for(family: str) -> EncoderAdapter:
    if family not in ADAPTERS:
        raise ValueError(f"no perception adapter for encoder family {family!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[family]


def resolve_sites(adapter: EncoderAdapter, encoder: nn.Module, requested) -> List[str]:
    available = adapter.sites(encoder)
    names = list(adapter.default_sites if requested is None else requested)
    bad = [n for n in names if n not in available]
    if bad:
        raise ValueError(f"unknown injection site(s) {bad} for a {adapter.family} encoder; "
                         f"available: {', '.join(available)}")
    return names
