"""The checks ``medseg-r train`` makes before it reads or writes anything: option types and ranges,
the run folder, what a resume continues from and that it goes on with the run's own settings, and
whether the reports say anything (:mod:`medseg_r.engine.train` calls them)."""
from __future__ import annotations

import glob
import numbers
import os
import re
import warnings
from typing import TYPE_CHECKING, Any, Dict, Optional

import torch

from ..data.readers import DataWarning

if TYPE_CHECKING:
    from .train import TrainConfig


def default_size(backbone: str) -> int:
    """The input size a backbone trains at when none is given."""
    return 256 if backbone in ("sam_tiny", "litemedsam") else 1024


# How many training reports are read to check that some describe a finding (all of a large data set
# would add seconds to every start)
REPORTS_CHECKED = 500


def warn_if_no_report_describes_a_finding(records) -> None:
    """A data set whose reports (the first :data:`REPORTS_CHECKED` with text) all negate or name no
    finding teaches the model nothing from the text: say so (a column of the wrong kind, a
    negative-only export)."""
    from ..report import parse_report

    texts = [str(r.report) for r in records if str(r.report or "").strip()][:REPORTS_CHECKED]
    if texts and not any(parse_report(text).positive_findings for text in texts):
        warnings.warn(f"none of the {len(texts)} training reports read describes a finding (all "
                      f"negate, or name nothing the report reader knows): the priors will carry "
                      f"nothing; check the report column (medseg-r parse-report shows what is read)",
                      DataWarning)


def check_run_folder(cfg: TrainConfig) -> None:
    """``cfg.out`` must be a folder (or not exist yet), and may hold an earlier run only when
    ``cfg.resume`` says what to do with it: training anew there would replace its ``model.ckpt``
    and mix two runs' checkpoints. Raises ``ValueError``."""
    if os.path.exists(cfg.out) and not os.path.isdir(cfg.out):
        raise ValueError(f"--out {cfg.out} is a file, not a folder")
    ckpts = os.path.join(cfg.out, "checkpoints")
    earlier = os.path.isfile(os.path.join(cfg.out, "model.ckpt")) or (
        os.path.isdir(ckpts) and any(n.endswith(".ckpt") for n in os.listdir(ckpts)))
    if earlier and cfg.resume is None:
        raise ValueError(f"{cfg.out} already holds a training run (model.ckpt or checkpoints/): "
                         f"pass --resume auto to continue it, or choose another --out")
    if os.path.isfile(os.path.join(cfg.out, "model.ckpt")) and cfg.resume == "auto" and \
            resume_point(ckpts) is None:
        raise ValueError(f"{cfg.out} holds a model.ckpt but no epoch checkpoint to resume from: "
                         f"--resume auto would train anew and replace it; choose another --out")
    if earlier and cfg.resume not in (None, "auto") and not _inside(cfg.resume, ckpts):
        raise ValueError(f"{cfg.out} already holds another training run: resuming {cfg.resume} "
                         f"there would replace its checkpoints and model.ckpt and mix two runs; "
                         f"choose a new --out (or resume that run in its own folder)")


def _inside(path: str, folder: str) -> bool:
    return os.path.dirname(os.path.realpath(path)) == os.path.realpath(folder)


def resume_point(ckpt_dir: str) -> Optional[str]:
    """The checkpoint an interrupted run in ``ckpt_dir`` continues from: ``last.ckpt``, or, where
    that link dangles (a run killed between the removal of the previous epoch's file and the new
    link) or the file cannot be read (a run killed while saving it), the latest readable
    ``epochNNN.ckpt`` (kept to the end of the resumed run: Lightning does not delete the file a run
    resumed from), with a warning naming what was passed over; ``None`` when there is none."""
    epochs = {}
    for path in glob.glob(os.path.join(ckpt_dir, "epoch*.ckpt")):
        found = re.fullmatch(r"epoch(\d+)\.ckpt", os.path.basename(path))
        if found:
            epochs[int(found.group(1))] = path
    candidates = [os.path.join(ckpt_dir, "last.ckpt")] + [epochs[k] for k in sorted(epochs, reverse=True)]
    damaged = []
    for path in candidates:
        if not os.path.isfile(path):
            continue
        if _readable(path):
            if damaged:
                warnings.warn(f"cannot read {', '.join(damaged)} (truncated or damaged: a run killed "
                              f"while saving?): resuming from {path}", DataWarning)
            return path
        damaged.append(path)
    if damaged:
        raise ValueError(f"no readable checkpoint in {ckpt_dir} ({', '.join(damaged)} truncated or "
                         f"damaged): the run cannot be resumed; train anew in another --out")
    return None


def _readable(path: str) -> bool:
    """Whether a training checkpoint can be opened (its archive and its pickled state)."""
    from ..backbones.weights import CheckpointError, torch_load

    try:
        held = torch_load(path, mmap=True)
    except (CheckpointError, OSError, RuntimeError, EOFError):
        return False
    return isinstance(held, dict) and "state_dict" in held


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# Lightning precisions that cast the weights themselves (not autocast), refused before anything is written
TRUE_PRECISIONS = frozenset(("16-true", "bf16-true", "64-true", "64", "transformer-engine",
                             "transformer-engine-float16"))


def _shipped_argument(value) -> str:
    """What to give ``load_pretrained`` for shipped weights given as ``value``: their name when the
    package ships weights of that name, else nothing (the default model)."""
    from ..model.shipped import shipped_names

    name = shipped_name(value)
    return repr(name) if name in shipped_names() else ""


def shipped_name(value) -> str:
    """The name of shipped weights given as a name or as a file (the file records it)."""
    value = os.fspath(value)
    if not os.path.isfile(value):
        return value
    from ..backbones.weights import torch_load

    stem = os.path.splitext(os.path.basename(value))[0]
    try:
        held = torch_load(value, mmap=True)
    except Exception:  # not readable here: its own name
        return stem
    return str(held.get("name") or stem) if isinstance(held, dict) else value


def _check_folder_path(path, what: str) -> None:
    """``path`` is, or can be made as, a folder: no part of it is a file. ``ValueError`` naming it."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValueError(f"{what} must be a folder path, got {path!r}")
    part = os.path.abspath(str(path))
    while not os.path.exists(part):
        parent = os.path.dirname(part)
        if parent == part:
            return
        part = parent
    if part == os.path.abspath(str(path)) and not os.path.isdir(part):
        raise ValueError(f"{what} {path} is a file, not a folder")
    if not os.path.isdir(part):
        raise ValueError(f"{what} {path}: {part} is a file, so no folder can be made there")


def check_config(cfg: TrainConfig) -> None:
    """The options' types and ranges, before anything is read or written (a config file may give
    ``epochs: "1"`` or ``lr: fast``). Raises ``ValueError`` naming the option."""
    for name in ("epochs", "batch_size", "accumulate", "num_nodes"):
        value = getattr(cfg, name)
        if not _whole(value) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    for name in ("num_workers", "seed", "shift_augment"):
        value = getattr(cfg, name)
        if not _whole(value) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    for name in ("lr", "weight_decay", "backbone_lr", "image_augment"):
        value = getattr(cfg, name)
        if value is None and name == "backbone_lr":
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or (
                name in ("lr", "backbone_lr") and value == 0):
            sign = "> 0" if name in ("lr", "backbone_lr") else ">= 0"
            raise ValueError(f"{name} must be a number {sign}, got {value!r}")
    if cfg.img_size is not None and (not _whole(cfg.img_size) or cfg.img_size < 64):
        raise ValueError(f"img_size must be a whole number of pixels >= 64, got {cfg.img_size!r}")
    limit = cfg.limit_train_batches
    if limit is not None and not ((_whole(limit) and limit >= 1) or
                                  (isinstance(limit, float) and 0 < limit <= 1)):
        raise ValueError(f"limit_train_batches must be a number of batches >= 1 (or a fraction in "
                         f"(0, 1]), got {limit!r}")
    for name in ("pretrained", "augment", "validate", "keep_epoch_checkpoints", "progress",
                 "describe_missing"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(cfg, name)!r}")
    if cfg.deterministic is not None and not isinstance(cfg.deterministic, bool):
        raise ValueError(f"deterministic must be true, false or left out, got {cfg.deterministic!r}")
    if cfg.feature_cache:  # a folder it can make (it failed after logs/ was written)
        _check_folder_path(cfg.feature_cache, "feature_cache")
    if cfg.precision is not None and str(cfg.precision) in TRUE_PRECISIONS:
        raise ValueError(f"precision {cfg.precision!r} casts the weights, and MedSeg-R's weights must "
                         f"stay float32 (its modules and the pretrained backbone are trained so): give "
                         f"32-true, bf16-mixed or 16-mixed (autocast: float32 weights, lower-precision "
                         f"compute)")
    if cfg.accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator must be one of {', '.join(ACCELERATORS)}, got "
                         f"{cfg.accelerator!r}")
    # a resumed run's weights come from its resume point: its starting weights may have moved
    if cfg.checkpoint is not None and cfg.resume is None:
        from ..model.shipped import is_shipped

        try:
            shipped = is_shipped(cfg.checkpoint)
        except Exception:  # an unreadable file: the backbone's loader says why
            shipped = False
        if shipped:
            raise ValueError(
                f"checkpoint {cfg.checkpoint}: the shipped MedSeg-R weights do not start a training "
                f"run (they are a difference from LiteMedSAM, for predict, evaluate and serve); "
                f"leave out --checkpoint to start from the pretrained LiteMedSAM, or give a run's "
                f"model.ckpt (to fine-tune the shipped model, save it as one first: python -c "
                f"\"import medseg_r, medseg_r.checkpoint as c; c.save_model(medseg_r.load_pretrained("
                f"{_shipped_argument(cfg.checkpoint)}), 'shipped.ckpt')\")")
    if cfg.checkpoint is not None and cfg.resume is None and not os.path.isfile(str(cfg.checkpoint)):
        raise ValueError(f"checkpoint {cfg.checkpoint}: no such file (the backbone's weights, or a "
                         f"MedSeg-R model.ckpt to start from)")
    for name in ("model_options", "dataset_options"):
        if not isinstance(getattr(cfg, name), dict):
            raise ValueError(f"{name} must be a mapping of option: value, got {getattr(cfg, name)!r}")
    devices = cfg.devices
    if not (devices == "auto" or devices == -1 or (_whole(devices) and devices >= 1) or
            (isinstance(devices, str) and re.fullmatch(r"-1|[1-9]\d*|\d+(,\d+)*,?", devices)) or
            (isinstance(devices, (list, tuple)) and devices and all(_whole(d) and d >= 0 for d in devices))):
        raise ValueError(f"devices must be 'auto', a number >= 1, -1 (all) or device indices "
                         f"('0,1' or a list), got {devices!r}")
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    if not gpu and not (devices == "auto" or (_whole(devices) and devices >= 1)
                        or (isinstance(devices, str) and devices.isdigit() and int(devices) >= 1)):
        raise ValueError(f"on the CPU, devices is a number of processes >= 1 (DDP with gloo) or "
                         f"'auto'; got {devices!r} (GPU indices and -1 need a CUDA GPU)")
    if cfg.accelerator == "mps" and not torch.backends.mps.is_available():
        raise ValueError("accelerator 'mps': no Apple-silicon GPU (MPS) is available here; use "
                         "--accelerator cpu or auto")
    if cfg.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(f"accelerator {cfg.accelerator!r}: no CUDA GPU is available here "
                         f"(torch {torch.__version__}); use --accelerator cpu or auto")
    if cfg.model_weights not in ("best", "last"):
        raise ValueError(f"model_weights must be 'best' or 'last', got {cfg.model_weights!r}")
    if not cfg.validate and cfg.model_weights != "last":
        raise ValueError("validate=False needs model_weights='last' (there is no best epoch to pick)")
    if cfg.resume not in (None, "auto"):
        check_resume_file(cfg.resume)


def check_resume_file(path: str) -> None:
    """``path`` must be a Lightning training checkpoint (``OUT/checkpoints/*.ckpt``), not a
    MedSeg-R model file or anything else. Raises ``ValueError``."""
    from ..backbones.weights import torch_load

    if not os.path.isfile(path):
        raise ValueError(f"--resume {path}: no such file (or 'auto' for the run's latest checkpoint)")
    held = torch_load(path, mmap=True)  # a CheckpointError (a ValueError) for a file torch cannot read
    if isinstance(held, dict) and held.get("format") == "medseg-r":
        raise ValueError(f"--resume {path} is a trained model (model.ckpt), not a training "
                         f"checkpoint: resume from its run's checkpoints/last.ckpt (--resume auto "
                         f"with that --out)")
    if not (isinstance(held, dict) and "pytorch-lightning_version" in held and "state_dict" in held):
        raise ValueError(f"--resume {path} is not a Lightning training checkpoint "
                         f"(OUT/checkpoints/*.ckpt)")


# A training checkpoint's record of how its batches were drawn (medseg_r.engine.task), and of the
# run's other settings (epochs, precision, ...: what a resume takes when its command leaves them out)
LOADER_KEY = "medseg_r_loader"
RUN_KEY = "medseg_r_run"
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")  # Lightning's that this package runs on


def check_ignored_options(cfg: TrainConfig, model) -> None:
    """Warn about options this run accepts but that would do nothing (with the model as built)."""
    frozen_encoder = not any(p.requires_grad for p in model.sam.image_encoder.parameters())
    if cfg.feature_cache and not frozen_encoder:
        warnings.warn(f"--feature-cache {cfg.feature_cache} is not used: the image encoder trains "
                      f"(model option freeze), so its features change every step", DataWarning)
    if cfg.cache_dtype != "float16" and not cfg.feature_cache:
        warnings.warn("--cache-dtype does nothing without --feature-cache", DataWarning)
    if cfg.backbone_lr is not None and not any(p.requires_grad for p in model.sam.parameters()):
        warnings.warn("--backbone-lr does nothing here: no part of the SAM backbone trains (model "
                      "option freeze 'backbone')", DataWarning)


def check_validation_lesions(records, root: str) -> None:
    """``objective="reference_boxes"`` scores the decoder on a box around a reference lesion: a
    validation set whose masks are all empty gives it nothing to score (Lightning would fail at
    the end of the first epoch). Raises ``ValueError``."""
    from ..data.datasets import _load
    from ..io.images import mask_foreground

    for r in records:
        if mask_foreground(_load(r.mask, root, mask=True)).any():
            return
    raise ValueError(f"none of the {len(records)} validation cases has a lesion in its mask: "
                     f"--objective reference_boxes validates on boxes around reference lesions; "
                     f"give --val-data with lesions, or set 'validate: false' (and model_weights: "
                     f"last) in the YAML config")


def cases_fingerprint(records) -> str:
    """``"N cases, <digest>"`` of the records' ids, reports and splits: a resumed run must draw its
    batches from the cases it started with."""
    import hashlib

    digest = hashlib.sha256()
    for r in records:
        digest.update(f"{r.id}\0{r.report}\0{r.split}\n".encode("utf-8", "surrogatepass"))
    return f"{len(records)} cases, {digest.hexdigest()[:12]}"


def run_settings(path: str) -> Dict[str, Any]:
    """The settings a training checkpoint was trained with, by :class:`TrainConfig` field name (its
    task settings and how its batches were drawn; ``feature_cache`` left out: it may move), so that
    a resumed run takes the options its command leaves out from the run, not from the defaults;
    ``{}`` when the file cannot be read (train itself then says why)."""
    import dataclasses

    from ..backbones.weights import CheckpointError, torch_load
    from .train import TrainConfig

    try:
        held = torch_load(path, mmap=True)
    except CheckpointError:
        return {}
    if not isinstance(held, dict):
        return {}
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"feature_cache"}
    saved = {**(held.get("hyper_parameters") or {}), **(held.get(LOADER_KEY) or {}),
             **(held.get(RUN_KEY) or {})}
    return {key: value for key, value in saved.items() if key in fields}


def check_same_settings(path: str, hparams: Dict[str, Any], *, epochs: Optional[int] = None,
                        loader: Optional[Dict[str, Any]] = None) -> None:
    """A resumed run must go on with the settings it was started with (an exact resume): the
    training checkpoint's saved task settings against this run's (``feature_cache`` may move; a
    setting the checkpoint predates is not compared), the batches it was drawn in (``loader``:
    batch size, accumulation, flips, batches per epoch; :data:`LOADER_KEY` of the checkpoint), and
    ``epochs`` no fewer than it has finished. Raises ``ValueError`` naming each change."""
    from ..backbones.weights import torch_load

    held = torch_load(path, mmap=True)
    saved = held.get("hyper_parameters") or {}
    changed = [f"{key} {saved[key]!r} -> {value!r}" for key, value in hparams.items()
               if key not in ("feature_cache", "checkpoint") and key in saved
               and _comparable(key, saved[key], saved) != _comparable(key, value, hparams)]
    drawn = held.get(LOADER_KEY) or {}
    changed += [f"{key} {drawn[key]!r} -> {value!r}" for key, value in (loader or {}).items()
                if key in drawn and drawn[key] != value]
    if changed:
        raise ValueError(f"{path} was trained with other settings ({'; '.join(changed)}): resume "
                         f"with the run's own settings, or train anew in another --out")
    done = int(held.get("epoch", -1)) + 1
    if epochs is not None and epochs < done:
        raise ValueError(f"{path} has finished {done} epoch(s): --epochs must be at least {done} "
                         f"to resume it, got {epochs}")
    step = int(held.get("global_step", 0) or 0)
    # the epochs the run was started with (a checkpoint older than RUN_KEY does not say: no warning,
    # as an interrupted run resumed as it was started would be told its planned epochs were added)
    planned = (held.get(RUN_KEY) or {}).get("epochs")
    planned = int(planned) if isinstance(planned, (int, float)) and not isinstance(planned, bool) else None
    if epochs is not None and planned is not None and epochs > planned and done > 0 and step > 0 \
            and saved.get("schedule") in ("cosine", "poly"):
        from .task import lr_factor

        per_epoch = step / done
        total = round(per_epoch * epochs)  # the schedule is laid over every epoch asked for now
        first_added = max(step, round(per_epoch * planned))  # the planned epochs come first
        rate = lr_factor(first_added, total, warmup_fraction=float(saved.get("warmup_fraction", 0.05)),
                         schedule=saved["schedule"])
        if rate < 0.1:
            warnings.warn(
                f"{path} has finished {done} of its {planned} epoch(s) of its {saved['schedule']} "
                f"schedule: laid over {epochs} epochs, the added ones start at {100 * rate:.1f} % of the peak learning rate "
                f"and fall to 0, so they change the weights little; to train on at a useful rate, start "
                f"a new run from its model.ckpt (--checkpoint RUN/model.ckpt, another --out)", UserWarning)


def _comparable(key: str, value: Any, settings: Dict[str, Any]) -> Any:
    """A task setting as it acts: model options with their defaults filled in (``{}`` is the
    defaults spelled out), ``img_size`` None as the backbone's default size."""
    if key == "model_options" and isinstance(value, dict):
        from ..model.options import ModelOptions

        try:
            return ModelOptions.from_dict(value).to_dict()
        except ValueError:
            return value
    if key == "img_size" and value is None:
        return default_size(settings.get("backbone"))
    return value
