"""``medseg-r train``: fit a model with PyTorch Lightning (checkpoints every epoch + best, CSV logs, exact
resume, mixed precision on GPU, gradient accumulation, DDP across GPUs or nodes, gloo on CPU)."""
from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar, TQDMProgressBar
from torch.utils.data import DataLoader

from ..model import save_model
from ..runtime import cpu_has_bf16
from ..data.datasets import EpochShuffleSampler, SegmentationDataset, collate, flip_allowed
from ..data.checks import check_files
from ..io import atomic_write
from ..data.readers import DataWarning, dataset_option_names, read_dataset, split_counts
from .run_log import RunLogger
from .task import SegmentationTask
from .train_checks import (cases_fingerprint, check_config, check_ignored_options, check_run_folder,
                           check_same_settings, check_validation_lesions, default_size, resume_point,
                           warn_if_no_report_describes_a_finding)


class _MovableCheckpoint(ModelCheckpoint):
    """A run folder may be copied or moved before it is resumed: the state a checkpoint saved under
    its old folder is read as this folder's when this folder holds the files it names (a copy), so
    the best score so far is kept (Lightning drops it when the folder differs, and the first epoch
    after the resume became the best) and no file of the old folder is ever replaced or removed.
    A checkpoint resumed into a new folder without those files (``--resume OLD/... --out NEW``)
    starts its best score afresh there, as Lightning does."""

    @property
    def state_key(self) -> str:  # Lightning's own key, so that earlier checkpoints restore too
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and os.path.normpath(old) != os.path.normpath(self.dirpath):
            def here(path):
                if not path or os.path.dirname(os.path.normpath(path)) != os.path.normpath(old):
                    return path
                return os.path.join(self.dirpath, os.path.basename(path))

            moved = {**state_dict, "dirpath": self.dirpath,
                     **{key: here(state_dict.get(key)) for key in
                        ("best_model_path", "kth_best_model_path", "last_model_path")},
                     "best_k_models": {here(k): v for k, v in
                                       (state_dict.get("best_k_models") or {}).items()}}
            named = [moved["best_model_path"], *moved["best_k_models"]]
            if all(os.path.isfile(p) for p in named if p):
                state_dict = moved
        super().load_state_dict(state_dict)


@dataclass
class TrainConfig:
    data: str
    out: str
    val_data: Optional[str] = None  # a separate validation set (e.g. an LViT Val_Folder); default: data
    backbone: str = "sam_tiny"
    # Weights to start from: the backbone's own (SAM / MedSAM / LiteMedSAM layout) or a MedSeg-R
    # model file (a run's model.ckpt: fine-tune it further). None: LiteMedSAM's pretrained weights
    # for litemedsam (unless pretrained is false), random ones for the other backbones.
    checkpoint: Optional[str] = None
    img_size: Optional[int] = None
    pretrained: bool = True
    model_options: Dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    schedule: str = "cosine"
    loss: str = "dice_ce"
    # "segmentation" (masks), "localisation" (the box head alone; needs model option report_box) or
    # "both"; see medseg_r.engine.task.OBJECTIVES.
    objective: str = "segmentation"
    backbone_lr: Optional[float] = None  # rate for the pretrained SAM parts that train (default: lr)
    # A folder for the frozen encoder's features (medseg_r.model.feature_cache); models of one
    # comparison may share it. None: no cache.
    feature_cache: Optional[str] = None
    cache_dtype: str = "float16"
    accumulate: int = 1
    augment: bool = True
    # Random translations of the training batches by up to this many cells of the cached site
    # (cached features shifted alike: medseg_r.engine.augment); 0: off.
    shift_augment: int = 0
    # Warps and re-toning of the training images, scaled by this strength (engine.augment's
    # warp_and_tone; only for an image localiser trained on its maps alone); 0: off.
    image_augment: float = 0.0
    precision: Optional[str] = None  # default: see default_precision()
    # Deterministic kernels (torch.use_deterministic_algorithms). Default: on for CPU runs, where it makes a
    # seeded run repeat exactly with the same thread count, at no measurable cost (without it, the
    # multi-threaded backward of SAM's relative-position lookup accumulates in a varying order); off
    # on GPU, where several CUDA kernels have no deterministic version.
    deterministic: Optional[bool] = None
    # Which weights OUT/model.ckpt holds: "best" (highest val/dice) or "last" (the end of the budget).
    model_weights: str = "best"
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int = 0
    seed: int = 0
    resume: Optional[str] = None  # a Lightning checkpoint, or "auto" for OUT/checkpoints/last.ckpt
    # (or the latest epochNNN.ckpt there when last.ckpt is missing: resume_point)
    limit_train_batches: Optional[float] = None  # a number of batches, or a fraction in (0, 1]
    validate: bool = True  # False: no validation pass (model_weights must then be "last")
    keep_epoch_checkpoints: bool = True  # False: only the latest epoch's and last.ckpt (+ best.ckpt)
    train_split: str = "train"
    val_split: str = "val"
    dataset_options: Dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    # Describe the masks of cases with an empty report (medseg_r.describe.fill_missing_reports).
    describe_missing: bool = False


class _EpochToDataset(Callback):
    """Tell the data set the epoch so that flips are replayed exactly after a resume."""

    def on_train_epoch_start(self, trainer, pl_module):
        loader = trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(trainer.current_epoch)


def _size(cfg: TrainConfig) -> int:
    return cfg.img_size or default_size(cfg.backbone)


def _options_for(path: str, cfg: TrainConfig) -> Dict[str, Any]:
    """The dataset options ``path`` is read with: the run's own for ``--data``; for another data set
    (``--val-data``, maybe of another format) those of them its reader takes."""
    if path == cfg.data:
        return cfg.dataset_options
    return {k: v for k, v in cfg.dataset_options.items() if k in dataset_option_names(path)}


def _splits_of(path: str, cfg: TrainConfig) -> str:
    """The cases of each split of a data set, for an error message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return split_counts(read_dataset(path, split=None, **_options_for(path, cfg))[0])


def make_loaders(cfg: TrainConfig):
    size = _size(cfg)
    train_records, root = read_dataset(cfg.data, split=cfg.train_split, **cfg.dataset_options)
    val_data = cfg.val_data or cfg.data
    val_records, val_root = read_dataset(val_data, split=cfg.val_split, **_options_for(val_data, cfg))
    checked = list(train_records) + (list(val_records) if cfg.validate else [])
    empty = list(dict.fromkeys(r.id for r in checked if not str(r.report or "").strip()))
    if cfg.describe_missing:
        from ..describe import fill_missing_reports

        train_records = fill_missing_reports(train_records, root=root, seed=cfg.seed)
        val_records = fill_missing_reports(val_records, root=val_root, seed=cfg.seed)
        if empty:
            in_val = sum(r.described for r in val_records)
            warnings.warn(f"described {len(empty)} case(s) with an empty report from their masks "
                          f"(e.g. {', '.join(empty[:3])}; written to {DESCRIBED_REPORTS} in the run "
                          f"folder)" + (f"; {in_val} of them validation cases, whose validation Dice "
                                        f"is then measured with reports made from their own masks"
                                        if in_val else ""), DataWarning)
    elif empty:
        warnings.warn(f"{len(empty)} case(s) have an empty report (e.g. {', '.join(empty[:3])}): the "
                      f"model is told nothing about what to segment in them; --describe-missing "
                      f"describes them from their masks", DataWarning)
    warn_if_no_report_describes_a_finding(train_records)
    if not train_records:
        raise ValueError(f"split {cfg.train_split!r} of {cfg.data} has no case: training needs cases "
                         f"whose split is {cfg.train_split!r} (its splits: {_splits_of(cfg.data, cfg)})")
    if cfg.validate and not val_records:
        other = "" if cfg.val_data else "give --val-data, or "
        raise ValueError(f"split {cfg.val_split!r} of {val_data} has no case "
                         f"(its splits: {_splits_of(val_data, cfg)}): validation "
                         f"needs them; {other}set 'validate: false' in the YAML config to train "
                         f"without validation")
    check_files(train_records, root, cfg.train_split)
    if cfg.validate:
        check_files(val_records, val_root, cfg.val_split)
        if cfg.objective == "reference_boxes":
            check_validation_lesions(val_records, val_root)
        same = {r.id for r in train_records} & {r.id for r in val_records}
        if same and cfg.val_data is None:
            warnings.warn(f"{len(same)} of the {len(val_records)} validation cases are also training "
                          f"cases (the data set has no split column): the validation Dice, and the "
                          f"best checkpoint it picks, are measured on training data", DataWarning)
    augment = cfg.augment and flip_allowed(root)
    train_set = SegmentationDataset(train_records, root=root, size=size, augment=augment, seed=cfg.seed)
    train = DataLoader(train_set, batch_size=cfg.batch_size, sampler=EpochShuffleSampler(len(train_set), cfg.seed),
                       collate_fn=collate, num_workers=cfg.num_workers, drop_last=False)
    val = None
    if val_records:
        val = DataLoader(SegmentationDataset(val_records, root=val_root, size=size),
                         batch_size=cfg.batch_size, shuffle=False, collate_fn=collate,
                         num_workers=cfg.num_workers)
    return train, val


def default_precision(gpu: bool) -> str:
    """``16-mixed`` on GPU; on CPU ``bf16-mixed`` where the CPU has bfloat16 instructions (measured on this
    project's 2-core AMD EPYC with AVX512-BF16: ``sam_tiny`` batch-8 training 0.68 -> 0.99 steps/s; README),
    else ``32-true``."""
    if gpu:
        return "16-mixed"
    return "bf16-mixed" if cpu_has_bf16() else "32-true"


def resolve_strategy(cfg: TrainConfig) -> str:
    """SAM's decoder computes parameters that single-mask training never uses (multimask hypernetworks, the
    IoU head, unused prompt embeddings), so multi-process DDP must look for unused parameters."""
    many = (isinstance(cfg.devices, int) and cfg.devices > 1) or cfg.num_nodes > 1 or (
        cfg.devices in ("auto", -1, "-1") and torch.cuda.is_available() and torch.cuda.device_count() > 1)
    if cfg.strategy in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"):  # every launcher of DDP
        return f"{cfg.strategy}_find_unused_parameters_true"
    if cfg.strategy == "auto" and many:
        return "ddp_find_unused_parameters_true"
    return cfg.strategy


def _own(resume: Optional[str], ckpt_dir: str) -> bool:
    """Whether ``resume`` is a checkpoint of the run folder's own (its log goes on), not another's."""
    if resume is None or not os.path.isdir(ckpt_dir):
        return False
    return os.path.samefile(os.path.dirname(os.path.abspath(resume)), ckpt_dir)


def _global_step(checkpoint: str) -> int:
    """The optimisation steps a training checkpoint has behind it (where its resumed log goes on)."""
    from ..backbones.weights import torch_load

    return int(torch_load(checkpoint, mmap=True).get("global_step", 0))


def train(cfg: TrainConfig) -> Dict[str, Any]:
    """Train and return ``{"best": path, "last": path, "model": MedSeg-R checkpoint path, "steps": n,
    "precision": str, "deterministic": bool}``."""
    check_config(cfg)
    check_run_folder(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # a missing file or split fails before the run folder exists
    train_loader, val_loader = make_loaders(cfg)
    resume = resume_point(os.path.join(cfg.out, "checkpoints")) if cfg.resume == "auto" else cfg.resume
    # a resumed run's weights come from its resume point: the starting weights are not read again
    task = SegmentationTask(backbone=cfg.backbone, img_size=cfg.img_size, pretrained=cfg.pretrained,
                            checkpoint=cfg.checkpoint if resume is None else None,
                            model_options=cfg.model_options, lr=cfg.lr, weight_decay=cfg.weight_decay,
                            schedule=cfg.schedule, loss=cfg.loss, objective=cfg.objective,
                            backbone_lr=cfg.backbone_lr, feature_cache=cfg.feature_cache,
                            cache_dtype=cfg.cache_dtype, shift_augment=cfg.shift_augment,
                            image_augment=cfg.image_augment,
                            seed=cfg.seed)
    check_ignored_options(cfg, task.model)
    ckpt_dir = os.path.join(cfg.out, "checkpoints")
    # keep_epoch_checkpoints=False keeps the latest epoch alone (save_top_k=1 without a monitor):
    # with save_top_k=0 Lightning writes no last.ckpt before the end, and a killed run could not resume.
    # last.ckpt is a link to the latest epoch's file (a copy where links cannot be made), not a
    # second copy of it: a fine-tuned ViT-B's checkpoint is over a gigabyte. No version counter: the
    # first epoch's file records no last_model_path, so after a resume from it Lightning would take
    # the existing last.ckpt for another run's and link last-v1.ckpt instead, leaving last.ckpt on
    # epoch 0 for the next resume; a resumed run re-saving an epoch overwrites that epoch's file
    every_epoch = _MovableCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch:03d}", auto_insert_metric_name=False,
                                  save_top_k=-1 if cfg.keep_epoch_checkpoints else 1, every_n_epochs=1,
                                  save_last="link", enable_version_counter=False)
    best = _MovableCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/dice", mode="max",
                              save_top_k=1, enable_version_counter=False)
    # best before every_epoch: both save at the end of a training epoch, in this order, so that the
    # epoch's file (what a resumed run restores) holds best's state after this epoch's score, not
    # before it (a resumed run would otherwise forget a best epoch reached just before the kill)
    callbacks = ([best] if cfg.validate else []) + [every_epoch, _EpochToDataset()]
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    deterministic = (not gpu) if cfg.deterministic is None else cfg.deterministic
    precision = cfg.precision or default_precision(gpu)
    if cfg.progress:
        callbacks.append(_progress_bar())
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        trainer = L.Trainer(
            default_root_dir=cfg.out, max_epochs=cfg.epochs, accelerator=cfg.accelerator,
            devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=resolve_strategy(cfg),
            precision=precision, accumulate_grad_batches=cfg.accumulate, callbacks=callbacks,
            logger=RunLogger(cfg.out, resumed_step=_global_step(resume) if _own(resume, ckpt_dir) else None),
            log_every_n_steps=1,
            enable_progress_bar=cfg.progress, enable_model_summary=False,
            limit_train_batches=cfg.limit_train_batches, deterministic=deterministic,
            num_sanity_val_steps=0, limit_val_batches=None if cfg.validate else 0)
    except MisconfigurationException as exc:  # e.g. --strategy deepspeed without DeepSpeed
        raise ValueError(" ".join(str(exc).split())) from None
    # every option is checked (task, trainer) before the run folder is made
    os.makedirs(cfg.out, exist_ok=True)
    # the precision as given (None: the machine's default), so that a run resumed on another
    # machine takes that machine's default, as deterministic does
    task.run_settings = {"epochs": cfg.epochs, "precision": cfg.precision,
                         "model_weights": cfg.model_weights, "validate": cfg.validate,
                         "val_data": cfg.val_data, "describe_missing": cfg.describe_missing,
                         "keep_epoch_checkpoints": cfg.keep_epoch_checkpoints,
                         "deterministic": cfg.deterministic, "train_split": cfg.train_split,
                         "val_split": cfg.val_split, "checkpoint": cfg.checkpoint,
                         "accelerator": cfg.accelerator, "devices": cfg.devices,
                         "num_nodes": cfg.num_nodes, "strategy": cfg.strategy}
    task.loader_settings = {"batch_size": cfg.batch_size, "accumulate": cfg.accumulate,
                            "augment": cfg.augment, "limit_train_batches": cfg.limit_train_batches,
                            "dataset_options": dict(cfg.dataset_options or {}),
                            "training cases": cases_fingerprint(train_loader.dataset.records),
                            "validation cases": cases_fingerprint(val_loader.dataset.records)
                            if val_loader is not None else None,
                            # the processes share out the batches: another count, another run
                            "processes": trainer.world_size}
    if resume is not None:
        check_same_settings(resume, dict(task.hparams), epochs=cfg.epochs, loader=task.loader_settings)
    if trainer.is_global_zero:  # once the run is sure to go on (a refused resume leaves them as they were)
        _write_config(cfg)
        if cfg.describe_missing:
            _write_described(cfg, train_loader, val_loader)
    with warnings.catch_warnings():  # Lightning's own use of a deprecated torch API, once per run
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # A frozen image encoder stays in eval mode on purpose (MedSegR.train), which Lightning notes
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
        if resume is not None:  # a resumed run's folder holds its checkpoints, as it should
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        try:
            trainer.fit(task, train_loader, val_loader, ckpt_path=resume)
        except SystemExit as exc:  # Lightning ends a run stopped by Ctrl-C or SIGTERM this way
            # (with status 0 for SIGTERM): say where it stopped, and how to go on
            sigterm = type(exc).__name__ == "SIGTERMException"
            if not sigterm and not isinstance(exc.__context__, KeyboardInterrupt):
                raise
            raise TrainingStopped(
                f"training stopped by {'SIGTERM' if sigterm else 'Ctrl-C'} after "
                f"{trainer.global_step} optimisation steps (epoch {trainer.current_epoch + 1} of "
                f"{cfg.epochs}); no model.ckpt was written; continue the run with the same command "
                f"and --resume auto", status=143 if sigterm else 130) from None
        except RuntimeError as exc:
            if resume is None or "Error(s) in loading state_dict" not in str(exc):
                raise
            first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), "")
            raise ValueError(f"{resume} was written by a run of another model (another backbone or "
                             f"model options?) and does not fit this one: {first[:200]}") from None
    model_path = os.path.join(cfg.out, "model.ckpt")
    chosen, epoch, score = None, None, None
    if trainer.is_global_zero:
        chosen = every_epoch.last_model_path if cfg.model_weights == "last" else (
            best.best_model_path or every_epoch.last_model_path)
        step = trainer.global_step
        if cfg.validate and best.best_model_score is not None:
            score = float(best.best_model_score)
        if chosen:
            saved = torch.load(chosen, map_location="cpu", weights_only=False)
            task.load_state_dict(saved["state_dict"])
            step = saved.get("global_step", step)
            epoch = int(saved.get("epoch", -1)) + 1
            if score is None and cfg.validate:  # ddp_spawn / ddp_fork: the processes that trained
                score = _best_score(saved)  # kept the trainer's counts; the checkpoint has them
        save_model(task.model.cpu(), model_path, extra={"train_config": asdict(cfg), "weights_from": chosen,
                                                        "best_checkpoint": best.best_model_path,
                                                        "global_step": step})
    steps = trainer.global_step
    last = os.path.join(ckpt_dir, "last.ckpt")
    if not steps and os.path.exists(last):  # ddp_spawn / ddp_fork: counted in the processes
        steps = int(torch.load(last, map_location="cpu", weights_only=False, mmap=True).get("global_step", 0))
    return {"best": best.best_model_path, "last": every_epoch.last_model_path, "model": model_path,
            "steps": steps, "precision": precision, "deterministic": deterministic,
            "weights_from": chosen, "epoch": epoch, "best_val_dice": score,
            "main_process": trainer.is_global_zero}


DESCRIBED_REPORTS = "described_reports.jsonl"
RUN_CONFIG = "config.yaml"


def _write_config(cfg: TrainConfig) -> None:
    """``OUT/config.yaml``: every setting of the run, readable (Lightning's hparams.yaml holds the
    task's alone), and a config ``medseg-r train`` takes again from any folder (``resume`` left
    out; paths made absolute; the precision as given, None: the machine's default, as a resume
    takes it)."""
    import json

    import yaml

    settings = json.loads(json.dumps(asdict(cfg), default=str))  # plain types for YAML
    settings.pop("resume", None)
    for key in ("data", "val_data", "out", "checkpoint", "feature_cache"):
        value = settings.get(key)  # a checkpoint may be a shipped name rather than a path
        if isinstance(value, str) and value and (key != "checkpoint" or os.path.exists(value)):
            settings[key] = os.path.abspath(value)
    with atomic_write(os.path.join(cfg.out, RUN_CONFIG)) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("# the settings of this training run (medseg-r train RUN/config.yaml --out NEW "
                         "trains it again)\n")
            yaml.safe_dump(settings, handle, sort_keys=False)


def _write_described(cfg: TrainConfig, *loaders) -> None:
    """``OUT/described_reports.jsonl``: the reports ``--describe-missing`` wrote from the masks of
    cases whose report was empty (training and validation cases alike: the validation Dice of
    such cases is measured with reports made from their own reference masks), one row each."""
    import json

    rows = []
    for loader, split in zip(loaders, ("train", "val")):
        if loader is None:
            continue
        for record in loader.dataset.records:
            if record.described:
                rows.append({"id": record.id, "split": split, "report": record.report})
    if rows:
        with atomic_write(os.path.join(cfg.out, DESCRIBED_REPORTS)) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(row) + "\n" for row in rows)


def _best_score(saved: Dict[str, Any]) -> Optional[float]:
    """The best validation Dice a training checkpoint's ``best`` callback recorded, or None."""
    for key, state in (saved.get("callbacks") or {}).items():
        if "val/dice" in str(key) and isinstance(state, dict) and state.get("best_model_score") is not None:
            return float(state["best_model_score"])
    return None


class TrainingStopped(Exception):
    """A run stopped by a signal before its end: ``status`` is the exit status it asks for."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _RichEpochsFromOne(RichProgressBar):
    """Lightning's Rich bar counting epochs from 1 ("Epoch 1/2" for the first of two; its own says
    "Epoch 0/1"). A module-level class: ``ddp_spawn`` pickles the callbacks."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"Epoch {current_epoch + 1}/{self.trainer.max_epochs}"
        return f"{text:{len(self.validation_description)}}"  # as Lightning pads it


class _TQDMEpochsFromOne(TQDMProgressBar):
    """Lightning's tqdm bar counting epochs from 1 (see :class:`_RichEpochsFromOne`)."""

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")


def _progress_bar():
    """Lightning's progress bar (Rich where ``rich`` is installed, as Lightning chooses), counting
    epochs from 1."""
    import importlib.util

    return _RichEpochsFromOne() if importlib.util.find_spec("rich") else _TQDMEpochsFromOne()
