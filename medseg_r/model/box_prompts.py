"""Report -> box prompts: what a user's box would give SAM's decoder, predicted from the report.

SAM-family decoders are trained with box prompts (pretrained LiteMedSAM segments a described phantom
lesion well given its true box, and nothing without one). :class:`BoxHead` reads the image embedding
*after* MedSeg-R's modules have modulated it, the spatial attention of the first modulated site
(how the location prior reaches it) and a small stem on the image, and predicts two maps at the
embedding grid:

* ``where`` (channel 0): a spatial softmax, the probability that a described lesion covers each
  cell. Trained towards the reference cells (a divergence of the two distributions), it always ranks the cells of
  an image, so the lesion a report asserts is looked for even where the head is unsure;
* ``extent`` (channel 1): the probability that a cell belongs to a described lesion (binary
  cross-entropy + Dice), which gives a box its size.

:func:`boxes_from_map` turns them into boxes. A model that reads the report (MedSeg-R) takes, for
each positive finding, the peak of ``where`` weighted by that finding's own location prior, and the
box of the ``extent`` region around it (``count`` peaks for "two nodules ..."); a report whose
findings are all negated gives no box. A model that cannot read the findings (the baselines) boxes
every region of ``extent`` above ``threshold``, and so does MedSeg-R at inference for a report read
as nothing (no finding at all: :func:`~medseg_r.model.encoding.read_as_nothing`).

At initialisation both maps are flat (zero weights): no box is predicted and the model's output is
the plain decoder's, the identity-at-init guarantee of the other prior paths.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attributes import ATTRIBUTE_CHANNELS
from .box_regression import BOX_CHANNELS, box_regression_loss, regressed_box
from .options import BOX_MODULATION

WHERE, EXTENT = 0, 1
ATTRIBUTES = slice(6, 6 + ATTRIBUTE_CHANNELS)  # an image localiser's texture/shape logits
WHERE_FLOOR = 0.1  # a finding's location prior weighs `where` by FLOOR + (1 - FLOOR) * map
EXCLUDE = 2  # cells around a boxed region that later peaks may not take (a lesion's rim)


class _Residual(nn.Module):
    """``x + conv(gelu(norm(dilated conv(x))))``; the norm is a layer norm over channels at each
    position, applied channels-last so that the convolutions stay channels-last."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.norm = nn.LayerNorm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv1(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.conv2(F.gelu(y))


class BoxHead(nn.Module):
    """``where`` and ``extent`` maps of the described lesions from an image embedding, the location
    attention and the image itself (a strided stem: SAM's embedding keeps little of a faint lesion
    of a few pixels, the image does).

    The heavy work runs at half the embedding grid (2 x 2 average-pooled inputs, three dilated
    residual blocks for context: where in the lung field a cell is, what lies around); the result
    is upsampled and added to a 1x1 projection of the stem and the attention at the full grid,
    where a 3x3 convolution gives the two maps. Convolutions run channels-last (3-4 times faster
    with oneDNN on a CPU), so a CPU trains the head on cached embeddings.

    ``modulator`` (a :class:`~medseg_r.perception.SiteModulator` of width ``hidden``): the
    report's priors modulate the head's own features too, where the image stem's detail (a lesion's
    texture and outline) sits beside the embedding: location through spatial attention, texture
    through dynamic convolution, shape through deformable sampling, each behind a zero-initialised
    gate as at the encoder's sites. ``modulate_at``: ``"coarse"``, at half the grid before the
    context blocks (their context then follows the priors), or ``"fine"``, at the full grid after
    the stem is added back (finer cells, so a lesion's outline spans more of them; the modules cost
    four times as much there).

    Args:
        channels: embedding channels ``E``. hidden: working width. stem: channels of the image
            stem (0: no stem).
        prior: initial ``extent`` probability of every cell.
        modulator: the perception modules of the head (``None``: an unconditioned head).
        modulate_at: ``"coarse"`` or ``"fine"`` (where ``modulator`` runs).

    Shapes: ``embedding`` ``[B, E, h, w]``, ``attention`` ``[B, 1, h', w']`` (resized to ``h, w``;
    ``None``: a flat 0.5), ``canvas`` ``[B, 3, S, S]`` (the encoder's input), ``priors`` (fused
    prior tokens), ``render(size) -> [B, 1, h, w]`` (location maps, or ``None``) -> logits
    ``[B, 2, h, w]`` (channel 0 ``where``, channel 1 ``extent``).
    """

    reads_embedding = True

    def __init__(self, *, channels: int, hidden: int = 48, stem: int = 32,
                 prior: float = 0.01, modulator: Optional[nn.Module] = None,
                 modulate_at: str = "coarse") -> None:
        super().__init__()
        if hidden < 1 or stem < 0:
            raise ValueError("hidden must be >= 1 and stem >= 0")
        if modulate_at not in BOX_MODULATION:
            raise ValueError(f"modulate_at must be one of {BOX_MODULATION}, got {modulate_at!r}")
        self.modulate_at = modulate_at
        half = max(1, stem // 2)
        self.stem = None if stem == 0 else nn.Sequential(
            nn.Conv2d(3, half, kernel_size=3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(half, stem, kernel_size=3, stride=2, padding=1), nn.GELU())
        # the embedding enters as a matrix product on its channels-last layout (no copy of it)
        self.embedding_in = nn.Linear(channels, hidden)
        self.image_in = nn.Conv2d(1 + stem, hidden, kernel_size=1, bias=False)
        self.context = nn.Sequential(*[_Residual(hidden, d) for d in (1, 2, 3)])
        self.fine_in = nn.Conv2d(1 + stem, hidden, kernel_size=1)
        self.out = nn.Conv2d(hidden, 2, kernel_size=3, padding=1)
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.copy_(torch.tensor([0.0, math.log(prior / (1 - prior))]))
        self.to(memory_format=torch.channels_last)
        self.modulator = modulator  # after the conversion: it converts its own convolutions

    def forward(self, embedding: torch.Tensor, attention: Optional[torch.Tensor],
                canvas: torch.Tensor, priors: Optional[dict] = None,
                render: Optional[Callable] = None) -> torch.Tensor:
        B, _, h, w = embedding.shape
        last = torch.channels_last
        if attention is None:
            attention = embedding.new_full((B, 1, h, w), 0.5)
        elif attention.shape[-2:] != (h, w):
            attention = F.interpolate(attention, size=(h, w), mode="bilinear", align_corners=False)
        parts = [attention.to(embedding.dtype)]
        if self.stem is not None:
            image = self.stem(canvas.to(embedding.dtype).contiguous(memory_format=last))
            parts.append(image if image.shape[-2:] == (h, w)
                         else F.adaptive_avg_pool2d(image, (h, w)))
        fine = torch.cat(parts, dim=1).contiguous(memory_format=last)  # [B, 1 + stem, h, w]
        coarse = (h + 1) // 2, (w + 1) // 2
        pooled = F.adaptive_avg_pool2d(embedding, coarse)
        x = self.embedding_in(pooled.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = x + self.image_in(F.adaptive_avg_pool2d(fine, coarse))
        modulate = self.modulator is not None and priors is not None
        if modulate and self.modulate_at == "coarse":
            x = self._modulate(x, priors, render)
        x = self.context(x)
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        x = x + self.fine_in(fine)
        if modulate and self.modulate_at == "fine":
            x = self._modulate(x, priors, render)
        return self.out(F.gelu(x))

    def _modulate(self, x: torch.Tensor, priors: dict, render: Optional[Callable]) -> torch.Tensor:
        location = render(tuple(x.shape[-2:])) if render is not None else None
        return self.modulator(x.permute(0, 2, 3, 1), priors, location)[0].permute(0, 3, 1, 2)


# location maps [n, h, w], a count per finding and, optionally, how well each cell's lesion fits
# each finding's texture and shape codes [n, h, w] (medseg_r.model.attributes)
Finding = Union[Tuple[torch.Tensor, Sequence[int]],
                Tuple[torch.Tensor, Sequence[int], Optional[torch.Tensor]]]


def _flat(values: np.ndarray) -> bool:
    return float(values.max() - values.min()) <= 1e-6


def _region_box(extent: np.ndarray, peak: Tuple[int, int], region: float) -> np.ndarray:
    """The cells ``[h, w]`` (boolean) of the ``extent`` region around ``peak``: the connected cells
    above ``region`` times the largest extent within 3 cells of the peak (just the peak's cell
    when it is not among them)."""
    from scipy import ndimage

    py, px = peak
    local = float(extent[max(0, py - 3):py + 4, max(0, px - 3):px + 4].max())
    labels, _ = ndimage.label(extent > max(region * local, 1e-6))
    k = labels[py, px]
    if k == 0:
        cells = np.zeros(extent.shape, dtype=bool)
        cells[py, px] = True
        return cells
    return labels == k


def _cells_box(cells: np.ndarray, *, extent: np.ndarray, regression: Optional[np.ndarray],
               cell: float, margin: float) -> List[float]:
    """A region's box in canvas pixels: regressed (:mod:`.box_regression`) when the head predicts
    box sizes, else its cells plus ``margin`` cells on each side."""
    if regression is not None:
        return regressed_box(regression, cells, extent, cell)
    rows, cols = np.nonzero(cells)
    return [(cols.min() - margin) * cell, (rows.min() - margin) * cell,
            (cols.max() + 1 + margin) * cell, (rows.max() + 1 + margin) * cell]


def _take(taken: np.ndarray, cells: np.ndarray) -> None:
    """Mark a boxed region and its rim (``EXCLUDE`` cells) as taken."""
    rows, cols = np.nonzero(cells)
    taken[max(0, rows.min() - EXCLUDE):rows.max() + 1 + EXCLUDE,
          max(0, cols.min() - EXCLUDE):cols.max() + 1 + EXCLUDE] = True


def _hedges(scores: np.ndarray, floors: np.ndarray, extent: np.ndarray, taken: np.ndarray, *,
            threshold: float, region: float, room: int) -> List[np.ndarray]:
    """Further candidates (see ``hedge`` in :func:`boxes_from_map`): cells whose score for some
    finding reaches that finding's ``floors`` entry, on a lesion (``extent > threshold``) whose
    region does not touch a taken one; the strongest first. Marks what it takes in ``taken``."""
    out: List[np.ndarray] = []
    ok = (scores >= floors[:, None, None]) & (extent > threshold)[None]
    while len(out) < room:
        masked = np.where(ok & ~taken[None], scores, -1.0)
        i, py, px = np.unravel_index(int(np.argmax(masked)), masked.shape)
        if masked[i, py, px] <= 0:
            break
        cells = _region_box(extent, (py, px), region)
        if (cells & taken).any():  # a shoulder of a lesion already boxed (cells holds the peak)
            taken[cells] = True
            continue
        _take(taken, cells)
        out.append(cells)
    return out


def boxes_from_map(logits: torch.Tensor, *, canvas: int, threshold: float, max_boxes: int,
                   margin: float = 1.0, findings: Optional[Sequence[Optional[Finding]]] = None,
                   region: float = 0.5, hedge: float = 0.0) -> List[torch.Tensor]:
    """The head's maps ``[B, 2, h, w]`` -> per image ``[n, 4]`` boxes ``(x0, y0, x1, y1)`` in
    canvas pixels (a region's cells plus ``margin`` cells on each side; with maps ``[B, 6, h, w]``
    the box the region's cells regress, weighted by their ``extent``: :mod:`.box_regression`).

    ``findings[b]`` ``None`` (a model that cannot read the findings, or no ``findings`` at all):
    every connected region of ``sigmoid(extent) > threshold``, the largest summed probability first,
    at most ``max_boxes``. Otherwise ``(maps [n, h, w], counts[, fits [n, h, w]])``: the location
    prior of each of the report's ``n`` positive findings at the map's grid, how many lesions it
    names and, optionally, how well the lesion at each cell fits its texture and shape
    (:func:`~medseg_r.model.attributes.finding_likelihood`); finding ``i`` scores each cell by
    ``softmax(where) * (0.1 + 0.9 * maps[i]) [* fits[i]]`` and takes ``counts[i]`` peaks;
    the strongest (finding, peak) pair is taken first and its cells are excluded for the rest
    (greedy assignment), each peak boxed by the region of ``extent`` above ``region`` times its
    local peak (:func:`_region_box`). ``n = 0`` gives no box. A flat ``where``
    map (the head at initialisation) never gives a box.

    ``hedge`` (0: off): when the findings have their peaks, a further candidate of finding ``i``
    is boxed too while its score is at least ``hedge`` times the score of ``i``'s own peak (the
    weakest of its peaks when it names several lesions) and its ``extent`` passes ``threshold``; the
    findings share what is left of ``max_boxes``, the strongest candidate of any finding first (a
    report whose findings already use every box gets no hedge): when
    the map cannot tell two candidates apart (e.g. two lesions of one zone whose shapes the head
    cannot distinguish), marking both has the higher expected Dice than betting on one (with two
    equal lesions, one right pick of probability p gives p, both give about 2/3)."""
    from scipy import ndimage

    maps = logits.detach().float()
    where = torch.softmax(maps[:, WHERE].flatten(1), dim=1).view_as(maps[:, WHERE]).cpu().numpy()
    extent = torch.sigmoid(maps[:, EXTENT]).cpu().numpy()
    regression = maps[:, BOX_CHANNELS].cpu().numpy() if maps.shape[1] >= 6 else None
    cell = canvas / extent.shape[-1]
    out = []
    for b in range(maps.shape[0]):
        given = None if findings is None else findings[b]
        regions: List[np.ndarray] = []
        if given is None:
            labels, n = ndimage.label(extent[b] > threshold)
            if n:
                mass = ndimage.sum(extent[b], labels, range(1, n + 1))
                regions = [labels == k + 1 for k in np.argsort(-np.asarray(mass))[:max_boxes]]
        elif not _flat(where[b]):
            prior, counts = given[0], given[1]
            prior = prior.detach().float().cpu().numpy()
            scores = where[b][None] * (WHERE_FLOOR + (1 - WHERE_FLOOR) * prior)  # [n, h, w]
            if len(given) > 2 and given[2] is not None:
                scores = scores * given[2].detach().float().cpu().numpy()
            left = [max(1, int(c)) for c in counts]
            best = np.full(len(left), np.inf)  # each finding's weakest own peak score
            taken = np.zeros_like(where[b], dtype=bool)
            while len(regions) < max_boxes and any(left):
                # the strongest (finding, cell) pair first, so that a weak finding cannot take
                # the lesion a stronger one sits on inside its own prior
                masked = np.where(taken[None], -1.0, scores)
                masked[[i for i, k in enumerate(left) if k == 0]] = -1.0
                i, py, px = np.unravel_index(int(np.argmax(masked)), masked.shape)
                if masked[i, py, px] <= 0:
                    break
                cells = _region_box(extent[b], (py, px), region)
                _take(taken, cells)
                regions.append(cells)
                left[i] -= 1
                best[i] = min(best[i], masked[i, py, px])
            if hedge > 0 and np.isfinite(best).any():
                regions += _hedges(scores, best * hedge, extent[b], taken, threshold=threshold,
                                   region=region, room=max_boxes - len(regions))
        own = None if regression is None else regression[b]
        boxes = [_cells_box(c, extent=extent[b], regression=own, cell=cell, margin=margin)
                 for c in regions]
        out.append(torch.tensor(boxes, dtype=torch.float32, device=logits.device).reshape(-1, 4)
                   .clamp(0, canvas))
    return out


def map_target(masks: torch.Tensor, grid: tuple) -> torch.Tensor:
    """The reference masks ``[B, 1, S, S]`` at the map's grid: a cell is positive when any pixel of
    it is (max pooling, so a lesion of a few pixels keeps its cell)."""
    return F.adaptive_max_pool2d((masks > 0.5).float(), grid)


def box_map_loss(logits: torch.Tensor, masks: torch.Tensor, *,
                 where_weight: float = 0.5, box_weight: float = 1.0) -> torch.Tensor:
    """``extent``: binary cross-entropy plus soft Dice against the reference at the map's grid (Dice
    over the batch, so lesion-free images do not each reward an empty map); ``where``: the
    Kullback-Leibler divergence of its spatial softmax from the reference cells (uniform over
    them), for the images that have a lesion, times ``where_weight``; with maps ``[B, 6, h, w]``
    also the box regression (:func:`~medseg_r.model.box_regression.box_regression_loss`) times
    ``box_weight``."""
    target = map_target(masks, tuple(logits.shape[-2:]))
    logits = logits.float()
    extent = logits[:, EXTENT:EXTENT + 1]
    bce = F.binary_cross_entropy_with_logits(extent, target)
    prob = torch.sigmoid(extent)
    dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
    flat = target.flatten(1)
    has = flat.sum(1) > 0
    where = logits.new_zeros(())
    if bool(has.any()):
        dist = flat[has] / flat[has].sum(1, keepdim=True)
        log_p = torch.log_softmax(logits[:, WHERE].flatten(1)[has], dim=1)
        log_dist = torch.log(dist.clamp(min=1e-12))
        where = (dist * (log_dist - log_p)).sum(1).mean()  # KL: 0 at the reference
    total = bce + dice + where_weight * where
    if logits.shape[1] >= 6:
        total = total + box_weight * box_regression_loss(logits, masks)
    return total
