"""Perceptual stage: prior-driven modules that modulate a SAM image encoder early."""

from .deformable_sampling import DeformableSampling
from .dynamic_conv import DynamicConv
from .injection import ADAPTERS, EncoderAdapter, TinyViTAdapter, ViTAdapter, adapter_for
from .modulator import MODULES, SiteModulator
from .spatial_attention import SpatialAttention

__all__ = [
    "ADAPTERS",
    "DeformableSampling",
    "DynamicConv",
    "EncoderAdapter",
    "MODULES",
    "SiteModulator",
    "SpatialAttention",
    "TinyViTAdapter",
    "ViTAdapter",
    "adapter_for",
]
