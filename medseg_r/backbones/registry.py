"""A registry of SAM-family backbone builders, in the style of ``segment_anything.build_sam``."""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch.nn as nn


@dataclass
class Backbone:
    """A built SAM-family model plus what MedSeg-R must know to drive it.

    Attributes:
        sam: module with ``image_encoder``, ``prompt_encoder`` and ``mask_decoder``.
        name: registry name (``sam_vit_b`` ...), or ``"custom"`` for a user-built model.
        img_size: square input side the encoder expects (images are resized/padded to it).
        family: encoder family, ``"vit"`` (SAM's ImageEncoderViT) or ``"tinyvit"`` (LiteMedSAM).
        normalize: ``"sam"`` (0..255 pixels, SAM's mean/std) or ``"unit"`` ([0, 1] intensities as
            MedSAM and LiteMedSAM were trained).
    """

    sam: nn.Module
    name: str
    img_size: int
    family: str
    normalize: str


BackboneBuilder = Callable[..., Backbone]
_REGISTRY: Dict[str, BackboneBuilder] = {}
_DESCRIPTIONS: Dict[str, str] = {}


def register_backbone(name: str, description: str = "") -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator: register ``builder(*, img_size=None, checkpoint=None, pretrained=True) -> Backbone``."""

    def wrap(builder: BackboneBuilder) -> BackboneBuilder:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = builder
        _DESCRIPTIONS[name] = description
        return builder

    return wrap


def list_backbones() -> List[str]:
    """Names accepted by :func:`build_backbone` and :func:`medseg_r.build_model`."""
    return sorted(_REGISTRY)


def describe_backbones() -> Dict[str, str]:
    """``{name: one-line description}`` of every registered backbone (``medseg-r backbones``)."""
    return {name: _DESCRIPTIONS[name] for name in list_backbones()}


def build_backbone(name: str, *, img_size: Optional[int] = None, checkpoint: Optional[str] = None,
                   pretrained: bool = True) -> Backbone:
    """Build a registered backbone.

    Args:
        name: one of :func:`list_backbones`.
        img_size: input side in pixels (default: the backbone's native size). SAM ViTs accept any
            multiple of 16 (positional embeddings are resized when a checkpoint is loaded).
        checkpoint: path to the backbone's own weights (SAM / MedSAM / LiteMedSAM layout).
        pretrained: for backbones that ship weights (``litemedsam``), load them when no checkpoint is given.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(list_backbones())}")
    if img_size is not None and (not isinstance(img_size, numbers.Integral)
                                 or isinstance(img_size, (bool, np.bool_)) or img_size < 32):
        raise ValueError(f"img_size must be a whole number of pixels >= 32, got {img_size!r}")
    if img_size is not None:
        img_size = int(img_size)  # numpy's integers too
    return _REGISTRY[name](img_size=img_size, checkpoint=checkpoint, pretrained=pretrained)
