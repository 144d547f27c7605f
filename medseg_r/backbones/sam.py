"""SAM-family builders on ``segment_anything``'s own modules (constructed, never copied)."""
from __future__ import annotations

import warnings
from functools import partial
from typing import Optional, Sequence

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from .registry import Backbone, register_backbone
from .weights import adapt_state_dict, load_strict, patch_grid, read_state_dict


def build_sam_vit(*, img_size: int, patch_size: int = 16, embed_dim: int, depth: int, num_heads: int,
                  global_attn_indexes: Sequence[int], window_size: int = 14, prompt_dim: int = 256,
                  decoder_mlp_dim: int = 2048, decoder_heads: int = 8) -> Sam:
    """A SAM model of any size from ``segment_anything.modeling`` (random initialisation)."""
    grid = patch_grid(img_size, patch_size)
    encoder = ImageEncoderViT(
        img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
        mlp_ratio=4, out_chans=prompt_dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=True, global_attn_indexes=tuple(global_attn_indexes), window_size=window_size,
    )
    prompt_encoder = PromptEncoder(embed_dim=prompt_dim, image_embedding_size=(grid, grid),
                                   input_image_size=(img_size, img_size), mask_in_chans=16)
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=decoder_mlp_dim,
                                      num_heads=decoder_heads),
        transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=256,
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder,
               pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


def _load(sam: Sam, checkpoint: Optional[str], name: str) -> None:
    if checkpoint is not None:
        state = adapt_state_dict(read_state_dict(checkpoint), sam)
        load_strict(sam, state, source=f"{name} checkpoint {checkpoint}")


RANDOM_WEIGHTS_WARNING = "no checkpoint given, so its weights are random"
_WEIGHT_FILES = {"sam_vit_b": "sam_vit_b_01ec64.pth", "sam_vit_l": "sam_vit_l_0b3195.pth",
                 "sam_vit_h": "sam_vit_h_4b8939.pth", "medsam_vit_b": "medsam_vit_b.pth"}
_VIT_CONFIGS = {
    "sam_vit_b": dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "sam_vit_l": dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "sam_vit_h": dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}


def _vit_builder(name: str, config: dict, normalize: str, description: str):
    @register_backbone(name, description)
    def build(*, img_size: Optional[int] = None, checkpoint: Optional[str] = None, pretrained: bool = True) -> Backbone:
        size = img_size or 1024
        sam = build_sam_vit(img_size=size, **config)
        _load(sam, checkpoint, name)
        if checkpoint is None and pretrained:
            warnings.warn(f"{name}: {RANDOM_WEIGHTS_WARNING} (they do not ship with "
                          f"MedSeg-R: give checkpoint=PATH to {_WEIGHT_FILES[name]}, or pretrained=False "
                          f"to build a random one on purpose)", UserWarning, stacklevel=4)
        return Backbone(sam=sam, name=name, img_size=size, family="vit", normalize=normalize)

    build.__name__ = f"build_{name}"
    return build


build_sam_vit_b = _vit_builder("sam_vit_b", _VIT_CONFIGS["sam_vit_b"], "sam",
                               "SAM ViT-B (93.7 M); weights from a path you give (sam_vit_b_01ec64.pth)")
build_sam_vit_l = _vit_builder("sam_vit_l", _VIT_CONFIGS["sam_vit_l"], "sam",
                               "SAM ViT-L (312 M); weights from a path you give (sam_vit_l_0b3195.pth)")
build_sam_vit_h = _vit_builder("sam_vit_h", _VIT_CONFIGS["sam_vit_h"], "sam",
                               "SAM ViT-H (641 M); weights from a path you give (sam_vit_h_4b8939.pth)")
build_medsam_vit_b = _vit_builder("medsam_vit_b", _VIT_CONFIGS["sam_vit_b"], "unit",
                                  "MedSAM (SAM ViT-B architecture, [0,1] inputs); weights: medsam_vit_b.pth")


SAM_TINY = dict(patch_size=8, embed_dim=192, depth=4, num_heads=6, global_attn_indexes=(1, 3), window_size=8,
                prompt_dim=128, decoder_mlp_dim=512, decoder_heads=4)


@register_backbone("sam_tiny", "SAM's own classes at CPU scale: 256 px, patch 8, dim 192, depth 4 (random init)")
def build_sam_tiny(*, img_size: Optional[int] = None, checkpoint: Optional[str] = None,
                   pretrained: bool = True) -> Backbone:
    size = img_size or 256
    sam = build_sam_vit(img_size=size, **SAM_TINY)
    _load(sam, checkpoint, "sam_tiny")
    return Backbone(sam=sam, name="sam_tiny", img_size=size, family="vit", normalize="sam")
