"""``build_model``: MedSeg-R on a registered backbone, or from a checkpoint."""

from __future__ import annotations

import os
from typing import Any, Optional

from ..backbones import build_backbone
from .checkpoint import is_medseg_checkpoint, load_model
from .medseg_r import MedSegR


def build_model(
    backbone: Optional[str] = None,
    checkpoint: Optional[str] = None,
    *,
    img_size: Optional[int] = None,
    pretrained: bool = True,
    **options: Any,
) -> MedSegR:
    """Build MedSeg-R on a registered backbone (in eval mode).

    Args:
        backbone: a name from :func:`medseg_r.list_backbones` (default ``litemedsam``, the
            pretrained one; with a MedSeg-R checkpoint, the one it was trained on, and a name given
            must be that one).
        checkpoint: either a MedSeg-R checkpoint (saved by :func:`medseg_r.checkpoint.save_model`)
            or the backbone's own weights (SAM / MedSAM / LiteMedSAM layout). Mismatched keys raise
            a clear error.
        img_size: encoder input size (SAM ViTs: any multiple of 16).
        pretrained: load weights that ship with the backbone (``litemedsam``) when no checkpoint is
        given (a MedSeg-R checkpoint holds every weight: ``pretrained`` does not apply to it).
        **options: see :class:`MedSegR`.
    """
    if isinstance(pretrained, str) or pretrained not in (True, False):  # "no" is truthy: loaded
        raise TypeError(f"pretrained must be True or False, got {pretrained!r}")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path, got {type(checkpoint).__name__}")
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
    if checkpoint is not None and is_medseg_checkpoint(checkpoint):
        model = load_model(checkpoint, expect_backbone=backbone, **options)
        if img_size is not None and img_size != model.img_size:
            raise ValueError(f"{checkpoint} is a MedSeg-R checkpoint trained at img_size "
                             f"{model.img_size}: leave img_size out (got {img_size})")
        return model
    bb = build_backbone(backbone or "litemedsam", img_size=img_size, checkpoint=checkpoint,
                        pretrained=pretrained)
    return MedSegR(bb, **options)
