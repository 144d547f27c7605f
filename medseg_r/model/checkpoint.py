"""MedSeg-R checkpoints: the model's options, backbone name and weights in one file."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch

from ..backbones import build_backbone, list_backbones
from ..backbones.weights import (TRAINING_ADVICE, CheckpointError, load_strict, torch_load,
                                what_medseg_file_is)
from ..io.atomic import atomic_write
from .medseg_r import MedSegR

FORMAT = "medseg-r"
VERSION = 2
# Parameters added in format 2, zero-initialised so that a model without them behaves exactly as
# before: a format-1 checkpoint loads with them at their initial values.
ADDED_IN_2 = (".deformable.film.", ".deformable.radius.")


def save_model(model, path: str | os.PathLike, *, extra: Optional[Dict[str, Any]] = None) -> None:
    """Write ``model`` (a :class:`MedSegR`) to ``path`` atomically (a killed save never leaves a
    half-written file). A model wrapped with :meth:`MedSegR.from_sam` around a SAM the registry does
    not build is saved too; :func:`load_model` then needs that SAM again (``sam=``)."""
    if not isinstance(model, MedSegR):
        raise TypeError(f"save_model saves a MedSeg-R model (build_model, load_model, "
                        f"MedSegR.from_sam), got {type(model).__name__}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder: give save_model a file name (e.g. model.ckpt)")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "backbone": model.backbone_name,
        "img_size": model.img_size,
        "normalize": model.normalize,
        "options": dict(model.options),
        "state_dict": model.state_dict(),
        "extra": extra or {},
    }
    with atomic_write(path) as tmp, open(tmp, "wb") as f:  # readable as open() leaves it (not 0600)
        torch.save(payload, f)  # a file object: torch names the archive itself, whatever the path


def is_medseg_checkpoint(path) -> bool:
    obj = torch_load(path, mmap=True)  # the tensors mapped, not read: only the format is looked at
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _what_it_is(obj: Any) -> str:
    """What a file that is not a MedSeg-R checkpoint holds, and what to do with it."""
    what = what_medseg_file_is(obj)
    if what:
        return f"it is {what}"
    if isinstance(obj, dict) and "state_dict" in obj and "pytorch-lightning_version" in obj:
        return f"it is {TRAINING_ADVICE}"
    return "use it as backbone weights instead"


def trained_dataset_options(path: str | os.PathLike) -> Dict[str, Any]:
    """The ``dataset_options`` a MedSeg-R checkpoint written by ``train`` was trained with (its
    stored training settings); ``{}`` for any other file, or one that cannot be read."""
    if not os.path.isfile(path):
        return {}
    try:
        obj = torch_load(path, mmap=True)
    except CheckpointError:
        return {}
    if not (isinstance(obj, dict) and obj.get("format") == FORMAT):
        return {}
    settings = (obj.get("extra") or {}).get("train_config") or {}
    options = settings.get("dataset_options") if isinstance(settings, dict) else None
    return dict(options) if isinstance(options, dict) else {}


def _without_idle_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Options that earlier versions stored although they did nothing, as this version takes them
    (it refuses them when given: :class:`~medseg_r.model.options.ModelOptions`): a box head's
    settings without ``report_box``, a ``decoder_prior`` no module used, a site named twice."""
    from .options import DECODER_MODES

    if not options.get("report_box"):
        options.pop("box_input", None)
        options.pop("box_match", None)
    if options.get("decoder_prior") not in (None, *DECODER_MODES):
        options.pop("decoder_prior")  # it could be stored only where no decoder prompts were built
    if isinstance(options.get("inject_at"), (list, tuple)):
        options["inject_at"] = list(dict.fromkeys(options["inject_at"]))
    return options


def load_model(path: str | os.PathLike, *, expect_backbone: Optional[str] = None, sam=None,
               **overrides: Any):
    """Rebuild a model saved by :func:`save_model` (strict: any key mismatch is an error naming the
    keys).

    ``sam``: for a model saved from :meth:`MedSegR.from_sam` around a SAM the registry does not
    build (its backbone name is not in :func:`~medseg_r.backbones.list_backbones`), a SAM built the
    same way; its weights are replaced by the checkpoint's. ``overrides`` may change options that
    do not alter the parameters (e.g. ``freeze``)."""
    obj = torch_load(path)
    if not (isinstance(obj, dict) and obj.get("format") == FORMAT):
        raise CheckpointError(f"{path} is not a MedSeg-R checkpoint ({_what_it_is(obj)})")
    backbone = obj["backbone"]
    if expect_backbone is not None and expect_backbone != backbone:
        raise CheckpointError(
            f"{path} was trained on backbone {backbone!r}, not {expect_backbone!r}"
        )
    version = obj.get("version", 1)
    if version > VERSION:
        raise CheckpointError(f"{path} is format {version}; this MedSeg-R reads formats "
                              f"1-{VERSION} (upgrade the package)")
    options, state = _without_idle_options(dict(obj["options"])), dict(obj["state_dict"])
    if version == 1:  # format-1 baselines were bare: no prior modules
        options.setdefault("matched_capacity", False)
    if sam is not None:
        model = MedSegR.from_sam(sam, normalize=obj.get("normalize"), name=backbone,
                                 **{**options, **overrides})
        if model.img_size != obj["img_size"]:
            raise CheckpointError(f"{path} was saved at img_size {obj['img_size']}; the given sam "
                                  f"takes {model.img_size}")
    elif backbone not in list_backbones():
        raise CheckpointError(
            f"{path} holds a model wrapped around its own SAM (backbone {backbone!r}, not one of "
            f"{', '.join(list_backbones())}): in Python, build that SAM again and pass it, "
            f"load_model(path, sam=my_sam)")
    else:
        model = MedSegR(build_backbone(backbone, img_size=obj["img_size"], pretrained=False),
                        **{**options, **overrides})
    if version == 1:
        own = model.state_dict()
        state.update({k: v for k, v in own.items()
                      if k not in state and any(part in k for part in ADDED_IN_2)})
    load_strict(model, state, source=f"MedSeg-R checkpoint {path}")
    return model
