"""The models a comparison trains and scores the same way (the demo and the accuracy benchmark).

Every row of :data:`ROWS` is one model: a backbone, MedSeg-R options, a training objective and learning
rates. The LiteMedSAM rows share the pretrained, frozen encoder; its output up to the first injection
site is computed once per image into one feature cache that every row (and the evaluation) reads.
The main rows (MedSeg-R, its baselines and its ablations) place their box prompts with an image
localiser (:mod:`medseg_r.model.localiser`) that trains without the encoder.
MedSeg-R and its two baselines are the same architecture with the same parameters
(``matched_capacity``): they differ only in what they read (the parsed report, the raw report text,
nothing). ``medseg_r_match`` (MedSeg-R with the per-finding match, ``box_match``) is a variant whose
extra mechanism the baselines were not given. ``medseg_r_attr``, ``none_attr`` and ``text_token_attr``
are again one architecture and loss: the match plus an attribute head trained on the lesions' texture
and shape labels, which only MedSeg-R can use to choose (it reads the codes).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from .train import TrainConfig, train

# Pretrained LiteMedSAM, frozen; the report's priors steer an image localiser (its own small network
# on the image, medseg_r.model.localiser) whose boxes prompt the pretrained decoder. Training it needs
# no encoder pass, so these rows also train on the benchmark's extra training cases.
IMAGE = {"inject_at": [], "report_box": True, "box_input": "image", "freeze": "backbone",
         "decoder_prior": "none", "module_grid": 32}
# The image localiser with the per-finding match and the texture/shape attribute head
# (medseg_r.model.attributes), trained on every lesion's labels; the same for the three models
ATTR = {**IMAGE, "box_match": True, "attribute_head": True}
# Pretrained LiteMedSAM, frozen, modulated at the image embedding (late injection: the embedding is
# cacheable), a box head reading that embedding prompts the pretrained decoder.
LATE = {"inject_at": ["neck"], "report_box": True, "freeze": "backbone", "module_grid": 32}
EARLY = {"report_box": True, "freeze": "backbone"}  # the adapter's early sites (layers.0, .1)
# Pretrained LiteMedSAM alone, its mask decoder fine-tuned on jittered boxes around the reference
# lesions (objective "reference_boxes"; the report is not read, so one such decoder serves every
# model of a seed alike)
DECODER = {"inject_at": [], "priors": "none", "matched_capacity": False, "freeze": "image_encoder"}


@dataclass(frozen=True)
class Row:
    """How one model of a comparison is built and trained."""

    backbone: str = "litemedsam"
    options: Dict[str, Any] = field(default_factory=dict)
    objective: str = "localisation"  # see medseg_r.engine.task.OBJECTIVES
    lr: float = 2e-3
    backbone_lr: Optional[float] = None  # the pretrained decoder's rate when it trains
    cached: bool = True  # read the frozen encoder's features from the shared cache
    shift: int = 3  # translation augmentation, in cells of the cached site (engine.augment)
    image_augment: float = 0.0  # warps and re-toning of the image (engine.augment.warp_and_tone)
    img_size: Optional[int] = None
    batch_size: Optional[int] = None  # None: the comparison's batch size
    flip: bool = True  # flip augmentation where the data allows it (a flipped image is another
    # encoder pass for a row that reads the encoder's features)
    # a row that trains nothing of its own: the model of the first row with the mask decoder of the
    # second (each trained, or reused, as a row of its own: combine_parts)
    parts: Optional[Tuple[str, str]] = None
    what: str = ""

    @property
    def image_only(self) -> bool:
        """Whether training never runs the encoder (an image localiser trained on its maps alone):
        such a row can afford every training case, the benchmark's extra ones included."""
        return self.options.get("box_input") == "image" and self.objective == "localisation"


ROWS: Dict[str, Row] = {
    "medseg_r": Row(options=IMAGE, batch_size=16,
                    what="MedSeg-R: parsed report, all three modules (image localiser)"),
    "none": Row(options={**IMAGE, "priors": "none"}, batch_size=16,
                what="same localiser and modules fed a constant (no report)"),
    "text_token": Row(options={**IMAGE, "priors": "text_token"}, batch_size=16,
                      what="same localiser and modules fed one embedding of the report text (no parser)"),
    "no_spatial_attention": Row(options={**IMAGE, "spatial_attention": False}, batch_size=16,
                                what="ablation"),
    "no_dynamic_conv": Row(options={**IMAGE, "dynamic_conv": False}, batch_size=16, what="ablation"),
    "no_deformable": Row(options={**IMAGE, "deformable": False}, batch_size=16, what="ablation"),
    "no_location_map": Row(options={**IMAGE, "location_map": False}, batch_size=16, what="ablation"),
    "medseg_r_match": Row(options={**IMAGE, "box_match": True}, batch_size=16,
                          what="MedSeg-R with the per-finding match in its localiser (box_match; a "
                               "variant: the baselines were not given the match)"),
    "medseg_r_attr": Row(options={**ATTR, "priors": "structured"}, batch_size=16,
                         what="MedSeg-R with the match and the attribute head (attribute_head: each "
                              "finding's candidates weighed by their predicted texture and shape)"),
    "none_attr": Row(options={**ATTR, "priors": "none"}, batch_size=16,
                     what="medseg_r_attr's localiser, match and attribute head fed a constant"),
    "text_token_attr": Row(options={**ATTR, "priors": "text_token"}, batch_size=16,
                           what="medseg_r_attr's localiser, match and attribute head fed one "
                                "embedding of the report text (its attribute head trains but cannot "
                                "choose: no parsed codes)"),
    "medseg_r_attr_no_spatial_attention": Row(options={**ATTR, "priors": "structured",
                                                       "spatial_attention": False},
                                              batch_size=16, what="ablation of medseg_r_attr"),
    "medseg_r_attr_no_dynamic_conv": Row(options={**ATTR, "priors": "structured",
                                                  "dynamic_conv": False},
                                         batch_size=16, what="ablation of medseg_r_attr"),
    "medseg_r_attr_no_deformable": Row(options={**ATTR, "priors": "structured", "deformable": False},
                                       batch_size=16, what="ablation of medseg_r_attr"),
    "medseg_r_attr_no_location_map": Row(options={**ATTR, "priors": "structured",
                                                  "location_map": False},
                                         batch_size=16, what="ablation of medseg_r_attr"),
    "medseg_r_attr_positional_keys": Row(
        options={**ATTR, "priors": "structured", "positional_keys": True}, batch_size=16,
        what="medseg_r_attr whose spatial-attention and finding-match keys also carry each cell's "
             "position (positional_keys; a variant: the baselines were not given them)"),
    "medseg_r_attr_positional_keys_no_location_map": Row(
        options={**ATTR, "priors": "structured", "positional_keys": True, "location_map": False},
        batch_size=16, what="ablation of medseg_r_attr_positional_keys"),
    "embedding_head": Row(options=LATE, what="MedSeg-R with the box head on the cached, modulated "
                                             "image embedding (trained on the seed-0 cases only)"),
    "fine_head": Row(options={**LATE, "box_modulation": "fine"},
                     what="embedding_head, its box head modulated at the full embedding grid (4 px cells)"),
    "fine_head_no_deformable": Row(options={**LATE, "box_modulation": "fine", "deformable": False},
                                   what="ablation of fine_head"),
    "early_injection": Row(options=EARLY, cached=True,
                           what="modulated after TinyViT stages 0 and 1 (encoder rerun each step)"),
    "box_decoder_finetune": Row(options={**LATE, "freeze": "image_encoder"}, objective="both",
                                backbone_lr=2e-5,
                                what="box prompts + decoder fine-tuned on the masks (lr 2e-5)"),
    "dense_token_prompts": Row(options={"inject_at": ["neck"], "freeze": "image_encoder"},
                               objective="segmentation", lr=1e-3, backbone_lr=2e-5,
                               what="no box head: dense + token decoder prompts, decoder fine-tuned"),
    "decoder_boxes": Row(options=DECODER, objective="reference_boxes", lr=1e-4, backbone_lr=1e-4,
                         shift=0, flip=False,
                         what="pretrained LiteMedSAM's mask decoder fine-tuned on jittered boxes "
                              "around the reference lesions (lr 1e-4; no report read)"),
    "medseg_r_attr_tuned": Row(parts=("medseg_r_attr", "decoder_boxes"),
                               what="medseg_r_attr's localiser prompting the decoder of decoder_boxes"),
    "none_attr_tuned": Row(parts=("none_attr", "decoder_boxes"),
                           what="none_attr's localiser prompting the decoder of decoder_boxes"),
    "text_token_attr_tuned": Row(parts=("text_token_attr", "decoder_boxes"),
                                 what="text_token_attr's localiser prompting the decoder of "
                                      "decoder_boxes"),
    "sam_tiny_medseg_r": Row(backbone="sam_tiny", options={"freeze": "none"}, objective="segmentation",
                             cached=False, img_size=256, what="SAM-tiny from random weights"),
    "sam_tiny_none": Row(backbone="sam_tiny", options={"freeze": "none", "priors": "none"},
                         objective="segmentation", cached=False, img_size=256, what="SAM-tiny"),
    "sam_tiny_text_token": Row(backbone="sam_tiny", options={"freeze": "none", "priors": "text_token"},
                               objective="segmentation", cached=False, img_size=256, what="SAM-tiny"),
}
# The test subset each switchable part is built for (issue: "subsets that need each prior"): the
# location map and the spatial attention pick the named zone, dynamic convolution the texture,
# deformable sampling the shape
BUILT_FOR = {"spatial_attention": "by_location", "location_map": "by_location",
             "dynamic_conv": "by_texture", "deformable": "by_shape"}
# Each MedSeg-R variant's ablations: one part switched off (its option False), all else equal
ABLATIONS: Dict[str, List[str]] = {
    "medseg_r": ["no_spatial_attention", "no_location_map", "no_dynamic_conv", "no_deformable"],
    "medseg_r_attr": ["medseg_r_attr_no_spatial_attention", "medseg_r_attr_no_location_map",
                      "medseg_r_attr_no_dynamic_conv", "medseg_r_attr_no_deformable"],
    "fine_head": ["fine_head_no_deformable"],
    "medseg_r_attr_positional_keys": ["medseg_r_attr_positional_keys_no_location_map"],
}
# Variants of a MedSeg-R row with one mechanism added (compared with that row, seed by seed)
VARIANTS: Dict[str, str] = {"medseg_r_match": "medseg_r",
                            "medseg_r_attr_positional_keys": "medseg_r_attr"}


def built_for(ablation: str) -> str:
    """The subset the part an ablation row switches off is built for."""
    (switched,) = [k for k, v in ROWS[ablation].options.items() if v is False and k in BUILT_FOR]
    return BUILT_FOR[switched]


def train_row(name: str, *, data: str, out: str, seed: int, epochs: int, batch_size: int = 8,
              cache: Optional[str] = None, precision: Optional[str] = None, progress: bool = False,
              loss: str = "dice_focal", augment: bool = True) -> Dict[str, Any]:
    """Train row ``name`` (or reuse a finished run with the same configuration in ``out``; an
    interrupted one resumes). Returns :func:`medseg_r.engine.train.train`'s result with the model."""
    from ..backbones.weights import torch_load
    from ..model import load_model

    row = ROWS[name]
    if row.parts:
        raise ValueError(f"row {name!r} trains nothing of its own: train its parts {row.parts} "
                         f"and join them with combine_parts")
    cfg = TrainConfig(data=data, out=out, backbone=row.backbone, img_size=row.img_size,
                      model_options=dict(row.options), epochs=epochs,
                      batch_size=row.batch_size or batch_size, lr=row.lr,
                      backbone_lr=row.backbone_lr, objective=row.objective, loss=loss, seed=seed,
                      feature_cache=cache if row.cached else None, augment=augment and row.flip,
                      shift_augment=row.shift if augment else 0,
                      image_augment=row.image_augment if augment else 0.0, validate=False,
                      model_weights="last", keep_epoch_checkpoints=False, progress=progress,
                      resume="auto", precision=precision)
    path = os.path.join(out, "model.ckpt")
    if os.path.isfile(path):
        extra = torch_load(path).get("extra", {})
        if same_run(extra.get("train_config") or {}, asdict(cfg)):
            print(f"reusing finished run {out}", flush=True)
            return {"model": path, "steps": extra.get("global_step"), "reused": True,
                    "loaded": load_model(path)}
        changed = other_run_changes(extra.get("train_config") or {}, asdict(cfg))
        if changed:
            raise ValueError(f"{out} holds a finished run of row {name!r} with other settings "
                             f"({'; '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in changed.items())}): "
                             f"delete it to train the row anew, or use another --out")
    result = train(cfg)
    result["loaded"] = load_model(result["model"])
    return result


def run_row(name: str, *, run_of: Callable[[str], str], data: str, seed: int, epochs: int,
            training: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
    """Train row ``name`` in folder ``run_of(name)`` (:func:`train_row`; a finished run is reused);
    a row made of parts (:attr:`Row.parts`) runs each part in ``run_of(part)`` and joins them
    (:func:`combine_parts`). An image-only row (:attr:`Row.image_only`) trains on ``training`` when
    given (more cases than need the encoder), every other row on ``data``. ``kwargs``: as
    :func:`train_row`."""
    row = ROWS[name]
    if row.parts:
        parts = {part: run_row(part, run_of=run_of, data=data, seed=seed, epochs=epochs,
                               training=training, **kwargs) for part in row.parts}
        combined = combine_parts(name, models={p: r["model"] for p, r in parts.items()},
                                 out=run_of(name))
        combined["part_steps"] = {p: r.get("steps") for p, r in parts.items()}
        return combined
    return train_row(name, data=training if training and row.image_only else data,
                     out=run_of(name), seed=seed, epochs=epochs, **kwargs)


def combine_parts(name: str, *, models: Dict[str, str], out: str) -> Dict[str, Any]:
    """The model of a row made of parts (:attr:`Row.parts`): the first part's trained model with
    the second part's mask decoder, written to ``out/model.ckpt`` with the part checkpoints it came
    from (reused while they are unchanged). ``models``: each part's ``model.ckpt``. The model counts
    the decoder among its trainable parameters (``freeze="image_encoder"``): it was trained too.
    Returns what :func:`train_row` returns."""
    from ..backbones.weights import torch_load
    from ..model import load_model, save_model

    first, second = ROWS[name].parts
    sources = {part: {"model": os.path.realpath(models[part]),
                      "mtime": os.path.getmtime(models[part])} for part in (first, second)}
    path = os.path.join(out, "model.ckpt")
    if os.path.isfile(path) and torch_load(path).get("extra", {}).get("combined_from") == sources:
        print(f"reusing combined run {out}", flush=True)
        return {"model": path, "reused": True, "loaded": load_model(path)}
    model = load_model(models[first], freeze="image_encoder")
    prefix = "sam.mask_decoder."  # the second part's decoder tensors, without building its model
    state = torch_load(models[second])["state_dict"]
    model.sam.mask_decoder.load_state_dict(
        {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    os.makedirs(out, exist_ok=True)
    save_model(model, path, extra={"combined_from": sources})
    return {"model": path, "reused": False, "loaded": model}


def _normalised_config(config: Dict[str, Any]) -> Dict[str, Any]:
    config = {k: v for k, v in config.items() if k not in ("out", "resume", "progress")}
    config.setdefault("image_augment", 0.0)  # runs from before the option: it was off
    for key in ("data", "feature_cache"):
        if isinstance(config.get(key), str):
            config[key] = os.path.realpath(config[key])
    return config


def run_differences(saved: Dict[str, Any], wanted: Dict[str, Any]) -> Dict[str, Tuple[Any, Any]]:
    """``{setting: (saved, wanted)}`` for each setting in which a finished run's training
    configuration differs from the one wanted (as :func:`same_run` compares them)."""
    a, b = _normalised_config(saved), _normalised_config(wanted)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def other_run_changes(saved: Dict[str, Any], wanted: Dict[str, Any]) -> Dict[str, Tuple[Any, Any]]:
    """The differences (:func:`run_differences`) that make a finished run another run than the one
    wanted, which resuming must not relabel: more epochs continue it (train refuses fewer), and a
    setting the run predates counts only when it is wanted away from its default."""
    defaults = asdict(TrainConfig(data="", out=""))
    return {k: v for k, v in run_differences(saved, wanted).items()
            if k != "epochs" and not (k not in saved and v[1] == defaults.get(k))}


def same_run(saved: Dict[str, Any], wanted: Dict[str, Any]) -> bool:
    """Whether a finished run's training configuration is the one wanted. Where a run lies and
    whether it showed a progress bar do not count: ``out``, ``resume`` and ``progress`` are left
    out, and the data and cache folders are compared by their real paths (a moved run folder, or
    data reached through a link, is the same run)."""
    return not run_differences(saved, wanted)


def attach_cache(model, cache: Optional[str], name: str):
    """Give a loaded model the comparison's feature cache (when its row reads it)."""
    from ..model.feature_cache import FeatureCache

    if cache and ROWS[name].cached:
        model.feature_cache = FeatureCache(cache)
    return model


def parameters(model) -> Dict[str, int]:
    summary = model.parameter_summary()
    return {"trainable": int(summary["trainable"]), "total": int(summary["total"]),
            "added": int(summary["added"])}


def describe(names: List[str]) -> Dict[str, str]:
    return {n: ROWS[n].what for n in names}
