"""Box sizes regressed per cell: a tight prompt box instead of a region of cells.

A box drawn around a region of the ``extent`` map is as coarse as its cells (4 px at 256 px, plus a
margin), which is loose for the small lesions of a radiograph, and SAM's decoder segments a loose
box worse (measured on the phantom test split: from a localiser's own boxes, the pretrained
LiteMedSAM reached Dice 0.39; with the reference box of each lesion those boxes had found, 0.48).
A head may therefore predict, at every cell, the box of the lesion covering it (channels
:data:`BOX_CHANNELS` of its maps): the offset of the box centre from the cell centre, in cells,
and the log of the box width and height, in cells. Boxes use the convention of the oracle box
``(x0, y0, x1, y1)`` = first and last pixel column and row of the lesion.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

BOX_CHANNELS = slice(2, 6)  # dx, dy, log w, log h (cells) after where (0) and extent (1)
REGRESSION_CHANNELS = 4


def component_boxes(mask: np.ndarray, *, diagonal: bool = True
                    ) -> List[Tuple[np.ndarray, Tuple[int, int, int, int]]]:
    """The connected components of a boolean mask ``[H, W]`` with their boxes ``(x0, y0, x1, y1)``
    (inclusive pixel bounds). ``diagonal``: pixels that touch at a corner join one component
    (8-connectivity); ``False``: 4-connectivity, the lesions :mod:`medseg_r.engine.evaluate`
    counts."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool) if diagonal else None)
    out = []
    for k, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        out.append((labels == k, (cols.start, rows.start, cols.stop - 1, rows.stop - 1)))
    return out


def box_targets(masks: torch.Tensor, grid: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Regression targets ``[B, 4, h, w]`` and weights ``[B, 1, h, w]`` from reference masks
    ``[B, 1, S, S]``: every cell a lesion touches (max pooling, as the ``extent`` target) gets that
    lesion's box relative to the cell; a cell two lesions touch takes the smaller one."""
    B = masks.shape[0]
    h, w = grid
    size_y, size_x = masks.shape[-2:]
    cell_y, cell_x = size_y / h, size_x / w
    target = torch.zeros(B, 4, h, w)
    weight = torch.zeros(B, 1, h, w)
    best = torch.full((B, h, w), float("inf"))
    binary = (masks[:, 0] > 0.5).cpu().numpy()
    centre_x = (torch.arange(w, dtype=torch.float32) + 0.5) * cell_x
    centre_y = (torch.arange(h, dtype=torch.float32) + 0.5) * cell_y
    for b in range(B):
        for component, (x0, y0, x1, y1) in component_boxes(binary[b]):
            cells = F.adaptive_max_pool2d(torch.from_numpy(component).float()[None, None],
                                          grid)[0, 0] > 0
            area = float((x1 - x0 + 1) * (y1 - y0 + 1))
            take = cells & (area < best[b])
            if not bool(take.any()):
                continue
            best[b][take] = area
            bw, bh = x1 - x0 + 1.0, y1 - y0 + 1.0
            cx, cy = (x0 + x1 + 1) / 2.0, (y0 + y1 + 1) / 2.0
            values = torch.stack([
                ((cx - centre_x) / cell_x)[None, :].expand(h, w),
                ((cy - centre_y) / cell_y)[:, None].expand(h, w),
                torch.full((h, w), float(np.log(bw / cell_x))),
                torch.full((h, w), float(np.log(bh / cell_y)))])
            target[b][:, take] = values[:, take]
            weight[b, 0][take] = 1.0
    return target.to(masks.device), weight.to(masks.device)


def box_regression_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Smooth L1 between the regressed boxes (channels :data:`BOX_CHANNELS` of ``logits``) and
    :func:`box_targets`, averaged over the cells lesions touch (0 for a batch without lesion)."""
    target, weight = box_targets(masks, tuple(logits.shape[-2:]))
    predicted = logits[:, BOX_CHANNELS].float()
    per_cell = F.smooth_l1_loss(predicted, target, reduction="none", beta=0.5).sum(1, keepdim=True)
    return (per_cell * weight).sum() / weight.sum().clamp(min=1.0)


def regressed_box(boxes: np.ndarray, cells: np.ndarray, weights: np.ndarray,
                  cell: float) -> List[float]:
    """The box ``(x0, y0, x1, y1)`` in canvas pixels that the cells ``cells`` (a boolean ``[h, w]``)
    predict, their predictions weighted by ``weights`` ``[h, w]``; ``boxes`` is the head's
    ``[4, h, w]`` regression (dx, dy, log w, log h in cells)."""
    ys, xs = np.nonzero(cells)
    wts = weights[ys, xs].astype(np.float64) + 1e-6
    wts = wts / wts.sum()
    dx, dy, lw, lh = (boxes[k, ys, xs] for k in range(4))
    cx = float(np.sum(wts * ((xs + 0.5 + dx) * cell)))
    cy = float(np.sum(wts * ((ys + 0.5 + dy) * cell)))
    # at least one pixel: the box's end is its last pixel (inclusive), so a narrower one would
    # come out inside-out
    bw = max(float(np.sum(wts * np.exp(np.clip(lw, -4.0, 6.0)))) * cell, 1.0)
    bh = max(float(np.sum(wts * np.exp(np.clip(lh, -4.0, 6.0)))) * cell, 1.0)
    return [cx - bw / 2, cy - bh / 2, cx + bw / 2 - 1, cy + bh / 2 - 1]
