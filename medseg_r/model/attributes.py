"""Texture and shape of the lesion at each cell: which candidate a finding's codes describe.

The image localiser (:mod:`medseg_r.model.localiser`) finds lesions well but, when a zone holds two
(a ground-glass and a calcified nodule, a round and a spiculated one), its modulated features pick
the one the report describes about as often as the other. Option ``attribute_head`` gives it an
explicit, supervised reading of the candidates instead: per cell, the probability of each canonical
texture code and each shape code (:data:`~medseg_r.report.schema.TEXTURE_CODES`,
:data:`~medseg_r.report.schema.SHAPE_CODES`) of the lesion there, trained with cross-entropy on the
cells of every lesion of a training image whose texture and shape a data set records (the phantom's
manifest lists each lesion's box, texture and shape: described targets, mentioned and omitted ones
alike). A model that reads the parsed findings (MedSeg-R) then scores each cell, for each positive
finding, by how likely the lesion there has the finding's codes (:func:`finding_likelihood`), next
to the finding's location prior, when it chooses the lesion to box
(:func:`~medseg_r.model.box_prompts.boxes_from_map`). Baselines may carry the same head and loss
(same parameters, same supervision); without parsed codes they cannot use it to choose.

Codes never seen in a training label are ignored when scoring (the head knows nothing of them): a
finding whose codes are all unseen, or that names none, is scored by location alone.

Shape labels come only from lesions whose record does not say the image hides the shape
(``shape_shown: false``): the phantom's shapes are radiologists' 3-D ratings, and most of its
lesions are drawn too small, too blurred or with an outline too plain to show theirs.

Label maps: ``[2, H, W]`` integers, channel 0 the texture code's index + 1, channel 1 the shape
code's, 0 where no lesion is recorded (a lesion's box is filled; a smaller box is drawn over a
larger one).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..report.schema import SHAPE_CODES, TEXTURE_CODES

N_TEXTURE, N_SHAPE = len(TEXTURE_CODES), len(SHAPE_CODES)
ATTRIBUTE_CHANNELS = N_TEXTURE + N_SHAPE
LIKELIHOOD_FLOOR = 0.1  # a cell's likelihood is FLOOR + (1 - FLOOR) * p(codes): a wrong, confident
# head cannot veto the location prior alone


def label_map(lesions: Iterable[Mapping], height: int, width: int) -> np.ndarray:
    """``[2, H, W]`` int64 label map (see the module doc) from lesion records with ``bbox``
    ``(x0, y0, x1, y1)`` (inclusive pixels), ``texture`` and ``shape`` (codes; an unknown or missing
    code sets nothing in that channel; so does a shape the record marks ``shape_shown: false``, as
    the phantom does for a rated shape its drawn outline does not show: such a label is noise)."""
    out = np.zeros((2, height, width), dtype=np.int64)
    boxed = []
    for lesion in lesions:
        box = lesion.get("bbox")
        if not box or len(box) != 4:
            continue
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        boxed.append(((x1 - x0 + 1) * (y1 - y0 + 1), x0, y0, x1, y1, lesion))
    for _, x0, y0, x1, y1, lesion in sorted(boxed, key=lambda b: -b[0]):
        ys, xs = slice(max(0, y0), max(0, y1 + 1)), slice(max(0, x0), max(0, x1 + 1))
        for channel, codes in ((0, TEXTURE_CODES), (1, SHAPE_CODES)):
            code = lesion.get("texture" if channel == 0 else "shape")
            if channel == 1 and lesion.get("shape_shown") is False:
                continue  # the record says the image does not show this shape: no label
            if code in codes:  # an unknown code leaves what a larger lesion's box wrote
                out[channel, ys, xs] = codes.index(code) + 1
    return out


class AttributeHead(nn.Module):
    """Per-cell texture and shape logits from the localiser's stride-4 features.

    Shapes: ``y`` ``[B, C, h, w]`` -> ``[B, N_TEXTURE + N_SHAPE, h, w]``. The buffer ``seen``
    ``[N_TEXTURE + N_SHAPE]`` marks the codes the head has been trained on (set by
    :func:`attribute_loss`; saved with the weights).
    """

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, ATTRIBUTE_CHANNELS, 1))
        self.register_buffer("seen", torch.zeros(ATTRIBUTE_CHANNELS, dtype=torch.bool))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.body(y)


def cell_labels(labels: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Label maps ``[B, 2, S, S]`` -> ``[B, 2, h, w]``: the label at each cell's centre."""
    h, w = grid
    S_y, S_x = labels.shape[-2:]
    ys = ((torch.arange(h, dtype=torch.float32) + 0.5) * S_y / h).long().clamp(max=S_y - 1)
    xs = ((torch.arange(w, dtype=torch.float32) + 0.5) * S_x / w).long().clamp(max=S_x - 1)
    return labels[:, :, ys][:, :, :, xs].to(torch.long)


def attribute_loss(logits: torch.Tensor, labels: torch.Tensor,
                   head: Optional[AttributeHead] = None) -> torch.Tensor:
    """Cross-entropy of the texture and of the shape logits (``logits`` ``[B, N_TEXTURE + N_SHAPE,
    h, w]``) at the cells whose label is set (``labels`` ``[B, 2, S, S]``, see :func:`label_map`),
    the two groups averaged over their labelled cells and summed; 0 when no cell is labelled. With
    ``head``, the codes met are marked in its ``seen`` buffer."""
    cells = cell_labels(labels, tuple(logits.shape[-2:])).to(logits.device)
    logits = logits.float()
    total = logits.new_zeros(())
    for channel, part in ((0, slice(0, N_TEXTURE)), (1, slice(N_TEXTURE, ATTRIBUTE_CHANNELS))):
        target = cells[:, channel] - 1  # -1: unlabelled
        if not bool((target >= 0).any()):
            continue
        total = total + F.cross_entropy(logits[:, part], target.clamp(min=-1), ignore_index=-1)
        if head is not None:
            met = torch.unique(target[target >= 0]) + part.start
            head.seen[met] = True
    return total


def share_seen(head: AttributeHead) -> None:
    """Make ``head.seen`` the union of every process's in distributed training (a no-op in one
    process). Each rank marks the codes of its own batches; DDP broadcasts buffers from rank 0 at
    every forward, so without this a code met only on other ranks would be forgotten and ignored
    when scoring. A collective: every rank must call it at the same step."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    flags = head.seen.to(torch.int32)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    head.seen.copy_(flags.bool())


def finding_likelihood(logits: torch.Tensor, seen: torch.Tensor, texture: Sequence[str],
                       shape: Sequence[str]) -> torch.Tensor:
    """How well the lesion at each cell fits one finding's codes: ``[h, w]`` in ``[FLOOR, 1]``, the
    product over texture and shape of ``FLOOR + (1 - FLOOR) * max_c p(c)`` over the finding's codes
    ``c`` the head has seen (a group with none of them contributes 1). ``logits`` ``[N_TEXTURE +
    N_SHAPE, h, w]`` (one image), ``seen`` the head's buffer."""
    out = torch.ones(logits.shape[-2:], dtype=torch.float32, device=logits.device)
    for part, vocabulary, codes in ((slice(0, N_TEXTURE), TEXTURE_CODES, texture),
                                    (slice(N_TEXTURE, ATTRIBUTE_CHANNELS), SHAPE_CODES, shape)):
        index = [vocabulary.index(c) for c in codes
                 if c in vocabulary and bool(seen[part.start + vocabulary.index(c)])]
        if not index:
            continue
        probs = torch.softmax(logits[part].float(), dim=0)[index].amax(0)
        out = out * (LIKELIHOOD_FLOOR + (1 - LIKELIHOOD_FLOOR) * probs)
    return out


__all__ = ["ATTRIBUTE_CHANNELS", "AttributeHead", "LIKELIHOOD_FLOOR", "attribute_loss",
           "cell_labels", "finding_likelihood", "label_map", "share_seen"]
