"""SAM's prompt encoder and mask decoder, with the report's priors as prompts (one image at a time,
as SAM decodes). Every prior path is an exact no-op while its gate is zero."""

from __future__ import annotations

import types
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from .decoder_prompts import DecoderPriorPrompts
from .geometry import Frame, scale_boxes


class DecoderCallView:
    """A view of a SAM ``MaskDecoder`` for one call. SAM's own ``MaskDecoder.forward`` and
    ``predict_masks`` run on it unchanged, with two optional differences that stay local to the call
    (nothing is hooked or mutated, so threads and ``nn.DataParallel`` replicas each keep their own):

    * ``shift`` ``[1, E]`` is added to the output-token embeddings (IoU and mask tokens); add the
      same shift to the sparse prompt embeddings to shift every query token of the two-way
      transformer;
    * ``detach_iou_input``: the IoU head sees its input detached, so a loss on the predicted IoU
      trains the head alone and leaves the masks as the segmentation loss makes them.
    """

    def __init__(
        self,
        decoder: nn.Module,
        *,
        shift: Optional[torch.Tensor] = None,
        detach_iou_input: bool = False,
    ) -> None:
        self._decoder = decoder
        if shift is not None:
            shift = shift.reshape(1, -1)
            for name in ("iou_token", "mask_tokens"):
                weight = getattr(decoder, name).weight
                setattr(self, name, types.SimpleNamespace(weight=weight + shift.to(weight.dtype)))
        if detach_iou_input:
            head = decoder.iou_prediction_head
            self.iou_prediction_head = lambda tokens: head(tokens.detach())

    def __getattr__(self, name: str):
        own = getattr(type(self._decoder), name, None)
        if isinstance(own, types.FunctionType):  # SAM's methods, bound to this view
            return types.MethodType(own, self)
        return getattr(self._decoder, name)

    def __call__(self, **kwargs):
        return type(self._decoder).forward(self, **kwargs)


def fullest_outputs(low: torch.Tensor, iou: torch.Tensor, boxes: torch.Tensor, *, fill: float,
                    canvas: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per box, the decoder's single-mask output, unless it fills less than ``fill`` of its box:
    then the output (of all four) that fills the box most.

    Shapes: ``low`` ``[n, 4, s, s]`` logits of SAM's four mask tokens (single-mask first), ``iou``
    ``[n, 4]``, ``boxes`` ``[n, 4]`` ``(x0, y0, x1, y1)`` in canvas pixels (``canvas`` per side) ->
    ``[n, 1, s, s]``, ``[n, 1]``."""
    n, _, h, w = low.shape
    scale = w / canvas
    cells = (boxes.detach().float() * scale).floor()
    xs = torch.arange(w, device=low.device)
    ys = torch.arange(h, device=low.device)
    inside = ((xs[None, None, :] >= cells[:, 0, None, None]) & (xs[None, None, :] <= cells[:, 2, None, None])
              & (ys[None, :, None] >= cells[:, 1, None, None]) & (ys[None, :, None] <= cells[:, 3, None, None]))
    area = inside.flatten(1).sum(1).clamp(min=1)  # [n]
    fills = ((low > 0) & inside[:, None]).flatten(2).sum(2) / area[:, None]  # [n, 4]
    pick = torch.where(fills[:, 0] >= fill, torch.zeros_like(area), fills.argmax(1))
    rows = torch.arange(n, device=low.device)
    return low[rows, pick][:, None], iou[rows, pick][:, None]


def points_for_boxes(boxes: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor
                     ) -> Tuple[Optional[Tuple[torch.Tensor, torch.Tensor]],
                                Optional[Tuple[torch.Tensor, torch.Tensor]]]:
    """A user's points as refinements of the boxes a model chose: every box gets the exclude points
    (label 0) and the include points (label 1) inside it, padded to one length with SAM's
    "not a point" label -1; include points inside no box become a prompt of their own, with the
    exclude points.

    Shapes: ``boxes`` ``[n, 4]`` and ``coords`` ``[1, N, 2]`` in canvas pixels, ``labels`` ``[1, N]``
    -> per box ``(coords [n, K, 2], labels [n, K])`` (None when no point goes to any box) and the
    extra prompt ``(coords [1, M, 2], labels [1, M])`` (None when every include point is in a box)."""
    xy, lab = coords[0], labels[0]
    include = lab == 1
    inside = ((xy[None, :, 0] >= boxes[:, None, 0]) & (xy[None, :, 0] <= boxes[:, None, 2])
              & (xy[None, :, 1] >= boxes[:, None, 1]) & (xy[None, :, 1] <= boxes[:, None, 3]))  # [n, N]
    taken = (lab == 0)[None, :] | (include[None, :] & inside)  # [n, N]
    width = int(taken.sum(1).max()) if len(boxes) else 0
    per_box = None
    if width:
        box_coords = xy.new_zeros(len(boxes), width, 2)
        box_labels = lab.new_full((len(boxes), width), -1)
        for i in range(len(boxes)):
            keep = taken[i].nonzero().flatten()
            box_coords[i, : len(keep)] = xy[keep]
            box_labels[i, : len(keep)] = lab[keep]
        per_box = (box_coords, box_labels)
    alone = include & ~inside.any(0)
    extra = None
    if alone.any():
        keep = alone | (lab == 0)
        extra = (xy[keep][None], lab[keep][None])
    return per_box, extra


def decode(
    sam: nn.Module,
    embeddings: torch.Tensor,
    *,
    frame: Frame,
    prompts: Optional[DecoderPriorPrompts] = None,
    priors: Optional[Dict[str, torch.Tensor]] = None,
    location_map: Optional[torch.Tensor] = None,
    text_tokens: Optional[torch.Tensor] = None,
    boxes: Optional[torch.Tensor] = None,
    points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    multimask_output: bool = False,
    detach_iou_input: bool = False,
    box_prompts: Optional[List[torch.Tensor]] = None,
    box_fill: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Decode image embeddings into low-resolution mask logits.

    Args:
        sam: the SAM-family model (its ``prompt_encoder`` and ``mask_decoder`` are used).
        embeddings: ``[B, E, h, w]`` from the (modulated) image encoder.
        frame: how the input sits on the encoder canvas (scales boxes and points).
        prompts, priors: MedSeg-R's decoder prompt paths and the fused priors (or ``None``).
        location_map: ``[B, 1, h, w]`` rasterised location prior at the embedding grid (or
        ``None``).
        text_tokens: ``[B, 1, E]`` extra sparse tokens of the ``text_token`` baseline (or ``None``).
        boxes: ``[B, 4]`` ``(x0, y0, x1, y1)`` in input pixels. points: ``(coords [B, N, 2], labels
        [B, N])``.
        detach_iou_input: the IoU head sees its input detached (training the head alone).
        box_prompts: per image ``[n, 4]`` boxes in canvas pixels predicted from the report (see
            :mod:`medseg_r.model.box_prompts`): each is decoded and the masks are joined (pixelwise
            maximum of the logits). An image with none, or with a user box, is decoded as usual.
            ``points`` refine them (:func:`points_for_boxes`): each box is decoded with the exclude
            points and the include points inside it, include points outside every box as a prompt
            of their own, and all the masks are joined.
        box_fill: with predicted boxes and a single mask wanted, each box's mask is chosen by
            :func:`fullest_outputs` (0: SAM's single-mask output).

    Returns:
        ``low_res`` logits ``[B, M, s, s]`` and ``iou`` ``[B, M]`` (``M`` = 3 with
        ``multimask_output``).
    """
    pe = sam.prompt_encoder.get_dense_pe()
    B = embeddings.shape[0]
    use = priors is not None and prompts is not None
    dense_prior = shift = None
    if use and prompts.uses_dense:
        grid = (
            location_map
            if location_map is not None
            else embeddings.new_full((B, 1, *embeddings.shape[-2:]), 0.5)
        )
        dense_prior = prompts.dense(priors, grid)
    if use and prompts.uses_token:
        shift = prompts.token_shift(priors)
    masks, ious = [], []
    for b in range(B):
        box = scale_boxes(boxes[b : b + 1].to(embeddings), frame) if boxes is not None else None
        pts = None
        if points is not None:
            coords, labels = points
            pts = (
                coords[b : b + 1].to(embeddings) * frame.scale,
                labels[b : b + 1].to(embeddings.device),
            )
        predicted = None if box_prompts is None or box is not None else box_prompts[b]
        extra = None  # include points outside every predicted box: a prompt of their own
        alone = None  # predicted boxes no point goes to: decoded without padding points
        if predicted is not None and len(predicted):
            box = predicted.to(embeddings)
            if pts is not None:
                pts, extra = points_for_boxes(box, *pts)
                if pts is not None:
                    has = (pts[1] != -1).any(1)
                    if not bool(has.all()):
                        alone = box[~has]
                        box, pts = box[has], (pts[0][has], pts[1][has])
        shift_b = None if shift is None else shift[b : b + 1]
        decoder = (
            sam.mask_decoder
            if shift_b is None and not detach_iou_input
            else DecoderCallView(sam.mask_decoder, shift=shift_b, detach_iou_input=detach_iou_input)
        )

        # every output of the decoder, to choose each predicted box's mask from
        choose = box_fill > 0 and predicted is not None and len(predicted) > 0 and not multimask_output

        def run(sp: torch.Tensor, dn: torch.Tensor, every_output: bool):
            if shift_b is not None:
                sp = sp + shift_b.to(sp.dtype).unsqueeze(1)
            if every_output:
                return decoder.predict_masks(image_embeddings=embeddings[b : b + 1], image_pe=pe,
                                             sparse_prompt_embeddings=sp, dense_prompt_embeddings=dn)
            return decoder(
                image_embeddings=embeddings[b : b + 1],
                image_pe=pe,
                sparse_prompt_embeddings=sp,
                dense_prompt_embeddings=dn,
                multimask_output=multimask_output,
            )

        def decoded(sp: torch.Tensor, dn: torch.Tensor, every_output: bool):
            low, iou = run(sp, dn, every_output)
            if use and prompts.uses_extra_token:
                tokens = prompts.extra_tokens(priors, b).to(sp.dtype).expand(sp.shape[0], -1, -1)
                low_t, iou_t = run(torch.cat([sp, tokens], dim=1), dn, every_output)
                g = prompts.extra_token_gate
                low = low + (g * (low_t - low)).to(low.dtype)
                iou = iou + (g * (iou_t - iou)).to(iou.dtype)
            return low, iou

        def prompted(points_p, boxes_p: Optional[torch.Tensor]):
            """One prompt through SAM's prompt encoder and decoder, with the priors' dense prompt
            and text tokens added; the masks of predicted boxes chosen by ``box_fill``."""
            sp, dn = sam.prompt_encoder(points=points_p, boxes=boxes_p, masks=None)
            if dense_prior is not None:
                dn = dn + dense_prior[b : b + 1].to(dn.dtype)
            if text_tokens is not None:
                sp = torch.cat([sp, text_tokens[b : b + 1].to(sp.dtype).expand(sp.shape[0], -1, -1)], dim=1)
            fill = choose and boxes_p is not None
            low_p, iou_p = decoded(sp, dn, fill)
            if fill:
                low_p, iou_p = fullest_outputs(low_p, iou_p, boxes_p, fill=box_fill, canvas=frame.size)
            return low_p, iou_p

        # the prompt as given (or the predicted boxes with their points), then the predicted boxes
        # no point goes to and the include points outside every box, each a prompt of its own
        outputs = [prompted(pts, box)] + [prompted(p, bx) for p, bx in ((None, alone), (extra, None))
                                          if p is not None or bx is not None]
        low, iou = torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])
        if low.shape[0] > 1:  # one mask per predicted box: join them
            low, iou = low.amax(dim=0, keepdim=True), iou.amax(dim=0, keepdim=True)
        masks.append(low)
        ious.append(iou)
    return torch.cat(masks), torch.cat(ious)


def decode_encoded(model, encoded, *, boxes: Optional[torch.Tensor] = None,
                   points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                   multimask_output: bool = False) -> Dict[str, torch.Tensor]:
    """The decoder on an :class:`~medseg_r.model.encoding.Encoded`: ``masks`` logits at the input
    size ``[B, M, H, W]``, ``iou`` ``[B, M]`` and ``low_res_masks``; ``boxes`` / ``points`` are
    prompts in input pixels (see :func:`decode`): a box replaces the boxes the model chose
    (``encoded.boxes``), points refine them (:func:`points_for_boxes`), or replace them where the
    report was read as nothing (the image's own boxes)."""
    from .geometry import from_canvas
    from .inputs import check_prompts

    if encoded.embeddings is None:
        raise ValueError("these inputs were encoded without the image embedding "
                         "(encode_inputs(..., need_embedding=False)): encode them again to decode")
    if not model.training:  # a caller's prompts (training's come from its own reference boxes)
        check_prompts(boxes, points, encoded.embeddings.shape[0],
                      shape=(encoded.frame.height, encoded.frame.width))
    predicted = encoded.boxes
    if points is not None and predicted is not None and encoded.unread is not None:
        # an image boxed without its report (read as nothing): the points say where to look
        predicted = [None if unread else b for b, unread in zip(predicted, encoded.unread)]
    low_res, iou = model.decode(encoded.embeddings, frame=encoded.frame, priors=encoded.priors,
                                location_map=encoded.location_map, text_tokens=encoded.text_tokens,
                                boxes=boxes, points=points, multimask_output=multimask_output,
                                box_prompts=predicted)
    return {"masks": from_canvas(low_res, encoded.frame), "iou": iou, "low_res_masks": low_res}


__all__ = ["DecoderCallView", "decode", "decode_encoded", "fullest_outputs", "points_for_boxes"]
