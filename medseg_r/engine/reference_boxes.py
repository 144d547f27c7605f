"""Box prompts drawn around the reference lesions, for fine-tuning a box-prompted mask decoder
(the ``reference_boxes`` training objective of :mod:`medseg_r.engine.task`).

A frozen box-trained decoder (pretrained LiteMedSAM) under-segments faint, large lesions inside a
right box (README, "What still limits Dice"). Fine-tuning it on the data's own lesions needs no
report: each training image gives one of its described lesions (a connected component of the
reference mask), a box around it moved by up to :data:`JITTER` of its size on each side (the boxes a
localiser places at inference are about that far off: longer sides within 0.82-1.22 of the lesion's)
and that lesion alone as the target. The decoder so trained is the same for every model of a
comparison: what a model reads decides only where its boxes go.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch

from ..model.box_regression import component_boxes

# each side of a reference box moves by up to this share of the box's width (x) or height (y),
# plus up to one pixel
JITTER = 0.2


def jittered(box: Tuple[int, int, int, int], *, size: Tuple[int, int], jitter: float,
             generator: Optional[torch.Generator]) -> List[float]:
    """``box`` with each side moved by a uniform draw in ``[-jitter, jitter]`` times the box's
    width or height, plus ``[-1, 1]`` px, kept inside the image ``size`` ``(H, W)`` and at least one
    pixel wide and high. ``jitter=0`` or no ``generator``: the box itself."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if jitter <= 0 or generator is None:
        return [x0, y0, x1, y1]
    w, h = x1 - x0 + 1, y1 - y0 + 1
    u = torch.rand(8, generator=generator).mul(2).sub(1).tolist()
    x0, x1 = x0 + u[0] * jitter * w + u[4], x1 + u[2] * jitter * w + u[6]
    y0, y1 = y0 + u[1] * jitter * h + u[5], y1 + u[3] * jitter * h + u[7]
    height, width = size
    x0, x1 = min(max(x0, 0.0), width - 2.0), min(max(x1, 0.0), width - 1.0)
    y0, y1 = min(max(y0, 0.0), height - 2.0), min(max(y1, 0.0), height - 1.0)
    return [x0, y0, max(x1, x0 + 1.0), max(y1, y0 + 1.0)]


def reference_box_batch(masks: torch.Tensor, *, generator: Optional[torch.Generator],
                        jitter: float = JITTER) -> Tuple[List[int], torch.Tensor, torch.Tensor]:
    """One box prompt per image that has a described lesion: masks ``[B, 1, H, W]`` (reference, >
    0.5) -> (indices of the images kept, boxes ``[n, 4]`` ``(x0, y0, x1, y1)`` in pixels, targets
    ``[n, 1, H, W]``: the boxed lesion alone; lesions are the reference's 4-connected components,
    as :mod:`~medseg_r.engine.evaluate` counts them). With a ``generator`` the lesion is drawn at random
    and its box jittered (:func:`jittered`); without one, each image's largest lesion and its exact
    box (validation). Images without a lesion (negative reports) are left out."""
    kept: List[int] = []
    boxes: List[List[float]] = []
    targets: List[torch.Tensor] = []
    size = tuple(masks.shape[-2:])
    for b in range(masks.shape[0]):
        found = component_boxes(masks[b, 0].detach().cpu().numpy() > 0.5, diagonal=False)
        if not found:
            continue
        if generator is not None:
            pick = int(torch.randint(len(found), (1,), generator=generator))
        else:
            pick = int(np.argmax([component.sum() for component, _ in found]))
        component, box = found[pick]
        kept.append(b)
        boxes.append(jittered(box, size=size, jitter=jitter, generator=generator))
        targets.append(torch.from_numpy(component)[None])
    if not kept:
        return [], torch.zeros(0, 4), torch.zeros(0, 1, *size)
    return (kept, torch.tensor(boxes, dtype=torch.float32),
            torch.stack(targets).to(masks.device, masks.dtype))
