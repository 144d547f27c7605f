"""What the commands share: the user-error type, the optional-dependency check, JSON arguments and
loading a model from ``--checkpoint``/``--backbone``/``--untrained``."""
from __future__ import annotations

import sys
from typing import List, Optional


class UserError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


def need_extra(extra: str, modules: List[str], command: str) -> None:
    """A command whose optional dependencies are missing stops here, before any work, with the
    install line (not with a traceback once the model has loaded)."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{command} needs {', '.join(missing)}: pip install 'medseg-r[{extra}]' "
                        f"(from a clone: pip install '.[{extra}]')")


def json_arg(text: Optional[str], what: str) -> dict:
    """The JSON object an option gives (``{}`` when it is not given); anything else is a
    :class:`UserError` naming the option ``what``."""
    if not text:
        return {}
    from ..io.jsonl import parse_json_object

    try:
        return parse_json_object(text)
    except ValueError as exc:
        raise UserError(f"{what} must be a JSON object: {exc}") from None


def _whole_number(text: str, *, least: int) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse reports anything else as a usage error)."""
    return _whole_number(text, least=1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0 (a count that may be zero)."""
    return _whole_number(text, least=0)


def seed_int(text: str) -> int:
    """An argparse type for seeds: a whole number >= 0 (numpy's generators take no negative seed)."""
    return _whole_number(text, least=0)


def check_device(value: Optional[str]) -> None:
    """``--device`` before the model loads: a device torch knows, and CUDA only where there is one
    (a :class:`UserError` otherwise)."""
    if value is None:
        return
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {value!r} is not a device (cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {value}: no CUDA GPU is available here (use cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {value}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type != "cpu":
        raise UserError(f"--device {value!r}: MedSeg-R runs on cpu or cuda")


def model_from_args(args):
    """(model, trained): a MedSeg-R checkpoint or shipped weights (by file or name), else the weights
    that ship for the backbone (unless ``--untrained``), else the backbone (``--checkpoint``: its
    weights) with untrained (zero-gated) MedSeg-R modules."""
    from ..backbones.weights import MEDSEG_CHECKPOINT, SHIPPED_WEIGHTS, CheckpointError
    from ..model import build_model
    from ..model.shipped import checkpoint_kind, default_for, load_any, load_shipped, shipped_note

    if args.checkpoint and getattr(args, "untrained", False):
        raise UserError("--untrained and --checkpoint exclude each other: --untrained uses the "
                        "backbone without trained MedSeg-R weights")
    try:
        if args.checkpoint and checkpoint_kind(args.checkpoint) in (MEDSEG_CHECKPOINT, SHIPPED_WEIGHTS):
            model, info = load_any(args.checkpoint, expect_backbone=args.backbone)
            if info is not None:
                model.shipped_info = info
                print(shipped_note(info), file=sys.stderr)
            return model, True
        backbone = args.backbone or "litemedsam"
        shipped = None if args.checkpoint or getattr(args, "untrained", False) else default_for(backbone)
        if shipped:
            model, info = load_shipped(shipped)
            model.shipped_info = info
            print(shipped_note(info), file=sys.stderr)
            return model, True
        return build_model(backbone, checkpoint=args.checkpoint), False
    except (CheckpointError, ValueError) as exc:  # a bad checkpoint, an unknown backbone
        raise UserError(str(exc)) from None


def model_info(model, checkpoint: Optional[str], trained: bool) -> dict:
    """What a prediction's JSON says about its model (``predict`` and ``serve`` alike): backbone,
    checkpoint, whether the report modules are trained and, for shipped weights, on which data
    they were trained and that they are not for clinical use."""
    info = {"backbone": model.backbone_name, "checkpoint": checkpoint, "trained_priors": trained}
    if getattr(model, "shipped_info", None):
        info["shipped_weights"] = model.shipped_info
    return info
