"""MedSegR: a SAM-family backbone steered by report priors (cognitive stage -> perceptual stage)."""
from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from ..backbones import Backbone, build_backbone
from ..cognition import LocationRasteriser, PriorEncoder, PriorFusion, build_text_encoder
from ..perception import MODULES, SiteModulator, adapter_for
from ..perception.injection import resolve_sites
from ..report import Report, parse_report
from .decoder_prompts import DecoderPriorPrompts, TextTokenPrompt
from .geometry import Frame, from_canvas, scale_boxes, to_canvas

PRIOR_MODES = ("structured", "none", "text_token")
FREEZE_MODES = ("image_encoder", "backbone", "none")
ReportLike = Union[str, Report]


@dataclass
class _Context:
    """What the encoder hooks need during one forward pass."""

    sites: Dict[str, nn.Module]
    modulators: nn.ModuleDict
    priors: Dict[str, torch.Tensor]
    render: Any
    maps: Dict[Tuple[int, int], torch.Tensor] = field(default_factory=dict)

    def location_map(self, h: int, w: int) -> Optional[torch.Tensor]:
        if self.render is None:
            return None
        if (h, w) not in self.maps:
            self.maps[(h, w)] = self.render((h, w))
        return self.maps[(h, w)]


_ACTIVE: contextvars.ContextVar[Optional[_Context]] = contextvars.ContextVar("medseg_r_active", default=None)


def _site_hook(site: str, to_channels_last):
    # The hook holds no reference to the model, so deep copies (EMA, Lightning) hook their own modules.
    def hook(module, inputs, output):
        ctx = _ACTIVE.get()
        if ctx is None or ctx.sites.get(site) is not module:
            return None
        x, restore = to_channels_last(output)
        return restore(ctx.modulators[site.replace(".", "_")](x, ctx.priors, ctx.location_map(x.shape[1], x.shape[2])))

    return hook


class MedSegR(nn.Module):
    """Report-guided segmentation on a SAM-family model.

    Args:
        backbone: a :class:`~medseg_r.backbones.Backbone` (see :func:`build_model` / :meth:`from_sam`).
        priors: ``"structured"`` (MedSeg-R), ``"none"`` (backbone alone, report ignored) or ``"text_token"``
            (naive baseline: one sentence embedding as an extra sparse prompt token).
        spatial_attention, dynamic_conv, deformable: enable each perceptual module (location, texture, shape).
        location_map: feed the rasterised location map to spatial attention and the dense decoder prompt.
        decoder_prior: how fused priors reach the mask decoder: ``both`` (dense + token), ``dense``, ``token``,
            ``extra_token`` or ``none`` (see :mod:`medseg_r.model.decoder_prompts`).
        inject_at: encoder sites to modulate (default: patch embedding + first two blocks for ViT; the first
            two stages for TinyViT). See :mod:`medseg_r.perception.injection`.
        prior_dim: prior token width. bottleneck: working width of the perceptual modules.
        fusion_depth: transformer layers of the cross-attribute fusion. max_findings: findings per report.
        text_encoder: ``"hashed"`` (no weights needed) or a local HF / sentence-transformers folder.
        orientation: ``"radiological"`` (patient's left on the image's right) or ``"neurological"``.
        freeze: ``"image_encoder"`` (train MedSeg-R modules + mask decoder), ``"backbone"`` (train only
            MedSeg-R modules) or ``"none"`` (train everything).
    """

    def __init__(self, backbone: Backbone, *, priors: str = "structured", spatial_attention: bool = True,
                 dynamic_conv: bool = True, deformable: bool = True, location_map: bool = True,
                 decoder_prior: str = "both", inject_at: Optional[Sequence[str]] = None, prior_dim: int = 192,
                 bottleneck: int = 64, fusion_depth: int = 2, max_findings: int = 4, text_encoder: str = "hashed",
                 orientation: str = "radiological", freeze: str = "image_encoder") -> None:
        super().__init__()
        if priors not in PRIOR_MODES:
            raise ValueError(f"priors must be one of {PRIOR_MODES}, got {priors!r}")
        if freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {FREEZE_MODES}, got {freeze!r}")
        if prior_dim <= 0 or bottleneck <= 0:
            raise ValueError("prior_dim and bottleneck must be positive")
        self.sam = backbone.sam
        self.backbone_name = backbone.name
        self.img_size = backbone.img_size
        self.family = backbone.family
        self.normalize = backbone.normalize
        self.priors_mode = priors
        modules = tuple(m for m, on in zip(MODULES, (spatial_attention, dynamic_conv, deformable)) if on)
        self.options: Dict[str, Any] = dict(
            priors=priors, spatial_attention=spatial_attention, dynamic_conv=dynamic_conv, deformable=deformable,
            location_map=location_map, decoder_prior=decoder_prior,
            inject_at=None if inject_at is None else list(inject_at), prior_dim=prior_dim, bottleneck=bottleneck,
            fusion_depth=fusion_depth, max_findings=max_findings, text_encoder=text_encoder,
            orientation=orientation, freeze=freeze)
        embed_dim = self.sam.prompt_encoder.embed_dim
        self.rasteriser = LocationRasteriser(orientation=orientation)
        self.use_location_map = location_map and priors == "structured"
        self.perception = nn.ModuleDict()
        self._hooks: List[Any] = []
        self._site_modules: Dict[str, nn.Module] = {}
        self.prior_encoder = self.fusion = self.decoder_prompts = self.text_prompt = None
        if priors == "structured":
            self.prior_encoder = PriorEncoder(dim=prior_dim, text_encoder=build_text_encoder(text_encoder),
                                              max_findings=max_findings)
            self.fusion = PriorFusion(dim=prior_dim, depth=fusion_depth)
            self.decoder_prompts = DecoderPriorPrompts(prior_dim=prior_dim, embed_dim=embed_dim, mode=decoder_prior)
            if self.decoder_prompts.uses_token:
                self._hooks.append(self.decoder_prompts.attach(self.sam.mask_decoder))
            if modules:
                adapter = adapter_for(self.family)
                available = adapter.sites(self.sam.image_encoder)
                for site in resolve_sites(adapter, self.sam.image_encoder, inject_at):
                    module, channels, to_cl = available[site]
                    self.perception[site.replace(".", "_")] = SiteModulator(
                        channels=channels, prior_dim=prior_dim, bottleneck=bottleneck, modules=modules,
                        use_map=location_map)
                    self._site_modules[site] = module
                    self._hooks.append(module.register_forward_hook(_site_hook(site, to_cl)))
        elif priors == "text_token":
            self.text_prompt = TextTokenPrompt(text_encoder=build_text_encoder(text_encoder), embed_dim=embed_dim)
        self.set_freeze(freeze)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_sam(cls, sam: nn.Module, *, normalize: Optional[str] = None, name: str = "custom",
                 **options: Any) -> "MedSegR":
        """Wrap an already built SAM-family model (``segment_anything.modeling.Sam`` or LiteMedSAM)."""
        encoder = getattr(sam, "image_encoder", None)
        if encoder is None or not hasattr(sam, "prompt_encoder") or not hasattr(sam, "mask_decoder"):
            raise ValueError("from_sam needs a model with image_encoder, prompt_encoder and mask_decoder")
        family = "tinyvit" if type(encoder).__name__ == "TinyViT" else "vit"
        if normalize is None:
            normalize = "sam" if hasattr(sam, "pixel_mean") else "unit"
        img_size = int(encoder.img_size)
        return cls(Backbone(sam=sam, name=name, img_size=img_size, family=family, normalize=normalize), **options)

    def set_freeze(self, freeze: str) -> None:
        if freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {FREEZE_MODES}, got {freeze!r}")
        self.options["freeze"] = freeze
        self.requires_grad_(True)
        if freeze in ("image_encoder", "backbone"):
            self.sam.image_encoder.requires_grad_(False)
            self.sam.prompt_encoder.requires_grad_(False)
        if freeze == "backbone":
            self.sam.mask_decoder.requires_grad_(False)
        for module in self.modules():
            if getattr(module, "always_frozen", False):
                module.requires_grad_(False)

    def parameter_summary(self) -> Dict[str, float]:
        """Parameter counts: ``total``, ``trainable``, ``backbone``, ``added`` (by MedSeg-R) and ``added_pct``."""
        total = sum(p.numel() for p in self.parameters())
        backbone = sum(p.numel() for p in self.sam.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"total": total, "trainable": trainable, "backbone": backbone, "added": total - backbone,
                "added_pct": 100.0 * (total - backbone) / backbone}

    def gates(self) -> Dict[str, torch.Tensor]:
        """Every zero-initialised residual gate, by parameter name."""
        return {n: p for n, p in self.named_parameters() if n.rsplit(".", 1)[-1].startswith("gate")
                or ".gate." in n or n.endswith("_gate")}

    # ------------------------------------------------------------------ forward
    def _reports(self, reports: Sequence[ReportLike], batch: int) -> List[Report]:
        if isinstance(reports, (str, Report)):
            reports = [reports]
        if len(reports) != batch:
            raise ValueError(f"got {len(reports)} report(s) for a batch of {batch} image(s)")
        out = []
        for r in reports:
            if isinstance(r, Report):
                out.append(r)
            elif isinstance(r, str):
                out.append(parse_report(r))
            else:
                raise ValueError(f"a report must be a string or a Report, got {type(r).__name__}")
        return out

    def _check_images(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a float tensor [B, 3, H, W], got {shape}")
        if not images.is_floating_point():
            raise ValueError("images must be floating point in [0, 1]")
        if min(images.shape[-2:]) < 1 or images.shape[0] < 1:
            raise ValueError(f"empty image batch {tuple(images.shape)}")

    def encode_priors(self, reports: Sequence[Report]) -> Optional[Dict[str, torch.Tensor]]:
        if self.prior_encoder is None:
            return None
        return self.fusion(self.prior_encoder(reports))

    def forward(self, images: torch.Tensor, reports: Sequence[ReportLike], boxes: Optional[torch.Tensor] = None,
                points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                multimask_output: bool = False) -> Dict[str, Optional[torch.Tensor]]:
        """Segment what each report describes.

        Args:
            images: ``[B, 3, H, W]`` float intensities in ``[0, 1]`` (any H, W; resized like SAM).
            reports: B strings or :class:`Report` objects.
            boxes: optional ``[B, 4]`` boxes ``(x0, y0, x1, y1)`` in input pixels.
            points: optional ``(coords [B, N, 2] in input pixels (x, y), labels [B, N])``.

        Returns:
            ``masks`` logits ``[B, 1, H, W]`` (or ``[B, 3, H, W]`` with ``multimask_output``), ``iou``
            ``[B, 1]``, ``low_res_masks``, ``attention`` ``[B, 1, H, W]`` (location attention of the first
            modulated site, or ``None``) and ``location_map`` (rasterised prior at the embedding grid).
        """
        self._check_images(images)
        B, _, H, W = images.shape
        parsed = self._reports(reports, B)
        frame = Frame(height=H, width=W, size=self.img_size)
        x = to_canvas(images, frame, normalize=self.normalize, pixel_mean=getattr(self.sam, "pixel_mean", None),
                      pixel_std=getattr(self.sam, "pixel_std", None))
        priors = self.encode_priors(parsed)
        render = None
        if self.use_location_map:
            def render(size, _reports=parsed, _content=[frame.content] * B, _device=images.device):
                return self.rasteriser.render(_reports, size=size, content=_content, device=_device)
        embeddings = self.encode_image(x, priors, render)
        ctx_map = render(tuple(embeddings.shape[-2:])) if render is not None else None
        text_tokens = self.text_prompt([r.text for r in parsed]) if self.text_prompt is not None else None
        low_res, iou = self._decode(embeddings, text_tokens, priors, ctx_map, frame, boxes, points, multimask_output)
        masks = from_canvas(low_res, frame)
        attention = None
        for modulator in self.perception.values():
            if getattr(modulator, "last_attention", None) is not None and "spatial_attention" in modulator.blocks:
                attention = torch.nn.functional.interpolate(
                    from_canvas(modulator.last_attention, frame), size=(H, W), mode="bilinear", align_corners=False)
                break
        return {"masks": masks, "iou": iou, "low_res_masks": low_res, "attention": attention,
                "location_map": ctx_map}

    def encode_image(self, canvas: torch.Tensor, priors: Optional[Dict[str, torch.Tensor]], render=None) -> torch.Tensor:
        """The backbone's image encoder on a prepared canvas ``[B, 3, S, S]``, modulated by ``priors`` at the
        injection sites; ``render(size) -> [B, 1, h, w]`` supplies location maps (or ``None``)."""
        token = _ACTIVE.set(_Context(self._site_modules, self.perception, priors, render)) if priors is not None \
            and len(self.perception) else None
        try:
            return self.sam.image_encoder(canvas)
        finally:
            if token is not None:
                _ACTIVE.reset(token)

    def _decode(self, embeddings, text_tokens, priors, location_map, frame, boxes, points, multimask_output):
        sam = self.sam
        pe = sam.prompt_encoder.get_dense_pe()
        dense_prior = None
        if priors is not None and self.decoder_prompts.uses_dense:
            grid = location_map if location_map is not None else torch.full(
                (embeddings.shape[0], 1, *embeddings.shape[-2:]), 0.5, device=embeddings.device)
            dense_prior = self.decoder_prompts.dense(priors, grid)
        shift = self.decoder_prompts.token_shift(priors) if priors is not None and self.decoder_prompts.uses_token \
            else None
        masks, ious = [], []
        for b in range(embeddings.shape[0]):
            box = scale_boxes(boxes[b:b + 1].to(embeddings), frame) if boxes is not None else None
            pts = None
            if points is not None:
                coords, labels = points
                pts = (coords[b:b + 1].to(embeddings) * frame.scale, labels[b:b + 1].to(embeddings.device))
            sparse, dense = sam.prompt_encoder(points=pts, boxes=box, masks=None)
            if dense_prior is not None:
                dense = dense + dense_prior[b:b + 1]
            if text_tokens is not None:
                sparse = torch.cat([sparse, text_tokens[b:b + 1].to(sparse.dtype)], dim=1)

            def run(sp):
                with DecoderPriorPrompts.shifting(None if shift is None else shift[b:b + 1]):
                    return sam.mask_decoder(image_embeddings=embeddings[b:b + 1], image_pe=pe,
                                            sparse_prompt_embeddings=sp, dense_prompt_embeddings=dense,
                                            multimask_output=multimask_output)

            low, iou = run(sparse)
            if priors is not None and self.decoder_prompts.uses_extra_token:
                extra = self.decoder_prompts.extra_tokens(priors, b).to(sparse.dtype)
                low_t, iou_t = run(torch.cat([sparse, extra], dim=1))
                g = self.decoder_prompts.extra_token_gate
                low, iou = low + g * (low_t - low), iou + g * (iou_t - iou)
            masks.append(low)
            ious.append(iou)
        return torch.cat(masks), torch.cat(ious)

    # ------------------------------------------------------------------ single image
    @torch.no_grad()
    def predict(self, image: np.ndarray, report: ReportLike, *, box: Optional[Sequence[float]] = None,
                threshold: float = 0.0) -> np.ndarray:
        """Segment one image: ``image`` ``[H, W]`` or ``[H, W, C]`` (any dtype) -> bool mask ``[H, W]``."""
        tensor = image_to_tensor(image).to(next(self.parameters()).device)
        was_training = self.training
        self.eval()
        try:
            boxes = torch.tensor([list(box)], dtype=torch.float32) if box is not None else None
            out = self(tensor, [report], boxes=boxes)
        finally:
            self.train(was_training)
        return (out["masks"][0, 0] > threshold).cpu().numpy()


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """An image array -> ``[1, 3, H, W]`` float in ``[0, 1]`` (uint8 / 255, others min-max scaled)."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., :3] if arr.shape[-1] >= 3 else np.repeat(arr, 3, axis=-1)
    elif arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    else:
        raise ValueError(f"image must be [H, W] or [H, W, C] with C in 1, 3, 4; got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"empty image of shape {arr.shape}")
    if arr.dtype == np.uint8:
        data = arr.astype(np.float32) / 255.0
    else:
        data = arr.astype(np.float32)
        if not np.isfinite(data).all():
            raise ValueError("image contains NaN or infinite values")
        lo, hi = float(data.min()), float(data.max())
        data = (data - lo) / (hi - lo) if hi > lo else np.zeros_like(data)
    return torch.from_numpy(np.ascontiguousarray(data)).permute(2, 0, 1).unsqueeze(0)


def build_model(backbone: str = "litemedsam", checkpoint: Optional[str] = None, *, img_size: Optional[int] = None,
                pretrained: bool = True, **options: Any) -> MedSegR:
    """Build MedSeg-R on a registered backbone.

    Args:
        backbone: a name from :func:`medseg_r.list_backbones` (default ``litemedsam``, the pretrained one).
        checkpoint: either a MedSeg-R checkpoint (saved by :func:`medseg_r.checkpoint.save_model`) or the
            backbone's own weights (SAM / MedSAM / LiteMedSAM layout). Mismatched keys raise a clear error.
        img_size: encoder input size (SAM ViTs: any multiple of 16).
        pretrained: load weights that ship with the backbone (``litemedsam``) when no checkpoint is given.
        **options: see :class:`MedSegR`.
    """
    from ..checkpoint import is_medseg_checkpoint, load_model

    if checkpoint is not None and is_medseg_checkpoint(checkpoint):
        return load_model(checkpoint, expect_backbone=backbone, **options)
    bb = build_backbone(backbone, img_size=img_size, checkpoint=checkpoint, pretrained=pretrained)
    return MedSegR(bb, **options)
