"""Report -> box prompts: what a user's box would give SAM's decoder, predicted from the report.

SAM-family decoders are trained with box prompts (pretrained LiteMedSAM segments a described phantom
lesion well given its true box, and nothing without one). :class:`BoxHead` reads the image embedding
*after* MedSeg-R's modules have modulated it, together with the spatial attention of the first
modulated site (how the location prior reaches it), and predicts a coarse map, at the embedding
grid, of where the described lesions are. Each connected region of that map above ``threshold``
becomes one box (its extent plus a margin); the decoder is prompted with each box and the masks are
joined. Dense supervision (every cell of the coarse map is a target) learns from a few hundred
images, where a centre-point detector did not.

At initialisation the map is a constant below any threshold (zero weights, bias at the prior ``p``),
so no box is predicted and the model's output is the plain decoder's: the identity-at-init
guarantee of the other prior paths holds here too.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BoxHead(nn.Module):
    """A coarse map of the described lesions from an image embedding, the location attention and the
    image itself (a small strided stem: SAM's embedding keeps little of a faint lesion of a few
    pixels, the image does).

    Args:
        channels: embedding channels ``E``. hidden: working width. stem: channels of the image stem
            (0: no stem).
        prior: initial probability of every cell.

    Shapes: ``embedding`` ``[B, E, h, w]``, ``attention`` ``[B, 1, h', w']`` (resized to ``h, w``;
    ``None``: a flat 0.5), ``canvas`` ``[B, 3, S, S]`` (the encoder's input) -> logits
    ``[B, 1, h, w]``.
    """

    def __init__(self, *, channels: int, hidden: int = 32, stem: int = 16,
                 prior: float = 0.01) -> None:
        super().__init__()
        self.stem = None if stem == 0 else nn.Sequential(
            nn.Conv2d(3, stem, kernel_size=3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(stem, stem, kernel_size=3, stride=2, padding=1), nn.GELU())
        self.body = nn.Sequential(
            nn.Conv2d(channels + 1 + stem, hidden, kernel_size=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=2, dilation=2), nn.GELU())
        self.out = nn.Conv2d(hidden, 1, kernel_size=3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, math.log(prior / (1 - prior)))

    def forward(self, embedding: torch.Tensor, attention: Optional[torch.Tensor],
                canvas: torch.Tensor) -> torch.Tensor:
        B, _, h, w = embedding.shape
        if attention is None:
            attention = embedding.new_full((B, 1, h, w), 0.5)
        elif attention.shape[-2:] != (h, w):
            attention = F.interpolate(attention, size=(h, w), mode="bilinear", align_corners=False)
        parts = [embedding, attention.to(embedding.dtype)]
        if self.stem is not None:
            image = self.stem(canvas.to(embedding.dtype))
            parts.append(image if image.shape[-2:] == (h, w)
                         else F.adaptive_avg_pool2d(image, (h, w)))
        features = torch.cat(parts, dim=1)
        return self.out(self.body(features))


def boxes_from_map(logits: torch.Tensor, *, canvas: int, threshold: float, max_boxes: int,
                   margin: float = 1.0, at_least: Optional[Sequence[int]] = None,
                   fallback: float = 0.0, where: Optional[torch.Tensor] = None
                   ) -> List[torch.Tensor]:
    """Connected regions of ``sigmoid(logits) > threshold`` -> per image ``[n, 4]`` boxes
    ``(x0, y0, x1, y1)`` in canvas pixels (region extent plus ``margin`` cells on each side), the
    regions with the largest summed probability first, at most ``max_boxes``.

    ``at_least`` (per image, e.g. the number of lesions the report names) with ``fallback > 0``: an
    image with fewer regions than that takes its strongest regions above ``fallback`` times its peak
    instead, so a lesion the report asserts is looked for where the head scores highest even when
    no cell passes ``threshold``; ``where`` ``[B, 1, h, w]`` (the report's location map at the
    map's grid) weighs those scores, so the search stays in the named zones. A flat map (the head at
    initialisation) never gives a box."""
    from scipy import ndimage

    prob = torch.sigmoid(logits.detach().float())[:, 0].cpu().numpy()
    weight = None if where is None else where.detach().float()[:, 0].cpu().numpy()
    cell = canvas / prob.shape[-1]
    out = []
    for i, p in enumerate(prob):
        wanted = 0 if at_least is None or fallback <= 0 else min(int(at_least[i]), max_boxes)
        labels, n = ndimage.label(p > threshold)
        if n < wanted and float(p.max() - p.min()) > 1e-6:
            score = p if weight is None else p * weight[i]
            labels, n = ndimage.label(score > fallback * float(score.max()))
            p, keep = score, wanted
        else:
            keep = max_boxes
        if n == 0:
            out.append(torch.zeros(0, 4, device=logits.device))
            continue
        mass = ndimage.sum(p, labels, range(1, n + 1))
        order = np.argsort(-np.asarray(mass))[:keep]
        slices = ndimage.find_objects(labels)
        boxes = [[(slices[k][1].start - margin) * cell, (slices[k][0].start - margin) * cell,
                  (slices[k][1].stop + margin) * cell, (slices[k][0].stop + margin) * cell]
                 for k in order]
        out.append(torch.tensor(boxes, dtype=torch.float32, device=logits.device).clamp(0, canvas))
    return out


def map_target(masks: torch.Tensor, grid: tuple) -> torch.Tensor:
    """The reference masks ``[B, 1, S, S]`` at the map's grid: a cell is positive when any pixel of
    it is (max pooling, so a lesion of a few pixels keeps its cell)."""
    return F.adaptive_max_pool2d((masks > 0.5).float(), grid)


def box_map_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice of the coarse map against the reference at its grid (Dice
    over the batch, so lesion-free images do not each reward an empty map)."""
    target = map_target(masks, tuple(logits.shape[-2:]))
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
    return bce + dice
