"""MedSegR: a SAM-family backbone steered by report priors (cognitive stage -> perceptual stage)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from ..backbones import Backbone
from ..backbones.weights import refresh_eval_caches
from ..cognition import LocationRasteriser, PriorEncoder, PriorFusion, build_text_encoder
from ..io.images import image_to_tensor
from ..perception import SiteModulator
from ..perception.injection import adapter_for, detect_family, resolve_sites, site_key
from ..report import Report
from .box_prompts import BoxHead
from .conditioning import prior_tokens
from .decoder_prompts import DecoderPriorPrompts, TextTokenPrompt
from .decoding import decode, decode_encoded
from .encoding import Encoded, encode, encode_inputs
from .geometry import Frame
from .inputs import as_reports, check_box, check_threshold
from .localiser import ImageLocaliser
from .options import FREEZE_MODES, PRIOR_MODES, ModelOptions

ReportLike = Union[str, Report]
Priors = Dict[str, torch.Tensor]
Render = Callable[[Tuple[int, int]], torch.Tensor]  # grid size -> location maps [B, 1, h, w]
__all__ = ["FREEZE_MODES", "MedSegR", "PRIOR_MODES"]
LOCALISER_SIZE = 256  # the image localiser's canvas side (box_input="image"; smaller inputs: theirs)


class MedSegR(nn.Module):
    """Report-guided segmentation on a SAM-family model.

    The wrapped SAM is never hooked or changed: the encoder's own submodules are run through an
    adapter (:mod:`medseg_r.perception.injection`) with each call's priors passed explicitly, so
    :meth:`unwrap` hands back the untouched SAM, a SAM may be wrapped any number of times (the
    models share its modules), and one model may serve several threads at once. A new model is in eval mode (``train()`` to train).

    Args:
        backbone: a :class:`~medseg_r.backbones.Backbone` (:func:`build_model`, :meth:`from_sam`).
        **options: the fields of :class:`~medseg_r.model.options.ModelOptions`.
    """

    def __init__(self, backbone: Backbone, **options: Any) -> None:
        if not isinstance(backbone, Backbone):
            raise TypeError(f"MedSegR takes a Backbone (medseg_r.backbones.build_backbone), got "
                            f"{type(backbone).__name__}: wrap a SAM module with MedSegR.from_sam(sam), "
                            f"or build one by name with medseg_r.build_model(name)")
        super().__init__()
        cfg = ModelOptions.from_dict(options)
        self.config = cfg
        self.sam = backbone.sam
        self.backbone_name, self.img_size = backbone.name, backbone.img_size
        self.family, self.normalize = backbone.family, backbone.normalize
        self.adapter = adapter_for(backbone.family)
        encoder = self.sam.image_encoder
        if not self.adapter.matches(encoder):
            raise ValueError(f"backbone family {backbone.family!r} does not fit a "
                             f"{type(encoder).__name__} encoder")
        self.detach_iou_input = False  # set by the training task (its IoU loss trains the head)
        self.feature_cache = None  # a FeatureCache, used while the encoder is frozen
        embed_dim = self.sam.prompt_encoder.embed_dim
        self.rasteriser = LocationRasteriser(orientation=cfg.orientation)
        self.use_location_map = cfg.location_map and cfg.priors == "structured"
        self.perception = nn.ModuleDict()
        self.prior_encoder = self.fusion = self.decoder_prompts = self.text_prompt = None
        self.box_head = None
        if cfg.report_box:
            head_modules = None
            if cfg.uses_prior_modules and cfg.modules:  # the head's features are modulated too
                # "fine": at the embedding's own grid, whatever module_grid says (that is its point)
                grid = (cfg.module_grid if cfg.box_modulation == "coarse" or cfg.box_input == "image"
                        else self.img_size)
                head_modules = SiteModulator(channels=cfg.box_hidden, prior_dim=cfg.prior_dim,
                                             bottleneck=cfg.bottleneck, modules=cfg.modules,
                                             use_map=cfg.location_map, max_grid=grid,
                                             positional_keys=cfg.positional_keys)
            if cfg.box_input == "image":
                if min(self.img_size, LOCALISER_SIZE) % 16:
                    raise ValueError(f"box_input='image' needs img_size of a multiple of 16 below "
                                     f"{LOCALISER_SIZE} (its image localiser works at img_size, at "
                                     f"most {LOCALISER_SIZE}), got img_size {self.img_size}")
                match = cfg.prior_dim if cfg.box_match and cfg.uses_prior_modules else None
                self.box_head = ImageLocaliser(hidden=cfg.box_hidden, modulator=head_modules,
                                               work_size=min(self.img_size, LOCALISER_SIZE),
                                               match_prior_dim=match,
                                               attributes=cfg.attribute_head,
                                               positional_keys=cfg.positional_keys)
            else:
                self.box_head = BoxHead(channels=embed_dim, hidden=cfg.box_hidden,
                                        stem=cfg.box_stem, modulator=head_modules,
                                        modulate_at=cfg.box_modulation)
        if cfg.uses_prior_modules:
            self.prior_encoder = PriorEncoder(dim=cfg.prior_dim, max_findings=cfg.max_findings,
                                              text_encoder=build_text_encoder(cfg.text_encoder))
            self.fusion = PriorFusion(dim=cfg.prior_dim, depth=cfg.fusion_depth)
            self.decoder_prompts = DecoderPriorPrompts(prior_dim=cfg.prior_dim, embed_dim=embed_dim,
                                                       mode=cfg.decoder_prior)
            channels = self.adapter.sites(encoder)
            sites = resolve_sites(self.adapter, encoder, cfg.inject_at) if cfg.modules else []
            for site in sites:
                self.perception[site_key(site)] = SiteModulator(
                    channels=channels[site], prior_dim=cfg.prior_dim, bottleneck=cfg.bottleneck,
                    modules=cfg.modules, use_map=cfg.location_map, max_grid=cfg.module_grid,
                    positional_keys=cfg.positional_keys)
        elif cfg.priors == "text_token":
            self.text_prompt = TextTokenPrompt(text_encoder=build_text_encoder(cfg.text_encoder),
                                               embed_dim=embed_dim)
        self._sam_requires_grad = {n: p.requires_grad for n, p in self.sam.named_parameters()}
        self.set_freeze(cfg.freeze)
        self.eval()
        # loaded weights must reach what modules in eval mode cached from the ones they had
        self.register_load_state_dict_post_hook(refresh_eval_caches)

    @property
    def options(self) -> Dict[str, Any]:
        """The options as plain values (what checkpoints store and :func:`build_model` takes)."""
        return self.config.to_dict()

    # ------------------------------------------------------------------ wrapping and training
    @classmethod
    def from_sam(cls, sam: nn.Module, *, normalize: Optional[str] = None, name: str = "custom",
                 **options: Any) -> "MedSegR":
        """Wrap a built SAM-family model (``segment_anything.modeling.Sam`` or LiteMedSAM). The SAM
        is not changed (see :meth:`unwrap`); wrapping it again gives another model on the same SAM
        modules (shared weights, train/eval state and ``requires_grad`` flags: wrap
        ``copy.deepcopy(sam)`` for an independent one).

        ``normalize``: how images reach its encoder, ``"sam"`` (0..255 pixels, SAM's mean and std)
        or ``"unit"`` ([0, 1] intensities); left out, ``"sam"`` for a model with SAM's
        ``pixel_mean``, else ``"unit"``. MedSAM is a ``Sam`` trained on [0, 1] images: wrap it with
        ``normalize="unit"`` (``build_model("medsam_vit_b")`` does)."""
        if isinstance(sam, Backbone):
            raise TypeError("from_sam takes the SAM module itself; a Backbone goes to MedSegR(backbone)")
        encoder = getattr(sam, "image_encoder", None)
        if encoder is None or not all(hasattr(sam, a) for a in ("prompt_encoder", "mask_decoder")):
            raise ValueError("from_sam needs a model with image_encoder, prompt_encoder and "
                             "mask_decoder")
        if normalize is None:
            normalize = "sam" if hasattr(sam, "pixel_mean") else "unit"
        if normalize not in ("sam", "unit"):
            raise ValueError(f"normalize must be 'sam' or 'unit', got {normalize!r}")
        if normalize == "sam" and not hasattr(sam, "pixel_mean"):
            raise ValueError("normalize='sam' needs the model's pixel_mean and pixel_std (SAM's "
                             "Sam has them); this model has none: use normalize='unit'")
        return cls(Backbone(sam=sam, name=name, img_size=int(encoder.img_size),
                            family=detect_family(encoder), normalize=normalize), **options)

    def unwrap(self) -> nn.Module:
        """The wrapped SAM as it was given: no hook was ever added and its keys are its own; only
        the ``requires_grad`` flags :meth:`set_freeze` changed are put back (call ``set_freeze``
        again to go on training this model)."""
        for name, p in self.sam.named_parameters():
            p.requires_grad_(self._sam_requires_grad.get(name, p.requires_grad))
        return self.sam

    def set_freeze(self, freeze: str) -> None:
        """Which parameters train: ``freeze`` of :class:`~medseg_r.model.options.ModelOptions`."""
        self.config = self.config.replace(freeze=freeze)
        self.requires_grad_(True)
        if freeze in ("image_encoder", "backbone"):
            self.sam.image_encoder.requires_grad_(False)
            self.sam.prompt_encoder.requires_grad_(False)
        if freeze == "backbone":
            self.sam.mask_decoder.requires_grad_(False)
        for module in self.modules():
            if getattr(module, "always_frozen", False):
                module.requires_grad_(False)

    def train(self, mode: bool = True) -> "MedSegR":
        """As ``nn.Module.train``, except that a frozen image encoder stays in eval mode (the batch
        norms of LiteMedSAM's TinyViT keep their pretrained statistics instead of drifting)."""
        super().train(mode)
        if mode and self.config.freeze in ("image_encoder", "backbone"):
            self.sam.image_encoder.eval()
        return self

    def parameter_summary(self) -> Dict[str, float]:
        """Parameter counts: ``total``, ``trainable``, ``backbone``, ``added`` (by MedSeg-R) and
        ``added_pct`` (of the backbone)."""
        total = sum(p.numel() for p in self.parameters())
        backbone = sum(p.numel() for p in self.sam.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"total": total, "trainable": trainable, "backbone": backbone,
                "added": total - backbone, "added_pct": 100.0 * (total - backbone) / backbone}

    def gates(self) -> Dict[str, torch.Tensor]:
        """Every zero-initialised gate, by parameter name, as the modules owning them declare."""
        out: Dict[str, torch.Tensor] = {}
        for prefix, module in self.named_modules():
            if module is not self and hasattr(module, "gate_parameters"):
                out.update({f"{prefix}.{n}": p for n, p in module.gate_parameters().items()})
        return out

    # ------------------------------------------------------------------ forward
    def encode_priors(self, reports: Sequence[Report]) -> Optional[Priors]:
        """Fused prior tokens of ``reports`` from the model's prior source (see
        :mod:`medseg_r.model.conditioning`), or ``None`` for a bare baseline."""
        return prior_tokens(self, reports)

    def forward(self, images: torch.Tensor, reports: Sequence[ReportLike],
                boxes: Optional[torch.Tensor] = None,
                points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                multimask_output: bool = False, *,
                decode_masks: bool = True) -> Dict[str, Optional[torch.Tensor]]:
        """Segment what each report describes: :meth:`encode_inputs`, then :meth:`decode_encoded`.

        Args:
            images: ``[B, 3, H, W]`` float intensities in ``[0, 1]`` (any H, W; resized like SAM).
            reports: B strings or :class:`Report` objects.
            boxes: optional ``[B, 4]`` boxes ``(x0, y0, x1, y1)`` in input pixels.
            points: optional ``(coords [B, N, 2] in input pixels (x, y), labels [B, N])``.
            decode_masks: ``False`` stops after the encoder and the box head (training the head;
                a head that reads the image alone, ``box_input="image"``, runs without the
                encoder).

        Returns:
            ``masks`` logits ``[B, 1, H, W]`` (``[B, 3, H, W]`` with ``multimask_output``),
            ``iou`` ``[B, 1]``, ``low_res_masks``, ``attention`` ``[B, 1, H, W]`` (location
            attention of the first modulated site, or ``None``), ``location_map`` (the prior at
            the embedding grid) and, with ``report_box``, ``box_map`` (the head's logits: at the
            embedding grid, or at a quarter of the localiser's working size with
            ``box_input="image"``) and ``boxes`` (per image ``[n, 4]`` predicted boxes in input pixels).
        """
        encoded = self.encode_inputs(images, reports, need_embedding=decode_masks)
        out = encoded.outputs()
        if decode_masks:
            out.update(self.decode_encoded(encoded, boxes=boxes, points=points,
                                           multimask_output=multimask_output))
        return out

    def encode_inputs(self, images: torch.Tensor, reports: Sequence[ReportLike], *,
                      feature_cache=None, need_embedding: bool = True) -> Encoded:
        """Everything before the decoder (:func:`medseg_r.model.encoding.encode_inputs`); keep it to
        decode other box or point prompts without running the encoder again."""
        return encode_inputs(self, images, reports, cache=feature_cache,
                             need_embedding=need_embedding)

    def decode_encoded(self, encoded: Encoded, *, boxes: Optional[torch.Tensor] = None,
                       points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                       multimask_output: bool = False) -> Dict[str, torch.Tensor]:
        """The decoder on an :class:`~medseg_r.model.encoding.Encoded` (prompts in input pixels)."""
        return decode_encoded(self, encoded, boxes=boxes, points=points,
                              multimask_output=multimask_output)

    def encode_image(self, canvas: torch.Tensor, priors: Optional[Priors],
                     render: Optional[Render] = None
                     ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The image encoder on a prepared canvas ``[B, 3, S, S]``, modulated by ``priors`` at the
        injection sites (:func:`medseg_r.model.encoding.encode`): the embedding ``[B, E, s, s]``
        and the first site's spatial attention ``[B, 1, h, w]`` (or ``None``)."""
        return encode(self, canvas, priors, render)

    def decode(self, embeddings: torch.Tensor, *, frame: Frame, priors: Optional[Priors] = None,
               location_map: Optional[torch.Tensor] = None,
               text_tokens: Optional[torch.Tensor] = None, boxes: Optional[torch.Tensor] = None,
               points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
               multimask_output: bool = False,
               box_prompts: Optional[List[torch.Tensor]] = None
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Image embeddings -> low-resolution logits ``[B, M, s, s]`` and IoU ``[B, M]``, with this
        model's decoder-side priors (arguments: :func:`medseg_r.model.decoding.decode`)."""
        return decode(self.sam, embeddings, frame=frame, prompts=self.decoder_prompts,
                      priors=priors, location_map=location_map, text_tokens=text_tokens,
                      boxes=boxes, points=points, multimask_output=multimask_output,
                      detach_iou_input=self.detach_iou_input, box_prompts=box_prompts,
                      box_fill=0.0 if self.training else self.config.box_fill)

    @torch.no_grad()
    def predict(self, image: np.ndarray, report: ReportLike, *,
                box: Optional[Sequence[float]] = None, threshold: float = 0.0) -> np.ndarray:
        """One image ``[H, W]`` or ``[H, W, C]`` (any dtype) -> bool mask ``[H, W]``. The model must
        be in eval mode (a new or loaded model is): ``predict`` never switches modes, so several
        threads can predict with one model at once.

        The image is converted as the command line converts a file
        (:func:`~medseg_r.io.images.to_unit_float`): uint8 divided by 255, other integers (12- or
        16-bit) stretched from their 0.5th to their 99.5th percentile, floats (in ``[0, 1]`` too)
        min-max scaled to ``[0, 1]``. To give intensities unchanged, call the
        model (``forward``) with a ``[1, 3, H, W]`` tensor in ``[0, 1]``.

        ``threshold`` is a logit (0: probability 0.5; the command line's ``--threshold`` is a
        probability). A report whose findings are all negated, or that states a normal study,
        gives an empty mask without running the model (a ``box`` too, and whatever the model
        reads: ``priors="none"`` alike), as ``medseg-r predict`` and
        :class:`~medseg_r.inference.Predictor` do; ``forward`` (and so ``evaluate``) always runs
        the model."""
        if self.training:
            raise ValueError("predict needs the model in eval mode: call model.eval() first")
        check_threshold(threshold)
        tensor = image_to_tensor(image).to(next(self.parameters()).device)
        check_box(box, tuple(tensor.shape[-2:]))
        (parsed,) = as_reports([report], 1)
        if parsed.all_negative:
            return np.zeros(tensor.shape[-2:], dtype=bool)
        report = parsed
        boxes = None if box is None else torch.tensor([list(box)], dtype=torch.float32)
        out = self(tensor, [report], boxes=boxes)
        return (out["masks"][0, 0] > threshold).cpu().numpy()
