"""The Lightning task that trains MedSeg-R (or a baseline) on report-image-mask batches."""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import lightning as L
import torch

from ..model import build_model
from ..model.attributes import attribute_loss, share_seen
from ..model.box_prompts import ATTRIBUTES, box_map_loss
from .train_checks import LOADER_KEY, RUN_KEY


def _overlap_counts(logits: torch.Tensor, target: torch.Tensor):
    """Per sample: pixels in prediction (threshold 0, probability 0.5) and reference, and their intersection."""
    pred = (logits > 0).float().flatten(1)
    tgt = (target > 0.5).float().flatten(1)
    return (pred * tgt).sum(1), pred.sum(1), tgt.sum(1)


def dice_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Hard Dice per sample at threshold 0 (probability 0.5); empty vs empty counts as 1."""
    inter, pred, tgt = _overlap_counts(logits, target)
    denom = pred + tgt
    return torch.where(denom > 0, 2 * inter / denom.clamp(min=1), torch.ones_like(denom))


_VAL_KEYS = ("loss", "dice", "iou_mse", "box_loss")
LOSSES = ("dice_ce", "dice_focal", "batch_dice_ce", "batch_dice_focal")
# What a run trains on: the masks (segmentation loss), the box head's heat map and sizes
# (localisation: the decoder is not run, which makes a step on cached features cheap), both, or the
# mask decoder on jittered boxes around the reference lesions (reference_boxes: the report is not
# read; medseg_r.engine.reference_boxes).
OBJECTIVES = ("segmentation", "localisation", "both", "reference_boxes")


def build_loss(name: str):
    """MONAI Dice + cross-entropy / focal loss on sigmoid logits. ``batch_*``: the Dice term pools the whole
    batch (``batch=True``), so empty-target cases (negative reports) do not each reward an empty mask."""
    from monai.losses import DiceCELoss, DiceFocalLoss

    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    batch = name.startswith("batch_")
    if name.endswith("dice_ce"):
        return DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0, batch=batch)
    return DiceFocalLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0, batch=batch)


def iou_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded prediction per sample; empty vs empty counts as 1."""
    inter, pred, tgt = _overlap_counts(logits, target)
    union = pred + tgt - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def lr_factor(step: int, total: int, *, warmup_fraction: float, schedule: str) -> float:
    """The learning rate at optimisation ``step`` of ``total``, as a fraction of the peak: a linear
    warm-up over ``warmup_fraction`` of the steps, then a cosine or poly (0.9) decay to 0."""
    warmup = int(total * warmup_fraction)
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else (1 - progress) ** 0.9


class SegmentationTask(L.LightningModule):
    """Args: backbone / img_size / pretrained / model_options: as :func:`medseg_r.build_model`;
    lr, weight_decay, warmup_fraction, schedule (``cosine`` | ``poly``), loss (one of :data:`LOSSES`).

    Besides the segmentation loss, SAM's IoU head is fitted (mean squared error, as in SAM) to the IoU
    each predicted mask really has, so that the predicted IoU ``medseg-r predict`` reports can come to mean
    something (``medseg-r evaluate`` measures whether it does: after the short CPU trainings of the demo
    it does not yet rank masks by their real IoU; README). The head sees its input detached: this loss
    trains the head alone and leaves the masks exactly as the segmentation loss makes them (in
    ``decoder_prior="extra_token"`` mode it also reaches the gate that blends the two decoder passes' IoU
    estimates).
    """

    def __init__(self, *, backbone: str = "sam_tiny", checkpoint: Optional[str] = None,
                 img_size: Optional[int] = None, pretrained: bool = True,
                 model_options: Optional[Dict[str, Any]] = None, lr: float = 1e-3, weight_decay: float = 0.01,
                 warmup_fraction: float = 0.05, schedule: str = "cosine", loss: str = "dice_ce",
                 objective: str = "segmentation", backbone_lr: Optional[float] = None,
                 feature_cache: Optional[str] = None, cache_dtype: str = "float16",
                 shift_augment: int = 0, image_augment: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        if schedule not in ("cosine", "poly"):
            raise ValueError(f"schedule must be 'cosine' or 'poly', got {schedule!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if shift_augment < 0:
            raise ValueError(f"shift_augment must be >= 0 cells, got {shift_augment}")
        if image_augment < 0:
            raise ValueError(f"image_augment must be >= 0, got {image_augment}")
        self.save_hyperparameters()
        from torchmetrics import MeanMetric

        # validation means over the cases, summed across processes (not a mean of per-process
        # means), the cases a distributed sampler repeats to even out the shares left out
        self.val_means = torch.nn.ModuleDict({k: MeanMetric() for k in _VAL_KEYS})
        self.loader_settings: Dict[str, Any] = {}  # how train() draws the batches (resume checks)
        self.run_settings: Dict[str, Any] = {}  # train()'s other settings (a resume's defaults)
        self.model = build_model(backbone, checkpoint=checkpoint, img_size=img_size,
                                 pretrained=pretrained, **(model_options or {}))
        if not any(p.requires_grad for p in self.model.parameters()):
            raise ValueError("nothing to train: every weight is frozen (model option freeze "
                             "'backbone' with no MedSeg-R module, prior or box head); train some "
                             "modules, or freeze 'image_encoder' to train SAM's decoder")
        if objective in ("localisation", "both") and self.model.box_head is None:
            raise ValueError(f"objective={objective!r} trains the box head: set model option report_box=true")
        if objective == "reference_boxes":
            cfg = self.model.config
            if not any(p.requires_grad for p in self.model.sam.mask_decoder.parameters()):
                raise ValueError("objective='reference_boxes' trains the mask decoder: set model "
                                 "option freeze to 'image_encoder' or 'none'")
            if cfg.priors != "none" or cfg.matched_capacity or len(self.model.perception) or \
                    self.model.box_head is not None:
                raise ValueError("objective='reference_boxes' trains a decoder that reads no report: "
                                 "set model options priors='none', matched_capacity=false, "
                                 "inject_at=[] and no report_box")
            if shift_augment:
                raise ValueError("objective='reference_boxes' takes no shift_augment (its boxes "
                                 "are drawn around the unshifted reference)")
        if image_augment and (objective != "localisation" or self.model.config.box_input != "image"):
            raise ValueError("image_augment warps and re-tones the image, which only a model trained "
                             "on the image alone affords (objective='localisation' with model option "
                             "box_input='image'); an encoder-fed model would miss its feature cache")
        self.loss_fn = build_loss(loss)
        self.model.detach_iou_input = True  # the IoU loss trains the IoU head alone
        if feature_cache:
            from ..model.feature_cache import FeatureCache

            self.model.feature_cache = FeatureCache(feature_cache, dtype=cache_dtype)
        self._cell: Optional[int] = None
        self.model.train()

    def _iou_loss(self, out, mask) -> torch.Tensor:
        with torch.no_grad():
            actual = iou_per_sample(out["masks"], mask)
        return torch.nn.functional.mse_loss(out["iou"][:, 0].float(), actual)

    def forward(self, images, reports):
        return self.model(images, reports)

    def _box_loss(self, out, mask, attributes=None, *, training: bool = True) -> torch.Tensor:
        """The box head's loss; with an attribute head and label maps ``attributes`` [B,2,S,S], plus the
        texture/shape cross-entropy (:func:`~medseg_r.model.attributes.attribute_loss`; only training
        batches mark the codes the head has seen)."""
        loss = box_map_loss(out["box_map"][:, :ATTRIBUTES.start], mask)
        head = getattr(self.model.box_head, "attributes", None)
        if head is not None and attributes is not None:
            loss = loss + attribute_loss(out["box_map"][:, ATTRIBUTES], attributes,
                                         head if training else None)
        return loss

    def _step_seed(self) -> int:
        """The seed of this step's random draws (augmentation, jittered boxes): from the run's seed
        and the step, so that a resumed run replays them."""
        return self.hparams.seed * 1_000_003 + int(self.global_step)

    def _shifted_forward(self, batch, decode: bool):
        """The forward pass on ``batch`` translated by a random whole number of cells of the cached
        site (at most ``shift_augment``; drawn from the seed and the step, so a resumed run
        replays it), the cached features shifted alike (:mod:`medseg_r.engine.augment`)."""
        from .augment import ShiftedFeatures, cell_pixels, draw_shift, shift_batch

        size = self.model.img_size
        if tuple(batch["image"].shape[-2:]) != (size, size):
            return batch, self.model(batch["image"], batch["report"], decode_masks=decode)
        if self._cell is None:
            self._cell = cell_pixels(self.model) or max(1, size // 64)
        generator = torch.Generator().manual_seed(self._step_seed())
        pixels = draw_shift(generator, self.hparams.shift_augment, self._cell)
        batch = shift_batch(batch, pixels)
        cache = self.model.feature_cache
        view = ShiftedFeatures(cache, pixels) if cache is not None else None
        encoded = self.model.encode_inputs(batch["image"], batch["report"], feature_cache=view,
                                           need_embedding=decode)
        out = encoded.outputs()
        if decode:
            out.update(self.model.decode_encoded(encoded))
        return batch, out

    def _reference_box_loss(self, batch, *, training: bool):
        """The decoder's loss on one box around a reference lesion per image (jittered, a lesion
        drawn at random, when ``training``: :func:`~medseg_r.engine.reference_boxes.reference_box_batch`),
        the IoU loss, the model's output, the target masks and the indices of the images with a
        lesion; ``None`` for a batch without any lesion."""
        from .reference_boxes import reference_box_batch

        generator = None
        if training:  # drawn from the seed and the step, so a resumed run replays it
            generator = torch.Generator().manual_seed(self._step_seed())
        kept, boxes, targets = reference_box_batch(batch["mask"], generator=generator)
        if not kept:
            return None
        reports = [batch["report"][i] for i in kept]
        out = self.model(batch["image"][kept], reports, boxes=boxes.to(batch["image"].device))
        return self.loss_fn(out["masks"], targets), self._iou_loss(out, targets), out, targets, kept

    def training_step(self, batch, batch_idx):
        objective, n = self.hparams.objective, len(batch["report"])
        if objective == "reference_boxes":
            found = self._reference_box_loss(batch, training=True)
            if found is None:  # no lesion in the batch: a zero loss on the decoder (a skipped
                # step, None, would leave the other ranks of a distributed run waiting); the
                # optimizer still steps, so weight decay and momentum move the decoder a little
                trained = [p for p in self.model.sam.mask_decoder.parameters() if p.requires_grad]
                return sum(p.sum() for p in trained) * 0.0
            loss, iou_loss = found[:2]
            self.log("train/loss", loss, prog_bar=True, batch_size=n)
            self.log("train/iou_mse", iou_loss, batch_size=n)
            return loss + iou_loss
        decode = objective != "localisation"
        if self.hparams.image_augment:  # drawn from the seed, the step, the micro-batch and the
            # rank (each micro-batch of an accumulated step and each process its own draw): a
            # resumed run replays it
            from .augment import warp_and_tone

            generator = torch.Generator().manual_seed(
                (self._step_seed() * 1_009 + int(batch_idx)) * 131 + int(self.global_rank) + 500_009)
            batch = warp_and_tone(batch, generator, self.hparams.image_augment)
        if self.hparams.shift_augment:
            batch, out = self._shifted_forward(batch, decode)
        else:
            out = self.model(batch["image"], batch["report"], decode_masks=decode)
        total = 0.0
        if objective != "localisation":
            loss = self.loss_fn(out["masks"], batch["mask"])
            iou_loss = self._iou_loss(out, batch["mask"])
            self.log("train/loss", loss, prog_bar=True, batch_size=n)
            self.log("train/iou_mse", iou_loss, batch_size=n)
            total = loss + iou_loss
        if objective != "segmentation":
            located = self._box_loss(out, batch["mask"], batch.get("attributes"))
            self.log("train/box_loss", located, prog_bar=True, batch_size=n)
            total = total + located
        return total

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        """In distributed training, every rank keeps the union of the texture/shape codes met
        (:func:`~medseg_r.model.attributes.share_seen`), so the saved head scores them all."""
        head = getattr(self.model.box_head, "attributes", None)
        if head is not None:
            share_seen(head)

    def _real_cases(self, batch_idx: int, n: int) -> torch.Tensor:
        """``[n]`` bool: which cases of this validation batch are the split's own. With several
        processes, Lightning's ``DistributedSampler`` evens out the shares by repeating the first
        cases (process ``r`` takes positions ``r, r + W, ...`` of the padded list): those repeats
        would count twice in the means."""
        world = self.trainer.world_size if self._trainer is not None else 1
        if world <= 1:
            return torch.ones(n, dtype=torch.bool)
        loader = self.trainer.val_dataloaders
        positions = torch.arange(batch_idx * loader.batch_size, batch_idx * loader.batch_size + n)
        return self.global_rank + positions * world < len(loader.dataset)

    def _log_val(self, key: str, values: torch.Tensor, real: torch.Tensor, **kwargs) -> None:
        """Add per-case ``values`` (or one batch value, weighted by its real cases) to ``val/key``."""
        metric = self.val_means[key]
        values = values.detach().float()
        weight = real.float().to(values.device)  # on the metric's device (a GPU's, in training)
        metric.update(values, weight=weight.sum() if values.dim() == 0 else weight)
        self.log(f"val/{key}", metric, on_step=False, on_epoch=True, **kwargs)

    def validation_step(self, batch, batch_idx):
        n = len(batch["report"])
        real = self._real_cases(batch_idx, n)
        if self.hparams.objective == "reference_boxes":  # each image's largest lesion, its own box
            found = self._reference_box_loss(batch, training=False)
            if found is not None:
                loss, iou_loss, out, targets, kept = found
                lesions = real[list(kept)]  # a repeated case's lesion is left out with it
                self._log_val("loss", loss, lesions)
                self._log_val("dice", dice_per_sample(out["masks"], targets), lesions, prog_bar=True)
                self._log_val("iou_mse", iou_loss, lesions)
            return
        out = self.model(batch["image"], batch["report"])
        self._log_val("loss", self.loss_fn(out["masks"], batch["mask"]), real)
        self._log_val("dice", dice_per_sample(out["masks"], batch["mask"]), real, prog_bar=True)
        self._log_val("iou_mse", self._iou_loss(out, batch["mask"]), real)
        if self.model.box_head is not None:
            self._log_val("box_loss", self._box_loss(out, batch["mask"], batch.get("attributes"),
                                                     training=False), real)

    def parameter_groups(self):
        """MedSeg-R's own modules at ``lr``; the pretrained SAM parts that train (decoder, and the
        encoder with ``freeze="none"``) at ``backbone_lr`` when given (fine-tuning a pretrained
        decoder wants a rate well below a new module's)."""
        sam = {id(p) for p in self.model.sam.parameters()}
        own = [p for p in self.model.parameters() if p.requires_grad and id(p) not in sam]
        pretrained = [p for p in self.model.sam.parameters() if p.requires_grad]
        backbone_lr = self.hparams.backbone_lr or self.hparams.lr
        groups = [{"params": own, "lr": self.hparams.lr}]
        if pretrained:
            groups.append({"params": pretrained, "lr": backbone_lr})
        return groups

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint[LOADER_KEY] = dict(self.loader_settings)
        checkpoint[RUN_KEY] = dict(self.run_settings)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameter_groups(), lr=self.hparams.lr,
                                      weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        hp = self.hparams
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, total, warmup_fraction=hp.warmup_fraction,
                                              schedule=hp.schedule))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
