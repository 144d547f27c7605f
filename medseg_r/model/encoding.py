"""Everything a MedSeg-R forward pass computes before the mask decoder (one call, no state).

:func:`encode` runs the image encoder, modulated by the report's priors at the injection sites. When
the encoder is frozen and a :class:`~medseg_r.model.feature_cache.FeatureCache` is given (or
attached to the model), what comes before the first injection site is read from the cache
(computed once per image) and the encoder resumes from there. :func:`encode_inputs` adds the input
geometry, the priors, the location maps and the box head, and returns an :class:`Encoded` that
:func:`medseg_r.model.decoding.decode_encoded` turns into masks: a caller that only changes box or
point prompts can keep the :class:`Encoded` and run the decoder alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..perception.injection import site_key
from .geometry import Frame, from_canvas, to_canvas

Render = Callable[[Tuple[int, int]], torch.Tensor]


def first_site(model) -> str:
    """The earliest site the model modulates (``neck`` when none: the embedding itself)."""
    stages = model.adapter.stages(model.sam.image_encoder)
    for stage in stages:
        if site_key(stage.site) in model.perception:
            return stage.site
    return stages[-1].site


def encoder_is_frozen(model) -> bool:
    """Whether the encoder's output is a fixed function of the image (no gradient, eval mode)."""
    encoder = model.sam.image_encoder
    return not encoder.training and not any(p.requires_grad for p in encoder.parameters())


def encode(model, canvas: torch.Tensor, priors: Optional[Dict[str, torch.Tensor]],
           render: Optional[Render] = None, *, cache=None
           ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``canvas`` ``[B, 3, S, S]`` -> (embedding ``[B, E, s, s]``, spatial attention
    ``[B, 1, h, w]`` of the first site that has one, or ``None``). ``render(size) -> [B, 1, h, w]``
    gives location maps at a site's grid (or ``None``). ``cache``: a feature cache (anything with
    ``features(model, canvas, site)``) instead of the model's own ``feature_cache``."""
    modulating = priors is not None and len(model.perception) > 0
    cache = cache if cache is not None else getattr(model, "feature_cache", None)
    resume = None
    if cache is not None and encoder_is_frozen(model):
        site = first_site(model)
        resume = (site, cache.features(model, canvas, site))
    elif not modulating:
        return model.sam.image_encoder(canvas), None
    maps: Dict[Tuple[int, int], Optional[torch.Tensor]] = {}
    attention: List[torch.Tensor] = []

    def modulate(site: str, x: torch.Tensor) -> torch.Tensor:
        key = site_key(site)
        if not modulating or key not in model.perception:
            return x
        size = (x.shape[1], x.shape[2])
        if size not in maps:
            maps[size] = render(size) if render is not None else None
        out, att = model.perception[key](x, priors, maps[size])
        if att is not None:
            attention.append(att)
        return out

    embeddings = model.adapter.run(model.sam.image_encoder, canvas, modulate, resume=resume,
                                   checkpointed=model.config.activation_checkpointing)
    return embeddings, (attention[0] if attention else None)


@dataclass
class Encoded:
    """What a forward pass computes before the decoder, for one batch (see :func:`encode_inputs`).
    ``attention`` is at the input size; ``boxes`` are the head's boxes in canvas pixels."""

    frame: Frame
    priors: Optional[Dict[str, torch.Tensor]]
    embeddings: Optional[torch.Tensor]  # None when only an image box head was run
    attention: Optional[torch.Tensor]
    location_map: Optional[torch.Tensor]
    box_map: Optional[torch.Tensor] = None
    boxes: Optional[List[torch.Tensor]] = None
    text_tokens: Optional[torch.Tensor] = None
    # per image, whether its boxes are the image's alone (a report read as nothing:
    # read_as_nothing, or a model that reads none); a caller's points then replace those boxes
    # instead of refining them
    unread: Optional[List[bool]] = None

    @property
    def nbytes(self) -> int:
        tensors = (self.embeddings, self.attention, self.location_map, self.box_map,
                   self.text_tokens)
        return sum(t.untyped_storage().nbytes() for t in tensors if t is not None)

    def outputs(self) -> Dict[str, object]:
        """The forward pass's outputs that do not need the decoder."""
        out: Dict[str, object] = {"location_map": self.location_map, "attention": self.attention}
        if self.box_map is not None:
            out.update(box_map=self.box_map, boxes=[b / self.frame.scale for b in self.boxes])
        return out


def finding_priors(model, reports: Sequence, frame: Frame, grid: Tuple[int, int],
                   box_map: Optional[torch.Tensor] = None):
    """What the box head's boxes are chosen by (:func:`~medseg_r.model.box_prompts.boxes_from_map`):
    for MedSeg-R, per report the location map of each positive finding at ``grid`` (flat without
    ``location_map``), the number of lesions it names and, when ``box_map`` carries an attribute
    head's logits, how well each cell fits the finding's texture and shape codes; ``None`` for a
    model that does not read the findings (the baselines), and, at inference, in MedSeg-R's list
    for a report read as nothing (:func:`read_as_nothing`): its image is boxed as the baselines box
    every image (the regions of ``extent`` above ``box_threshold``, at most ``max_findings``). A
    report whose findings are all negated (or artefacts) still gets no box. In training such a
    report gets no box, as before."""
    if model.config.priors != "structured":
        return None
    content = [frame.content] * len(reports)
    if model.config.location_map:
        maps = model.rasteriser.render_findings(reports, size=grid, content=content)
    else:
        maps = [torch.ones(len(r.positive_findings), *grid) for r in reports]
    counts = [[min(int(f.count or 1), model.config.max_findings) for f in r.positive_findings]
              for r in reports]
    head = getattr(model.box_head, "attributes", None)
    if head is None or box_map is None:
        chosen = list(zip(maps, counts))
    else:
        from .attributes import finding_likelihood
        from .box_prompts import ATTRIBUTES

        logits = box_map[:, ATTRIBUTES].detach()
        fits = [torch.stack([finding_likelihood(logits[b], head.seen, f.texture, f.shape)
                             for f in r.positive_findings]) if r.positive_findings else None
                for b, r in enumerate(reports)]
        chosen = list(zip(maps, counts, fits))
    unread = read_as_nothing(model, reports)
    return [None if nothing else item for nothing, item in zip(unread, chosen)]


def read_as_nothing(model, reports: Sequence) -> List[bool]:
    """Per report, whether MedSeg-R boxes its image from the image alone: at inference, a report
    from which the reader reads no finding, positive or negated, and no statement of a normal study
    (an empty report, or one in words it does not know: "Note is made of a smudgy spot."). Such a
    report tells the model neither what to look for nor that there is nothing. A normal study
    stated in words the vocabulary knows ("The lungs are clear.", "No acute disease.":
    :attr:`~medseg_r.report.schema.Report.normal_statements`) is an all-negative report: no box.
    The command line refuses a report read as nothing unless given ``--no-finding segment``; the
    web page unless a box or points are given, which then replace these boxes (points refine the
    boxes of a report that was read: :func:`~medseg_r.model.decoding.points_for_boxes`)."""
    structured = model.config.priors == "structured" and not model.training
    return [structured and r.reads_nothing for r in reports]


def flip_averaged_map(model, canvas: torch.Tensor, reports: Sequence, frame: Frame,
                      box_map: torch.Tensor) -> torch.Tensor:
    """Test-time flip of an image localiser (``box_flip``): the mean of ``box_map`` and the
    localiser's maps of the mirrored canvas read with the mirrored reports
    (:func:`~medseg_r.report.transform.mirrored_report`), mirrored back (a box's horizontal centre
    offset changes sign; texture and shape codes have no side). An image whose report cannot be
    mirrored keeps its own map (a model that does not read reports, ``priors="none"``, mirrors
    every image); so does a batch whose inputs are padded horizontally on the canvas (the padding
    would move to the left).

    Shapes: ``canvas`` ``[B, 3, S, S]``, ``box_map`` ``[B, C, h, w]`` -> ``[B, C, h, w]``."""
    from ..report.transform import mirrored_report
    from .box_prompts import BOX_CHANNELS
    from .conditioning import location_render

    if frame.resized[1] != frame.size:
        return box_map
    if model.config.priors == "none":  # the report is not read: every image has its mirror
        mirrored = list(reports)
    else:
        mirrored = [mirrored_report(r) for r in reports]
    if all(m is None for m in mirrored):
        return box_map
    readings = [r if m is None else m for m, r in zip(mirrored, reports)]
    render = location_render(model, readings, frame, canvas.device)
    flipped = model.box_head(None, None, canvas.flip(-1), model.encode_priors(readings), render)
    sign = torch.ones(box_map.shape[1], dtype=box_map.dtype, device=box_map.device)
    sign[BOX_CHANNELS.start] = -1.0  # dx
    flipped = flipped.flip(-1).to(box_map.dtype) * sign[None, :, None, None]
    weight = torch.tensor([0.0 if m is None else 0.5 for m in mirrored], dtype=box_map.dtype,
                          device=box_map.device)[:, None, None, None]
    return box_map + weight * (flipped - box_map)


def encode_inputs(model, images: torch.Tensor, reports: Sequence, *, cache=None,
                  need_embedding: bool = True) -> Encoded:
    """``images`` ``[B, 3, H, W]`` in ``[0, 1]`` and B reports (strings or :class:`Report`) -> the
    :class:`Encoded` of the batch (input checks, canvas, priors, location maps, modulated encoder,
    box head). ``cache``: as :func:`encode`. ``need_embedding=False`` (training a box head that
    reads the image alone, ``box_input="image"``): the encoder is not run and ``embeddings`` is
    ``None`` (nothing can be decoded from such an :class:`Encoded`)."""
    from .box_prompts import boxes_from_map
    from .conditioning import location_render
    from .inputs import as_reports, check_images

    check_images(images, finite=not model.training)
    weight = next(model.parameters(), None)  # none in an nn.DataParallel replica
    weights = None if weight is None else weight.dtype
    if weights not in (None, torch.float32):  # model.half() / .to(torch.bfloat16): priors are float32
        raise ValueError(f"MedSeg-R's weights must stay float32 (they are {weights}): for half "
                         f"precision run the model under torch.autocast instead of casting it")
    if images.dtype == torch.float64:  # numpy's default float: the model's weights are float32
        images = images.float()
    elif images.dtype in (torch.float16, torch.bfloat16) and images.device.type == "cpu":
        images = images.float()  # a CPU has no half-precision kernels for the resizing
    B, _, H, W = images.shape
    parsed = as_reports(reports, B)
    frame = Frame(height=H, width=W, size=model.img_size)
    x = to_canvas(images, frame, normalize=model.normalize,
                  pixel_mean=getattr(model.sam, "pixel_mean", None),
                  pixel_std=getattr(model.sam, "pixel_std", None))
    priors = model.encode_priors(parsed)
    render = location_render(model, parsed, frame, images.device)
    head = model.box_head
    if need_embedding or head is None or head.reads_embedding:
        embeddings, attention = encode(model, x, priors, render, cache=cache)
        grid = tuple(embeddings.shape[-2:])
    else:
        embeddings, attention, grid = None, None, head.grid
    encoded = Encoded(frame=frame, priors=priors, embeddings=embeddings, attention=None,
                      location_map=None if render is None else render(grid))
    if head is not None and not head.reads_embedding:
        encoded.box_map, head_attention = head(embeddings, attention, x, priors, render,
                                               return_attention=True)
        attention = attention if attention is not None else head_attention
        if model.config.box_flip and not model.training:
            encoded.box_map = flip_averaged_map(model, x, parsed, frame, encoded.box_map)
    elif head is not None:
        encoded.box_map = head(embeddings, attention, x, priors, render)
    if head is not None:
        encoded.boxes = boxes_from_map(encoded.box_map, canvas=model.img_size,
                                       threshold=model.config.box_threshold,
                                       max_boxes=model.config.max_findings,
                                       findings=finding_priors(model, parsed, frame,
                                                               tuple(encoded.box_map.shape[-2:]),
                                                               encoded.box_map),
                                       region=model.config.box_region,
                                       hedge=0.0 if model.training else model.config.box_hedge)
        # a model that reads no report boxes every image from the image alone: a caller's points
        # replace those boxes, as they replace MedSeg-R's for a report read as nothing
        encoded.unread = [model.config.priors != "structured" or nothing
                          for nothing in read_as_nothing(model, parsed)]
    if attention is not None:
        encoded.attention = F.interpolate(from_canvas(attention, frame), size=(H, W),
                                          mode="bilinear", align_corners=False)
    if model.text_prompt is not None:
        encoded.text_tokens = model.text_prompt([r.text for r in parsed])
    return encoded
