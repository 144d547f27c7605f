"""The options of a MedSeg-R model, checked in one place (what ``build_model(..., **options)``
takes)."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional, Tuple

import numpy as np

PRIOR_MODES = ("structured", "none", "text_token")
FREEZE_MODES = ("image_encoder", "backbone", "none")
ORIENTATIONS = ("radiological", "neurological")
BOX_MODULATION = ("coarse", "fine")
BOX_INPUTS = ("embedding", "image")
# how the priors reach the mask decoder (medseg_r.model.decoder_prompts, which imports torch)
DECODER_MODES = ("both", "dense", "token", "extra_token", "none")
# box_fill's default: chosen on the phantom benchmark's validation split (docs/results/amd_epyc_avx512/
# box_fill_val.md)
BOX_FILL_DEFAULT = 0.45


@dataclass(frozen=True)
class ModelOptions:
    """Every option of :class:`~medseg_r.model.MedSegR`, with its default.

    Attributes:
        priors: ``"structured"`` (MedSeg-R), ``"none"`` (the report ignored) or ``"text_token"``
            (naive baseline: one embedding of the whole report text; with ``matched_capacity``
            it feeds MedSeg-R's modules, without it it is one extra sparse prompt token).
        spatial_attention, dynamic_conv, deformable: each perceptual module on or off (location,
            texture, shape).
        location_map: feed the rasterised location map to spatial attention, the dense prompt and
            the image localiser's per-finding box choice (off: a flat map; the zone then reaches
            the model only through the location token).
        positional_keys: the keys that match the priors with the cells (spatial attention's, and
            the image localiser's finding match, ``box_match``) also carry each cell's position
            (a linear map of Fourier features of its coordinates), so that a location token can
            point at a region by itself, not only through the rasterised map (off: the keys are a
            1x1 projection of the features alone).
        decoder_prior: how the priors reach the mask decoder: ``both`` (dense + token), ``dense``,
            ``token``, ``extra_token`` or ``none`` (see :mod:`medseg_r.model.decoder_prompts`).
        inject_at: encoder sites to modulate; ``None``: the adapter's early default (patch
            embedding + first two blocks for ViT, the first two stages for TinyViT); ``[]``: none
            (then ``forward``'s ``attention`` is ``None``, as with ``spatial_attention`` off).
        prior_dim: prior token width. bottleneck: working width of the perceptual modules.
        module_grid: the perceptual modules work on at most this many positions per side (features
            average-pooled, results upsampled), which bounds their cost at fine sites; the box
            head's ``"fine"`` site (``box_modulation``) is exempt: it runs at the full embedding grid.
        fusion_depth: transformer layers of the cross-attribute fusion. max_findings: per report.
        text_encoder: ``"hashed"`` (no weights needed) or a local HF / sentence-transformers folder.
        orientation: ``"radiological"`` (patient's left on the image's right) or ``"neurological"``.
        freeze: ``"image_encoder"`` (train MedSeg-R modules + mask decoder), ``"backbone"``
            (MedSeg-R modules only) or ``"none"`` (everything).
        activation_checkpointing: recompute encoder stages in the backward pass (less GPU memory).
        matched_capacity: the baselines (``none``, ``text_token``) get MedSeg-R's own modules, fed a
            constant (``none``) or one embedding of the whole report text (``text_token``), so every
            model of a comparison has the same parameters; ``False``: the bare baselines of format-1
            checkpoints (no added modules; the sentence as one extra sparse prompt token).
        report_box: a box head predicts where the described lesions are (from the modulated
            image embedding, or from the image itself with ``box_input="image"``); SAM's decoder is prompted with one box per lesion (see
            :mod:`medseg_r.model.box_prompts`). MedSeg-R boxes each positive finding at the
            head's peak within the finding's location prior; a model that cannot read the
            findings boxes every region whose ``extent`` passes ``box_threshold``.
            ``box_region``: a finding's box is the extent region above this fraction of the
            local peak; ``box_hedge`` (0: off): MedSeg-R also boxes a finding's further
            candidates that score at least this fraction of its own peak (an undecided choice
            marks both: :func:`~medseg_r.model.box_prompts.boxes_from_map`; 0.7 was chosen on
            the phantom benchmark's validation split, Dice 0.581 at 0 -> 0.590, of 0-0.9; it
            changes nothing in training). ``box_flip``: at inference an image localiser
            (``box_input="image"``) also reads the mirrored image with the mirrored report and
            its maps are the mean of the two readings (test-time flip:
            :func:`~medseg_r.model.encoding.flip_averaged_map`; chosen on the phantom benchmark's
            validation split, where it raised MedSeg-R's Dice in each of three seeds; training
            steps are unchanged, the validation during training, which picks ``best.ckpt``, uses
            it; a head on the SAM embedding reads once, as its mirror would need a second
            encoder pass); ``box_fill`` (0: off): at inference, when the decoder's mask for a
            predicted box fills less than this share of the box, the output of SAM's four (the
            single-mask one and the three multimask ones) that fills the box most is taken
            instead (a box prompt is drawn around its lesion; a frozen box-trained decoder
            under-segments faint, large lesions inside a right box:
            :func:`~medseg_r.model.decoding.fullest_outputs`); ``box_hidden``, ``box_stem``: the head's width and the
            channels of its image stem (0: none). ``box_modulation``: where the priors modulate
            the head's features: ``"coarse"`` (at half the embedding grid, before the context
            blocks) or ``"fine"`` (at the full grid, after the image stem's detail is added: 4 px
            cells at 256 px, where a 15-25 px lesion's outline spans several cells). ``box_input``: what
            the head reads: ``"embedding"`` (the modulated SAM embedding, an image stem and the
            location attention: :class:`~medseg_r.model.box_prompts.BoxHead`) or ``"image"``
            (the image alone, through the head's own small network, so that training it needs no
            encoder pass: :class:`~medseg_r.model.localiser.ImageLocaliser`; its priors act at
            stride 8 and ``box_modulation`` does not apply). ``box_match``: the image localiser
            also matches each positive finding's fused tokens with every cell
            (:class:`~medseg_r.model.localiser.FindingMatch`), a direct per-finding say in
            ``where``. ``attribute_head``: the image localiser also predicts the texture and
            shape of the lesion at each cell, trained on the lesion labels a data set records
            (:mod:`medseg_r.model.attributes`); MedSeg-R weighs each finding's candidates by how
            well they fit its parsed codes (the baselines carry the same head and loss but cannot
            use it to choose).
    """

    priors: str = "structured"
    spatial_attention: bool = True
    dynamic_conv: bool = True
    deformable: bool = True
    location_map: bool = True
    positional_keys: bool = False
    decoder_prior: str = "both"
    inject_at: Optional[Tuple[str, ...]] = None
    prior_dim: int = 192
    bottleneck: int = 64
    module_grid: int = 64
    fusion_depth: int = 2
    max_findings: int = 4
    text_encoder: str = "hashed"
    orientation: str = "radiological"
    freeze: str = "image_encoder"
    activation_checkpointing: bool = False
    matched_capacity: bool = True
    report_box: bool = False
    box_threshold: float = 0.3
    box_region: float = 0.5
    box_hedge: float = 0.7
    box_flip: bool = True
    box_fill: float = BOX_FILL_DEFAULT
    box_hidden: int = 48
    box_stem: int = 32
    box_modulation: str = "coarse"
    box_input: str = "embedding"
    box_match: bool = False
    attribute_head: bool = False

    def __post_init__(self) -> None:
        self._check_types()
        if self.fusion_depth < 1 or self.max_findings < 1:
            raise ValueError(f"fusion_depth and max_findings must be >= 1, got "
                             f"{self.fusion_depth} and {self.max_findings}")
        if self.priors not in PRIOR_MODES:
            raise ValueError(f"priors must be one of {PRIOR_MODES}, got {self.priors!r}")
        if self.freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {FREEZE_MODES}, got {self.freeze!r}")
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {self.orientation!r}")
        for name in ("prior_dim", "bottleneck", "module_grid"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.uses_prior_modules and self.prior_dim % 4:
            raise ValueError(f"prior_dim must be a multiple of 4 (the prior fusion's 4 attention "
                             f"heads), got {self.prior_dim}")
        if self.uses_prior_modules and self.deformable and self.bottleneck % 4:
            raise ValueError(f"bottleneck must be a multiple of 4 (deformable sampling's 4 offset "
                             f"groups), got {self.bottleneck}")
        if not 0.0 < self.box_threshold < 1.0:
            raise ValueError(f"box_threshold must be in (0, 1), got {self.box_threshold}")
        if not 0.0 <= self.box_region < 1.0:
            raise ValueError(f"box_region must be in [0, 1), got {self.box_region}")
        if not 0.0 <= self.box_hedge <= 1.0:
            raise ValueError(f"box_hedge must be in [0, 1], got {self.box_hedge}")
        if not 0.0 <= self.box_fill < 1.0:
            raise ValueError(f"box_fill must be in [0, 1), got {self.box_fill}")
        if self.box_modulation not in BOX_MODULATION:
            raise ValueError(f"box_modulation must be one of {BOX_MODULATION}, "
                             f"got {self.box_modulation!r}")
        if self.decoder_prior not in DECODER_MODES:
            raise ValueError(f"decoder_prior must be one of {DECODER_MODES}, got {self.decoder_prior!r}")
        if self.inject_at is not None and len(set(self.inject_at)) != len(self.inject_at):
            raise ValueError(f"inject_at names a site twice: {list(self.inject_at)}")
        if not self.report_box and (self.box_match or self.box_input != "embedding"):
            raise ValueError("box_match and box_input='image' need report_box=True (they choose how "
                             "its box head works; without it there is none)")
        if self.box_input not in BOX_INPUTS:
            raise ValueError(f"box_input must be one of {BOX_INPUTS}, got {self.box_input!r}")
        if self.positional_keys and not (self.spatial_attention or self.box_match):
            raise ValueError("positional_keys needs spatial_attention or box_match (the keys it "
                             "gives positions)")
        if self.box_match and self.box_input != "image":
            raise ValueError("box_match needs box_input='image'")
        if self.attribute_head and not (self.report_box and self.box_input == "image"):
            raise ValueError("attribute_head needs report_box=True and box_input='image'")
        if self.box_hidden < 1:
            raise ValueError(f"box_hidden must be >= 1, got {self.box_hidden}")
        if self.box_stem < 0:
            raise ValueError(f"box_stem must be >= 0, got {self.box_stem}")
        if self.inject_at is not None:
            object.__setattr__(self, "inject_at", tuple(self.inject_at))

    def _check_types(self) -> None:
        """Each option of the type of its default (a config file's ``prior_dim: "192"`` or
        ``spatial_attention: "no"`` is an error naming the option, not a crash later)."""
        for f in fields(self):
            value, default = getattr(self, f.name), f.default
            if f.name == "inject_at":
                if value is not None and not (isinstance(value, (list, tuple)) and all(
                        isinstance(v, str) for v in value)):
                    raise ValueError(f"inject_at must be a list of site names (e.g. ['neck']), "
                                     f"got {value!r}")
                continue
            if isinstance(default, bool):
                ok = isinstance(value, (bool, np.bool_))
            elif isinstance(default, int):  # numpy's integers too (numbers.Integral)
                ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
            elif isinstance(default, float):
                ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
                    and math.isfinite(value)
            else:
                ok = isinstance(value, type(default))
            if not ok:
                kind = {"bool": "true or false", "int": "a whole number", "float": "a finite number",
                        "str": "text"}.get(type(default).__name__, type(default).__name__)
                raise ValueError(f"model option {f.name} must be {kind} (like its default "
                                 f"{default!r}), got {value!r}")

    @classmethod
    def from_dict(cls, options: Dict[str, Any]) -> "ModelOptions":
        """Options from keyword arguments or a checkpoint; an unknown name is a clear
        ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown}; known: "
                             f"{', '.join(sorted(known))}")
        return cls(**options)

    def replace(self, **changes: Any) -> "ModelOptions":
        """These options with ``changes`` (checked as new options are)."""
        return ModelOptions.from_dict({**asdict(self), **changes})

    @property
    def modules(self) -> Tuple[str, ...]:
        """The enabled perceptual modules, in :data:`medseg_r.perception.MODULES` order."""
        flags = (self.spatial_attention, self.dynamic_conv, self.deformable)
        names = ("spatial_attention", "dynamic_conv", "deformable")
        return tuple(m for m, on in zip(names, flags) if on)

    @property
    def uses_prior_modules(self) -> bool:
        """Whether the model has MedSeg-R's prior modules (MedSeg-R itself, or a matched
        baseline)."""
        return self.priors == "structured" or self.matched_capacity

    def to_dict(self) -> Dict[str, Any]:
        """Plain values for checkpoints and :func:`~medseg_r.model.build_model` (lists, not
        tuples)."""
        out = asdict(self)
        out["inject_at"] = None if self.inject_at is None else list(self.inject_at)
        return out
