"""``make-data``, ``train``, ``evaluate`` and ``demo``: data, training and scoring."""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import warnings

from .common import UserError, check_device, json_arg, seed_int

# TrainConfig's defaults that `train --help` states (importing TrainConfig would load Lightning for
# --help; tests/cli/test_commands.py checks that the two agree)
TRAIN_DEFAULTS = {"backbone": "sam_tiny", "epochs": 10, "batch_size": 8, "lr": 1e-3, "loss": "dice_ce",
                  "schedule": "cosine", "accumulate": 1, "num_nodes": 1, "num_workers": 0, "seed": 0,
                  "cache_dtype": "float16"}


def _cmd_make_data(args) -> int:
    from collections import Counter

    from ..data.phantom import make_phantom

    if args.kind != "phantom":
        raise UserError(f"unknown data kind {args.kind!r} (known: phantom)")
    try:  # make_phantom refuses a folder it must not write into (check_phantom_folder)
        path = make_phantom(args.out, n=args.n, seed=args.seed, size=args.size, splits=args.splits)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    with open(path, encoding="utf-8") as handle:
        splits = Counter(json.loads(line).get("split") for line in handle if line.strip())
    wanted = args.splits or ["train", "val", "test"]
    held = [name for name in ("train", "val", "test") if name in wanted or splits.get(name)]
    print(f"{sum(splits.values())} of {args.n} cases ("
          f"{', '.join(f'{splits.get(name, 0)} {name}' for name in held)}); manifest: {path}")
    empty = [name for name in wanted if not splits.get(name)]
    if empty:  # training needs val cases, evaluation test cases
        print(f"medseg-r: warning: no {' or '.join(empty)} case among {args.n}: the splits take 70 % "
              f"/ 10 % / 20 % of the cases; give a larger --n", file=sys.stderr)
    return 0


def _launched_rank() -> bool:
    """Whether this process is one Lightning launched for another DDP rank (it runs the same
    command again): its notes and warnings would repeat the first process's, once per rank."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def _check_config_keys(fields: dict, config) -> None:
    """A key that is no TrainConfig field (a YAML typo, "epoch") named with the likely one."""
    import difflib
    from dataclasses import fields as dataclass_fields

    from ..engine.train import TrainConfig

    known = [f.name for f in dataclass_fields(TrainConfig)]
    for key in fields:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            raise UserError(f"unknown training option {key!r}" + (f" in {config}" if config else "")
                            + (f" (did you mean {near[0]!r}?)" if near else
                               f"; the options are {', '.join(known)}"))


def _backbone_of_checkpoint(fields: dict, quiet: bool) -> None:
    """A MedSeg-R model.ckpt given as --checkpoint without --backbone: its backbone (and image size,
    when none is given), as predict and build_model take them; other files leave the default."""
    from ..backbones.weights import torch_load
    from ..model.checkpoint import FORMAT

    try:
        held = torch_load(str(fields["checkpoint"]), mmap=True)
    except Exception:  # not readable here: the training's own checks say why
        return
    if isinstance(held, dict) and held.get("format") == FORMAT and held.get("backbone"):
        fields["backbone"] = held["backbone"]
        if not fields.get("img_size") and held.get("img_size"):
            fields["img_size"] = held["img_size"]
        if not quiet:
            size = f" at {fields['img_size']} px" if fields.get("img_size") else ""
            print(f"note: backbone {held['backbone']}{size}, as {fields['checkpoint']} was trained "
                  f"(--backbone to say so)", file=sys.stderr)


def _cmd_train(args) -> int:
    from ..engine.train import TrainConfig, TrainingStopped, train

    quiet = _launched_rank()
    if quiet:  # one copy of each note, warning and stop message per run
        warnings.simplefilter("ignore")
    fields = {}
    if args.config:
        try:
            import yaml

            with open(args.config, "r", encoding="utf-8") as handle:
                fields = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot read config {args.config}: {exc}") from None
        if not isinstance(fields, dict):
            raise UserError(f"config {args.config} must be a mapping of option: value, got a "
                            f"{type(fields).__name__}")
    for key in ("data", "val_data", "out", "backbone", "checkpoint", "img_size", "epochs", "batch_size", "lr", "accumulate", "precision",
                "accelerator", "devices", "num_nodes", "strategy", "num_workers", "seed", "resume", "loss",
                "schedule", "limit_train_batches", "model_weights", "objective", "backbone_lr",
                "feature_cache", "cache_dtype", "describe_missing", "shift_augment", "image_augment"):
        value = getattr(args, key, None)
        if value is not None:
            fields[key] = value
    for flag, key in (("options", "model_options"), ("dataset_options", "dataset_options")):
        if getattr(args, flag, None):
            held = fields.get(key) or {}
            if not isinstance(held, dict):
                raise UserError(f"{key} in {args.config} must be a mapping of option: value, "
                                f"got {held!r}")
            fields[key] = {**held, **json_arg(getattr(args, flag), "--" + flag.replace("_", "-"))}
    if args.no_augment:
        fields["augment"] = False
    if args.deterministic is not None:
        fields["deterministic"] = args.deterministic
    if args.keep_epoch_checkpoints is not None:
        fields["keep_epoch_checkpoints"] = args.keep_epoch_checkpoints
    if isinstance(fields.get("devices"), str) and fields["devices"].isdigit():
        fields["devices"] = int(fields["devices"])
    missing = [k for k in ("data", "out") if not fields.get(k)]
    if missing:
        raise UserError(f"missing {' and '.join('--' + m for m in missing)} (or set them in the config file)")
    resuming = None
    if fields.get("resume"):  # what the command leaves out is the run's own setting, not the default
        try:
            resuming = _resume_file(fields)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if resuming is None:
            if not quiet:
                print(f"note: --resume auto: {fields['out']} holds no checkpoint to resume from; "
                      f"the run starts anew", file=sys.stderr)
        else:
            fields = {**_resumed_settings(resuming), **fields}
    _check_config_keys(fields, args.config)
    if fields.get("checkpoint") and "backbone" not in fields and resuming is None:
        _backbone_of_checkpoint(fields, quiet)
    try:
        cfg = TrainConfig(**fields)
    except TypeError as exc:
        raise UserError(f"bad training option: {exc}") from None
    if resuming is None and not cfg.checkpoint and not quiet:
        _note_starting_weights(cfg)
    launcher = ("MASTER_ADDR", "NODE_RANK", "WORLD_SIZE", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID")
    if isinstance(cfg.num_nodes, int) and cfg.num_nodes > 1 and not quiet and \
            not any(os.environ.get(name) for name in launcher):
        print(f"note: --num-nodes {cfg.num_nodes}: training waits until every node has joined; start "
              f"the same command on each node with MASTER_ADDR, MASTER_PORT and NODE_RANK set (or "
              f"under SLURM or torchrun); none of these is set here", file=sys.stderr)
    try:
        from ..backbones.sam import RANDOM_WEIGHTS_WARNING

        with warnings.catch_warnings():  # the note above says so in the command's words
            warnings.filterwarnings("ignore", message=f".*{RANDOM_WEIGHTS_WARNING}")
            result = train(cfg)
    except TrainingStopped as exc:
        if not quiet:
            print(f"medseg-r: {exc}", file=sys.stderr)
        return exc.status
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    if result["main_process"]:  # one line per run, not per DDP process
        print(_done_line(result))
    return 0


def _note_starting_weights(cfg) -> None:
    """Say when a run starts from random weights (every backbone but LiteMedSAM, which ships its
    own, unless given --checkpoint); nothing for an unknown backbone (train refuses it)."""
    from ..backbones import list_backbones

    if cfg.backbone not in list_backbones():
        return
    if cfg.backbone == "sam_tiny":
        print("note: sam_tiny is a small SAM built from random weights (the default: a quick run that "
              "fits a CPU); for the pretrained LiteMedSAM give --backbone litemedsam", file=sys.stderr)
    elif cfg.backbone == "litemedsam" and not cfg.pretrained:
        print("note: pretrained: false: litemedsam starts from random weights (leave it out for "
              "LiteMedSAM's pretrained weights)", file=sys.stderr)
    elif cfg.backbone != "litemedsam":
        print(f"note: no --checkpoint: {cfg.backbone} starts from random weights; give the "
              f"backbone's weights file (e.g. sam_vit_b_01ec64.pth, medsam_vit_b.pth) as "
              f"--checkpoint to fine-tune the pretrained model", file=sys.stderr)


def _done_line(result) -> str:
    """What a finished run says: its steps, which epoch's weights went into model.ckpt and why."""
    model = os.path.relpath(result["model"])
    if result["weights_from"] is None:
        which = "its final weights"
    else:
        which = f"the weights of epoch {result['epoch']} ({os.path.relpath(result['weights_from'])}"
        which += (f", best validation Dice {result['best_val_dice']:.3f})"
                  if result["best_val_dice"] is not None and result["weights_from"] == result["best"]
                  else ", the last epoch)")
    line = f"done: {result['steps']} optimisation steps; {model} holds {which}"
    if result["best_val_dice"] == 0 and result["weights_from"] == result["best"]:
        line += ("; note: the validation Dice stayed 0 (every epoch tied: the first was kept): "
                 "train longer, or --model-weights last")
    return line


def _resume_file(fields):
    """The checkpoint ``--resume`` names (``auto``: the run folder's resume point), or None."""
    from ..engine.train_checks import resume_point

    resume = fields["resume"]
    if resume == "auto":
        return resume_point(os.path.join(str(fields["out"]), "checkpoints"))
    return resume


def _resumed_settings(resume: str) -> dict:
    """The settings of the run that the checkpoint ``resume`` belongs to."""
    from ..engine.train_checks import run_settings

    return run_settings(resume) if os.path.isfile(resume) else {}


def _batches(text: str):
    """``--limit-train-batches``: a whole number of batches, or a fraction in (0, 1]."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of batches or a fraction: {text!r}") from None


def _cmd_evaluate(args) -> int:
    from ..backbones.weights import CheckpointError
    from ..data.checks import check_files
    from ..data.datasets import CaseError
    from ..data.readers import dataset_option_names, has_splits, read_dataset, split_counts
    from ..engine.evaluate import check_case_ids, evaluate
    from ..io.output_folders import (CASES_CSV, OVERLAYS, PREDICTIONS, SUMMARY_JSON, check_evaluate_folder,
                                     finish_evaluate_outputs, start_evaluate_outputs)
    from ..model.checkpoint import trained_dataset_options
    from ..model.shipped import load_any, shipped_note

    if args.overlays < 0:
        raise UserError(f"--overlays must be >= 0, got {args.overlays}")
    if not 0.0 < args.threshold < 1.0:
        raise UserError(f"--threshold is a probability in (0, 1), got {args.threshold}")
    check_device(args.device)
    if args.out:
        try:
            check_evaluate_folder(args.out)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if args.dataset_options is not None:
        options = json_arg(args.dataset_options, "--dataset-options")
    else:  # a run's model.ckpt: the data read as the run read it (prompt, CT window ...)
        taken = dataset_option_names(args.data)
        options = {k: v for k, v in trained_dataset_options(args.checkpoint).items() if k in taken}
        if options:
            print(f"note: reading {args.data} with the run's dataset options {options} "
                  f"(--dataset-options to change them)", file=sys.stderr)
    try:  # the data and its files are checked before the model is loaded
        records, root = read_dataset(args.data, split=args.split, **options)
        if not records:
            whole = read_dataset(args.data, split=None, **options)[0]  # read once, for the message
            if not whole:
                raise UserError(f"{args.data} holds no case")
            raise UserError(f"no case in split {args.split!r} of {args.data} (its splits: "
                            f"{split_counts(whole)}; --split chooses)")
        check_files(records, root, args.split if has_splits(records) else "scored")
        if args.overlays or args.save_predictions:  # the ids name the overlay and mask files
            check_case_ids(records)
        model, shipped = load_any(args.checkpoint)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    if shipped is not None:
        print(shipped_note(shipped), file=sys.stderr)
    import torch

    model = model.to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not has_splits(records):
        print(f"medseg-r: warning: {args.data} has no split column: all its {len(records)} cases are "
              f"scored, including any the model was trained on", file=sys.stderr)
    created = bool(args.out) and not os.path.exists(args.out)
    # the new outputs are written aside and replace the earlier ones only when complete: Ctrl-C
    # or a bad case midway leaves the earlier evaluate's folder as it was
    staging = start_evaluate_outputs(args.out) if args.out else None
    try:
        summary = evaluate(model, records, root=root, size=model.img_size, out_dir=staging,
                           overlays=args.overlays, progress=True, save_predictions=args.save_predictions,
                           threshold=math.log(args.threshold / (1 - args.threshold)))
        if staging:
            finish_evaluate_outputs(args.out, staging)
            staging = None
    except CaseError as exc:  # pixels read only now (a NaN behind a good header): nothing written
        raise UserError(f"{exc}; no scores were written (fix or leave out that case)") from None
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
            if created and not os.listdir(args.out):
                os.rmdir(args.out)
    # the subsets the data has (the phantom's are all null on other data; summary.json keeps them)
    shown = {**summary, "subsets": {k: v for k, v in summary["subsets"].items()
                                    if v["n"] or v["negatives"]}}
    print(json.dumps(shown, indent=2))
    negating = summary["all_negative_reports"]["with_lesion"]
    if negating:
        print(f"medseg-r: note: {negating} scored case(s) with a lesion have a report that negates "
              f"every finding (does the report fit the mask?): evaluate scores the model's own masks "
              f"for them, where predict gives such a report an empty mask without running the model",
              file=sys.stderr)
    written = [os.path.join(args.out, name) for name in (CASES_CSV, SUMMARY_JSON)]
    written += [os.path.join(args.out, folder) + os.sep for folder, asked in
                ((PREDICTIONS, args.save_predictions), (OVERLAYS, args.overlays)) if asked]
    print(f"wrote {', '.join(written)}")
    return 0


def _cmd_demo(args) -> int:
    from ..engine.demo import run_demo

    try:
        run_demo(args.out, quick=args.quick, seed=args.seed, precision=args.precision,
                 train_models=args.train)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    return 0


def add_parsers(sub) -> None:
    """Add the ``make-data``, ``train``, ``evaluate`` and ``demo`` commands to the sub-parsers ``sub``."""
    p = sub.add_parser("make-data", help="generate the embedded phantom benchmark")
    p.add_argument("kind", choices=["phantom"], help="the data set to generate (phantom: synthetic "
                                                     "chest radiographs with reports)")
    p.add_argument("out", help="output folder")
    p.add_argument("--n", type=int, default=600, help="number of cases (default 600)")
    p.add_argument("--seed", type=seed_int, default=0,
                   help="generation seed (default 0, the accuracy benchmark's; the demo uses 1)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--splits", nargs="+", choices=["train", "val", "test"], default=None,
                   help="write only these splits' cases, drawn exactly as in a full generation "
                        "(default: all)")
    p.set_defaults(func=_cmd_make_data)

    p = sub.add_parser("train", help="train MedSeg-R (PyTorch Lightning)")
    p.add_argument("config", nargs="?", help="YAML file with TrainConfig fields (options below override it)")
    p.add_argument("--data", help="manifest (.jsonl/.csv), medvlsm .json, LViT folder or volume folder")
    p.add_argument("--val-data", dest="val_data", help="separate validation set (default: the 'val' split of --data)")
    p.add_argument("--out", help="run folder (checkpoints/, logs/, model.ckpt, config.yaml; with "
                                 "--describe-missing described_reports.jsonl)")
    p.add_argument("--backbone", help=f"a registered backbone (medseg-r backbones; default "
                                      f"{TRAIN_DEFAULTS['backbone']}, or the backbone a MedSeg-R "
                                      f"model.ckpt given as --checkpoint was trained on)")
    p.add_argument("--checkpoint", help="weights to start from: the backbone's own (SAM / MedSAM / "
                                        "LiteMedSAM file) or a MedSeg-R model.ckpt to fine-tune "
                                        "(default: LiteMedSAM's pretrained backbone weights for "
                                        "litemedsam; random weights for the other backbones)")
    p.add_argument("--img-size", dest="img_size", type=int,
                   help="encoder input side in pixels (default: the backbone's)")
    p.add_argument("--options", help='model options as JSON, e.g. \'{"priors": "none", "freeze": "none"}\'')
    p.add_argument("--epochs", type=int, help=f"default {TRAIN_DEFAULTS['epochs']}")
    p.add_argument("--batch-size", dest="batch_size", type=int,
                   help=f"cases per step and device (default {TRAIN_DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=float, help=f"AdamW learning rate (default {TRAIN_DEFAULTS['lr']:g})")
    p.add_argument("--loss", choices=["dice_ce", "dice_focal", "batch_dice_ce", "batch_dice_focal"],
                   help=f"MONAI Dice plus cross-entropy or focal loss, per image or over the batch "
                        f"(default {TRAIN_DEFAULTS['loss']})")
    p.add_argument("--schedule", choices=["cosine", "poly"],
                   help=f"learning-rate schedule over the run (default {TRAIN_DEFAULTS['schedule']})")
    p.add_argument("--accumulate", type=int,
                   help=f"gradient accumulation steps (default {TRAIN_DEFAULTS['accumulate']})")
    p.add_argument("--precision", help="e.g. 16-mixed, bf16-mixed, 32-true (default: 16-mixed on a "
                                       "GPU; on a CPU bf16-mixed where it has bfloat16 "
                                       "instructions, else 32-true)")
    p.add_argument("--accelerator", help="auto (default), cpu, gpu (or cuda), mps")
    p.add_argument("--devices", help="number of devices (DDP when > 1)")
    p.add_argument("--num-nodes", dest="num_nodes", type=int,
                   help=f"machines of a multi-node DDP run (default {TRAIN_DEFAULTS['num_nodes']})")
    p.add_argument("--strategy", help="auto, ddp, ddp_spawn ... (default auto)")
    p.add_argument("--num-workers", dest="num_workers", type=int,
                   help=f"data-loading processes (default {TRAIN_DEFAULTS['num_workers']}: the main "
                        f"process)")
    p.add_argument("--seed", type=seed_int, help=f"seed of weights, order and augmentation (default "
                                            f"{TRAIN_DEFAULTS['seed']})")
    p.add_argument("--limit-train-batches", dest="limit_train_batches", type=_batches,
                   help="at most this many batches per epoch, or a fraction of them in (0, 1] "
                        "(a quick check; default: all)")
    p.add_argument("--no-augment", action="store_true", help="no flips")
    p.add_argument("--model-weights", dest="model_weights", choices=["best", "last"],
                   help="weights written to OUT/model.ckpt: best validation Dice (default) or the last epoch")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=None,
                   help="deterministic kernels (default: on CPU yes, on GPU no)")
    p.add_argument("--resume", help="a Lightning checkpoint, or 'auto' for OUT/checkpoints/last.ckpt (or the "
                        "latest epochNNN.ckpt there when last.ckpt is missing)")
    p.add_argument("--objective", choices=["segmentation", "localisation", "both", "reference_boxes"],
                   help="train on the masks (default), the box head alone (model option report_box; "
                        "the decoder is not run), both, or the mask decoder on jittered boxes around "
                        "the reference lesions (reference_boxes: the report is not read)")
    p.add_argument("--backbone-lr", dest="backbone_lr", type=float,
                   help="learning rate of the pretrained SAM parts that train (default: --lr)")
    p.add_argument("--feature-cache", dest="feature_cache",
                   help="folder caching the frozen encoder's features (computed once per image)")
    p.add_argument("--cache-dtype", dest="cache_dtype", choices=["float16", "float32"],
                   help=f"precision of the cached features on disk (default "
                        f"{TRAIN_DEFAULTS['cache_dtype']})")
    p.add_argument("--shift-augment", dest="shift_augment", type=int,
                   help="translate training batches by up to K cells of the cached site (default 0)")
    p.add_argument("--image-augment", dest="image_augment", type=float,
                   help="warp (zoom, aspect, rotation) and re-tone (gamma, contrast, brightness, "
                        "noise) the training images at strength S (1: zoom within about 15%%, "
                        "rotation within 6 degrees, ...; the ranges scale with S); only for an image "
                        "localiser (model option box_input=image) trained with --objective "
                        "localisation (default 0: off)")
    p.add_argument("--describe-missing", dest="describe_missing", action="store_true", default=None,
                   help="describe cases with an empty report from their masks (medseg-r describe)")
    p.add_argument("--dataset-options", dest="dataset_options",
                   help='how to read --data, as JSON (e.g. \'{"prompt": "p5"}\' for a medvlsm .json, '
                        '\'{"window": [-600, 1500], "empty_fraction": 0.1}\' for a volume folder); '
                        'merged over the config file\'s dataset_options')
    p.add_argument("--keep-epoch-checkpoints", dest="keep_epoch_checkpoints",
                   action=argparse.BooleanOptionalAction, default=None,
                   help="keep every epoch's Lightning checkpoint in RUN/checkpoints (default; about "
                        "36 MB each for sam_tiny, 89 MB for litemedsam); --no-keep-epoch-checkpoints "
                        "keeps the latest epoch's, last.ckpt and best.ckpt")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate", help="Dice, IoU, HD95, small-lesion sensitivity, FP rate; per subset",
        description="Score a checkpoint on a data set's split: Dice, IoU, HD95 (pixels of each image; a "
                    "missed lesion scores the image's diagonal), small-lesion sensitivity, and the "
                    "false-positive rate on lesion-free cases; overall and per subset tag (the "
                    "phantom's subsets always, null on data without them). Prints the summary and "
                    "writes OUT/cases.csv (one row per case) and OUT/summary.json.",
        epilog="exit status: 0 done, 2 a usage or input error (nothing written), 130 interrupted "
               "(an earlier evaluate's outputs in OUT are left as they were)")
    p.add_argument("--checkpoint", required=True,
                   help="MedSeg-R checkpoint (model.ckpt of a run), or shipped weights: their file or "
                        "name (litemedsam_phantom, litemedsam_phantom_none, ...)")
    p.add_argument("--data", required=True,
                   help="a data set as train reads it (manifest, medvlsm .json, LViT or volume folder)")
    p.add_argument("--split", default="test",
                   help="the split scored (default test; a data set without splits is scored whole)")
    p.add_argument("--dataset-options", dest="dataset_options",
                   help='how to read --data, as train\'s dataset_options, as JSON (e.g. \'{"prompt": '
                        '"p5"}\' or \'{"window": [-600, 1500]}\'; default: those the run was trained with)')
    p.add_argument("--out", required=True,
                   help="folder for cases.csv, summary.json and overlays: new, empty or an earlier "
                        "evaluate's (whose outputs are replaced once the new ones are complete)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="probability threshold of the masks scored (default 0.5, as predict's)")
    p.add_argument("--save-predictions", dest="save_predictions", action="store_true",
                   help="also write each predicted mask as OUT/predictions/ID.png (0/255, the case's "
                        "own size)")
    p.add_argument("--overlays", type=int, default=0,
                   help="write pictures of the first N cases (OUT/overlays/ID.png: the image as the "
                        "model saw it, as predict draws it: mask red, reference outline green, the "
                        "location attention beside it, the report with its evidence coloured, and "
                        "the case id with its Dice, IoU and HD95 above; default 0: none)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("demo", help="fresh phantom test cases -> the shipped MedSeg-R and its two "
                                    "baselines -> one table (CPU)")
    p.add_argument("--out", default="medseg_r_demo",
                   help="output folder (default medseg_r_demo; a rerun reuses its data and encodings)")
    p.add_argument("--quick", action="store_true", help="fewer cases (a smoke test of the pipeline)")
    p.add_argument("--train", action="store_true",
                   help="train the three models here instead of using the shipped ones (longer)")
    p.add_argument("--seed", type=seed_int, default=1,
                   help="phantom seed (default 1; the shipped models were trained on seeds 0 and 2)")
    p.add_argument("--precision", help="precision of training and scoring: 32-true (default) or "
                                       "bf16-mixed (overall Dice within about 0.005 of fp32's, the "
                                       "subsets by more; scoring is 7 to 15 times slower on a CPU "
                                       "without bfloat16 instructions, where it is emulated)")
    p.set_defaults(func=_cmd_demo)
