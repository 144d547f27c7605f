"""Report -> box prompts from the image itself: a small convolutional localiser steered by the priors.

:class:`~medseg_r.model.box_prompts.BoxHead` reads the SAM image embedding, so training it needs
the (frozen) encoder's output for every training image: 2.25 s per 256 px image for LiteMedSAM on
a 2-core AVX2 CPU, which caps a CPU run at a few thousand cases, and the head then overfits them.
:class:`ImageLocaliser` predicts the same two maps (``where``, ``extent``; see
:mod:`medseg_r.model.box_prompts`) from the image alone, with its own small residual network, so
it trains without the encoder: a step costs about as much as a cached one and every step can see
new cases. The SAM encoder runs only when masks are decoded from its boxes.

The network (strides 2, 4, 8, 16 on a ``work_size`` canvas, 256 px by default; widths ``widths``):
a top-down path merges the stride-16 context into the stride-8 features, where the report's priors
modulate them through the three perception modules (location: spatial attention with the
rasterised map; texture: dynamic convolution; shape: deformable sampling; each behind a
zero-initialised gate, :class:`~medseg_r.perception.SiteModulator`); dilated residual blocks then
spread what the priors selected, and the result is merged with the stride-4 features, where a
residual block and a 3x3 convolution give the two maps (4 px cells at 256 px) and, per cell, the
box of the lesion there (:mod:`medseg_r.model.box_regression`: a tight prompt box, not a region
of cells). Convolutions run
channels-last (oneDNN is several times faster so on a CPU); batch norms keep running statistics
(eval mode uses them).

At initialisation both maps are flat (a zero output layer): no box is predicted and the model is
the plain SAM, as with every other prior path.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..perception.common import CellPosition
from .attributes import AttributeHead
from .box_regression import REGRESSION_CHANNELS

Render = Callable[[Tuple[int, int]], torch.Tensor]
DEFAULT_WIDTHS = (16, 32, 64, 96)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """``relu(x + bn(conv(relu(bn(dilated conv(x))))))``."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(x + self.norm2(self.conv2(y)))


class FindingMatch(nn.Module):
    """``where`` logits from matching each positive finding with every cell:
    ``logsumexp_f <q(t_f), k(y)> / sqrt(m)`` over the report's positive findings, ``t_f`` the
    finding's four fused tokens side by side (location, texture, shape, meta), ``k`` a 1x1
    projection of the stride-4 features (plus, with ``positional``, a linear map of each cell's
    position: :func:`~medseg_r.perception.common.position_features`). It gives the priors a
    direct, per-finding say in which candidate a finding's box goes to (the modulated features
    decide it only through the convolutions after them). The query starts at zero, so the match
    adds the same constant to every cell (no change to the spatial softmax) until trained; a
    report without a positive finding adds nothing.

    Shapes: ``y`` ``[B, C, h, w]``, ``tokens`` ``[B, F, 4, d]``, ``positive`` ``[B, F]`` ->
    ``[B, 1, h, w]``.
    """

    def __init__(self, *, channels: int, prior_dim: int, dim: int = 32,
                 positional: bool = False) -> None:
        super().__init__()
        self.query = nn.Linear(4 * prior_dim, dim)
        nn.init.zeros_(self.query.weight)
        nn.init.zeros_(self.query.bias)
        self.key = nn.Conv2d(channels, dim, 1)
        self.position = CellPosition(dim) if positional else None
        self.scale = dim ** -0.5

    def forward(self, y: torch.Tensor, tokens: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        B, F_, G, d = tokens.shape
        q = self.query(tokens.reshape(B, F_, G * d))  # [B, F, m]
        k = self.key(y)
        if self.position is not None:
            k = self.position.add_to(k)
        logits = torch.einsum("bfm,bmhw->bfhw", q, k.to(q.dtype)) * self.scale
        logits = logits.masked_fill(~positive[:, :, None, None], float("-inf"))
        out = logits.logsumexp(dim=1, keepdim=True)
        return torch.where(positive.any(1)[:, None, None, None], out, torch.zeros_like(out))


class ImageLocaliser(nn.Module):
    """``where`` and ``extent`` maps of the described lesions from the image and the priors.

    Args:
        hidden: width of the top-down path (where the priors act).
        widths: channels of the four stages (strides 2, 4, 8, 16).
        modulator: the perception modules (a :class:`~medseg_r.perception.SiteModulator` of width
            ``hidden``), or ``None`` for an unconditioned localiser.
        work_size: the canvas is resized to this side before the network (the maps come out at
            ``work_size / 4``).
        prior: initial ``extent`` probability of every cell.
        match_prior_dim: with a token width, a :class:`FindingMatch` adds each positive finding's
            match with the cells to ``where`` (``None``: no match).
        positional_keys: the match's keys also carry each cell's position.
        attributes: an :class:`~medseg_r.model.attributes.AttributeHead` reads the stride-4
            features: the texture and shape logits of the lesion at each cell come out as the
            channels after the box (:data:`~medseg_r.model.box_prompts.ATTRIBUTES`).

    Shapes: ``canvas`` ``[B, 3, S, S]`` (the encoder's input), ``priors`` (fused prior tokens),
    ``render(size) -> [B, 1, h, w]`` (location maps, or ``None``) -> maps ``[B, 6, S'/4, S'/4]``
    (``S' = work_size``; channel 0 ``where``, channel 1 ``extent``, channels 2-5 the box of the
    lesion at each cell: :mod:`medseg_r.model.box_regression`; with ``attributes``,
    ``[B, 6 + 36, ...]``: the texture and shape logits follow) and, with
    ``return_attention``, the modulator's spatial attention ``[B, 1, S'/8, S'/8]`` (or ``None``).
    """

    reads_embedding = False

    def __init__(self, *, hidden: int = 48, widths: Sequence[int] = DEFAULT_WIDTHS,
                 modulator: Optional[nn.Module] = None, work_size: int = 256,
                 prior: float = 0.01, match_prior_dim: Optional[int] = None,
                 attributes: bool = False, positional_keys: bool = False) -> None:
        super().__init__()
        if hidden < 1 or len(widths) != 4 or min(widths) < 1:
            raise ValueError("hidden must be >= 1 and widths four positive channel counts")
        if work_size < 16 or work_size % 16:
            raise ValueError(f"work_size must be a multiple of 16, got {work_size}")
        w0, w1, w2, w3 = widths
        self.work_size = work_size
        self.stem = _conv_bn(3, w0, 2)
        self.stage1 = nn.Sequential(_conv_bn(w0, w1, 2), _Residual(w1), _Residual(w1))
        self.stage2 = nn.Sequential(_conv_bn(w1, w2, 2), _Residual(w2), _Residual(w2))
        self.stage3 = nn.Sequential(_conv_bn(w2, w3, 2), _Residual(w3), _Residual(w3, 2))
        self.lateral3 = nn.Conv2d(w3, hidden, 1)
        self.lateral2 = nn.Conv2d(w2, hidden, 1)
        self.lateral1 = nn.Conv2d(w1, hidden, 1)
        self.context = nn.Sequential(_Residual(hidden, 1), _Residual(hidden, 2))
        self.fine = _Residual(hidden)
        self.out = nn.Conv2d(hidden, 2 + REGRESSION_CHANNELS, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.zero_()
            self.out.bias[1] = math.log(prior / (1 - prior))
        self.match = None
        if match_prior_dim is not None:
            self.match = FindingMatch(channels=hidden, prior_dim=match_prior_dim,
                                      positional=positional_keys)
        self.attributes = AttributeHead(channels=hidden) if attributes else None
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.to(memory_format=torch.channels_last)
        self.modulator = modulator  # after the conversion: it converts its own convolutions

    @property
    def grid(self) -> Tuple[int, int]:
        """The maps' grid ``(h, w)``."""
        return self.work_size // 4, self.work_size // 4

    def forward(self, embedding: Optional[torch.Tensor], attention: Optional[torch.Tensor],
                canvas: torch.Tensor, priors: Optional[dict] = None,
                render: Optional[Render] = None, *, return_attention: bool = False):
        """``embedding`` and ``attention`` (the encoder's) are not read: the arguments match
        :class:`~medseg_r.model.box_prompts.BoxHead`'s so either head fits the same call."""
        x = canvas
        if x.shape[-1] != self.work_size or x.shape[-2] != self.work_size:
            x = F.interpolate(x, size=(self.work_size, self.work_size), mode="bilinear",
                              align_corners=False, antialias=True)
        x = x.to(self.stem[0].weight.dtype).contiguous(memory_format=torch.channels_last)
        s1 = self.stage1(self.stem(x))  # stride 4
        s2 = self.stage2(s1)  # stride 8
        s3 = self.stage3(s2)  # stride 16
        y = F.interpolate(self.lateral3(s3), size=s2.shape[-2:], mode="nearest") + self.lateral2(s2)
        site_attention = None
        if self.modulator is not None and priors is not None:
            location = render(tuple(y.shape[-2:])) if render is not None else None
            z, site_attention = self.modulator(y.permute(0, 2, 3, 1), priors, location)
            y = z.permute(0, 3, 1, 2)
        y = self.context(y.contiguous(memory_format=torch.channels_last))
        y = F.interpolate(y, size=s1.shape[-2:], mode="nearest") + self.lateral1(s1)
        y = self.fine(y)
        logits = self.out(y)
        if self.match is not None and priors is not None:
            where = logits[:, :1] + self.match(y, priors["tokens"], priors["positive"]).to(logits.dtype)
            logits = torch.cat([where, logits[:, 1:]], dim=1)
        if self.attributes is not None:
            logits = torch.cat([logits, self.attributes(y).to(logits.dtype)], dim=1)
        return (logits, site_attention) if return_attention else logits
