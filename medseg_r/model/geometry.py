"""Input geometry as SAM does it: resize the longest side, pad bottom/right, normalise; and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Frame:
    """How an input of ``(height, width)`` sits on the encoder's ``size x size`` canvas."""

    height: int
    width: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.height, self.width)

    @property
    def resized(self) -> Tuple[int, int]:
        return max(1, int(self.height * self.scale + 0.5)), max(1, int(self.width * self.scale + 0.5))

    @property
    def content(self) -> Tuple[float, float]:
        h, w = self.resized
        return h / self.size, w / self.size


def to_canvas(
    images: torch.Tensor,
    frame: Frame,
    *,
    normalize: str,
    pixel_mean: Optional[torch.Tensor] = None,
    pixel_std: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``[B, 3, H, W]`` in ``[0, 1]`` -> normalised, resized, padded ``[B, 3, S, S]``."""
    h, w = frame.resized
    x = images
    if (h, w) != (frame.height, frame.width):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    if normalize == "sam":
        x = (x * 255.0 - pixel_mean) / pixel_std
    elif normalize != "unit":
        raise ValueError(f"unknown normalisation {normalize!r}")
    return F.pad(x, (0, frame.size - w, 0, frame.size - h))


def scale_boxes(boxes: torch.Tensor, frame: Frame) -> torch.Tensor:
    return boxes * frame.scale


def from_canvas(low_res: torch.Tensor, frame: Frame) -> torch.Tensor:
    """Decoder logits ``[B, C, h, w]`` -> ``[B, C, H, W]`` at input size (SAM's
    ``postprocess_masks``)."""
    masks = F.interpolate(
        low_res, size=(frame.size, frame.size), mode="bilinear", align_corners=False
    )
    h, w = frame.resized
    masks = masks[..., :h, :w]
    return F.interpolate(
        masks, size=(frame.height, frame.width), mode="bilinear", align_corners=False
    )
