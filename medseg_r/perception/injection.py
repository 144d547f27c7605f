"""How prior modulators enter an image encoder: one small adapter per encoder family.

The interface, in full:

* an adapter lists the encoder's steps (:meth:`EncoderAdapter.stages`), each ending at a named
  **site** (``patch_embed``, ``blocks.0`` ... or ``layers.0`` ..., and ``neck``, the image embedding
  itself) with its channel count (:meth:`EncoderAdapter.sites`);
* :meth:`EncoderAdapter.run` runs the encoder's own submodules in the order its ``forward`` does
  and, after each site, calls ``modulate(site, features)``. A site **receives** its output as
  channels-last ``[B, H, W, C]`` in the main path's dtype and **returns** a tensor of the same shape
  and dtype (the features, changed or not). Whatever the modulation needs (priors, location maps)
  travels in the ``modulate`` closure of that one call: no hooks, no module or global state, so
  several threads, ``nn.DataParallel`` replicas and activation checkpointing all see their own
  priors, and the wrapped SAM keeps its code, its state-dict keys and its behaviour when used on its
  own.

With ``modulate`` returning its input unchanged, :meth:`EncoderAdapter.run` gives exactly what the
encoder's own ``forward`` gives (tested for every registered backbone). For a frozen encoder, what
comes before the first injection site does not depend on the report:
:meth:`EncoderAdapter.features_at` computes it once per image, and
``run(..., resume=(site, features))`` continues from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint as _checkpoint

Modulate = Callable[[str, torch.Tensor], torch.Tensor]


def _tokens_to_grid(x: torch.Tensor) -> torch.Tensor:
    B, L, C = x.shape
    side = math.isqrt(L)
    if side * side != L:
        raise ValueError(f"cannot view {L} tokens as a square grid")
    return x.view(B, side, side, C)


@dataclass(frozen=True)
class Stage:
    """One step of an encoder: ``run(x) -> y``, its site name, and how its output looks as a site
    (``to_site(y) -> [B, H, W, C]`` and ``from_site(z, like=y) -> y``-shaped)."""

    site: str
    channels: int
    run: Callable[[torch.Tensor], torch.Tensor]
    to_site: Callable[[torch.Tensor], torch.Tensor] = lambda y: y
    from_site: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = lambda z, like: z
    checkpointable: bool = False


def _nchw_to_site(y):
    return y.permute(0, 2, 3, 1)


def _site_to_nchw(z, like):
    return z.permute(0, 3, 1, 2)


def _tokens_to_site(y):
    return _tokens_to_grid(y) if y.ndim == 3 else y


def _site_to_tokens(z, like):
    return z.reshape(like.shape)


class EncoderAdapter:
    """Base adapter: ``stages(encoder)`` lists the encoder's steps in the order its ``forward`` runs
    them, each ending at a named site; :meth:`run` drives them. The last site, ``neck``, is the
    image embedding itself (late injection; everything before it can be cached for a frozen
    encoder)."""

    family = ""
    default_sites: Sequence[str] = ()

    def matches(self, encoder: nn.Module) -> bool:
        """Whether this adapter can drive ``encoder`` (checked by structure, not by class name)."""
        raise NotImplementedError

    def stages(self, encoder: nn.Module) -> List[Stage]:
        raise NotImplementedError

    def sites(self, encoder: nn.Module) -> Dict[str, int]:
        """Site name -> channels ``C`` of its output, in the order the encoder runs them."""
        return {stage.site: stage.channels for stage in self.stages(encoder)}

    def run(self, encoder: nn.Module, x: torch.Tensor, modulate: Modulate, *,
            checkpointed: bool = False, resume: Optional[Tuple[str, torch.Tensor]] = None,
            stop_at: Optional[str] = None) -> torch.Tensor:
        """``x`` ``[B, 3, S, S]`` canvas -> image embedding ``[B, E, s, s]``, calling ``modulate``
        at every site.

        Args:
            checkpointed: recompute each block's activations in the backward pass.
            resume: ``(site, features)``: start from the *unmodulated* output of that site's stage
                (as :meth:`features_at` returns it, channels-last), skipping every earlier stage.
            stop_at: return the unmodulated output of this site's stage (channels-last) instead.
        """
        started = resume is None
        for stage in self.stages(encoder):
            if started:
                y = _checkpointed(stage.run, x) if checkpointed and stage.checkpointable else (
                    stage.run(x))
                site = stage.to_site(y)
            elif stage.site == resume[0]:
                started, site = True, resume[1]
                y = _native_like(stage, site)
            else:
                continue
            if stop_at == stage.site:
                return site
            x = stage.from_site(modulate(stage.site, site), y)
        if not started:
            raise ValueError(f"no site {resume[0]!r} in a {self.family} encoder")
        if stop_at is not None:
            raise ValueError(f"no site {stop_at!r} in a {self.family} encoder")
        return x

    def features_at(self, encoder: nn.Module, x: torch.Tensor, site: str) -> torch.Tensor:
        """The unmodulated output of ``site``'s stage, channels-last ``[B, H, W, C]``: what a frozen
        encoder computes before the first injection site, cacheable per image."""
        return self.run(encoder, x, lambda _, f: f, stop_at=site)


def _native_like(stage: Stage, features: torch.Tensor) -> torch.Tensor:
    """A tensor with the stage's own output layout, for turning site features back (tokens)."""
    if stage.from_site is _site_to_tokens:
        B, H, W, C = features.shape
        return features.reshape(B, H * W, C)
    return features


def _checkpointed(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled():
        return _checkpoint(fn, x, use_reentrant=False)
    return fn(x)


class ViTAdapter(EncoderAdapter):
    """segment_anything's ``ImageEncoderViT`` (SAM, MedSAM): channels-last after patch embedding and
    after every block; ``neck`` is the embedding. The patch-embedding site is modulated before the
    positional embedding is added."""

    family = "vit"
    default_sites = ("patch_embed", "blocks.0", "blocks.1")

    def matches(self, encoder):
        return all(hasattr(encoder, a)
                   for a in ("patch_embed", "blocks", "neck", "pos_embed")) and (
            hasattr(encoder.patch_embed, "proj"))

    def stages(self, encoder):
        channels = encoder.patch_embed.proj.out_channels
        out = [Stage("patch_embed", channels, encoder.patch_embed)]
        for i, block in enumerate(encoder.blocks):
            if i == 0 and encoder.pos_embed is not None:
                def run(x, block=block):
                    return block(x + encoder.pos_embed)
            else:
                run = block
            out.append(Stage(f"blocks.{i}", channels, run, checkpointable=True))
        neck = encoder.neck
        out.append(Stage("neck", _neck_channels(neck), lambda x: neck(x.permute(0, 3, 1, 2)),
                         _nchw_to_site, _site_to_nchw))
        return out


class TinyViTAdapter(EncoderAdapter):
    """LiteMedSAM's hierarchical ``TinyViT``: NCHW after patch embedding, tokens ``[B, L, C]`` after
    each stage (viewed as a square grid for the site); ``neck`` is the embedding."""

    family = "tinyvit"
    # patch_embed runs at the full input resolution with few channels; the first stage outputs are
    # the early sites.
    default_sites = ("layers.0", "layers.1")

    def matches(self, encoder):
        return all(hasattr(encoder, a) for a in ("patch_embed", "layers", "neck")) and not hasattr(
            encoder, "blocks")

    def stages(self, encoder):
        pe = encoder.patch_embed
        out = [Stage("patch_embed", getattr(pe, "embed_dim", encoder.layers[0].dim), pe,
                     _nchw_to_site, _site_to_nchw)]
        for i, layer in enumerate(encoder.layers):
            channels = layer.downsample.out_dim if layer.downsample is not None else layer.dim
            out.append(Stage(f"layers.{i}", channels, layer, _tokens_to_site, _site_to_tokens,
                             checkpointable=True))
        neck = encoder.neck
        out.append(Stage("neck", _neck_channels(neck),
                         lambda x: neck(_tokens_to_grid(x).permute(0, 3, 1, 2)),
                         _nchw_to_site, _site_to_nchw))
        return out


def _neck_channels(neck: nn.Module) -> int:
    """Output channels of SAM's neck (conv, norm, conv, norm)."""
    convs = [m for m in neck.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


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
