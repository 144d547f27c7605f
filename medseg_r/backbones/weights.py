"""Loading backbone weights strictly, with shape adaptation for other input sizes."""
from __future__ import annotations

import os
import pickle
import warnings
from typing import Any, Dict, Mapping, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: names the offending keys."""


def torch_load(path: str | os.PathLike, *, mmap: bool = False):
    """``torch.load`` (tensors only, on CPU) whose failures are one clear :class:`CheckpointError`.
    ``mmap``: map the tensors from the file instead of reading them (to look at a large file's
    keys)."""
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch's note on an unusual pickle protocol: not a checkpoint
            warnings.simplefilter("ignore", UserWarning)
            zipped = _head(path)[:2] == b"PK"  # torch maps only its zip format
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipped)
    except Exception as exc:  # torch raises several types for corrupt/truncated/non-torch files
        raise CheckpointError(f"cannot read checkpoint {path}: {_load_failure(path, exc)}") from None


def _head(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(4)


def _load_failure(path, exc: Exception) -> str:
    """Why ``torch.load`` failed, in words: torch's own message for a file that is not a checkpoint
    at all is advice on loading it unsafely (``weights_only=False``), which this package never
    does."""
    head = _head(path)
    if not head:
        return "the file is empty"
    if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc):
        pickled = head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5  # protocols 2-5
        if head[:2] != b"PK" and not pickled:
            return "not a PyTorch checkpoint file"
        return ("it holds Python objects other than tensors and plain values, which are not loaded "
                "(loading them would run code from the file)")
    detail = (str(exc).strip().splitlines() or ["unreadable"])[0].split(". ")[0][:160]
    return f"{type(exc).__name__}: {detail} (a truncated or damaged file?)"


MEDSEG_CHECKPOINT, SHIPPED_WEIGHTS, TRAINING_CHECKPOINT = "checkpoint", "shipped", "training"
TRAINING_ADVICE = ("a Lightning training checkpoint such as checkpoints/best.ckpt: use the run's "
                   "model.ckpt, which train writes from it")


def medseg_file_kind(obj: Any) -> Optional[str]:
    """Which of MedSeg-R's own files a loaded object is: :data:`MEDSEG_CHECKPOINT` (``save_model``),
    :data:`SHIPPED_WEIGHTS` or :data:`TRAINING_CHECKPOINT` (Lightning's, of a MedSeg-R run); ``None``
    for any other (backbone weights, a checkpoint of another program)."""
    if not isinstance(obj, Mapping):
        return None
    if obj.get("format") == "medseg-r":
        return MEDSEG_CHECKPOINT
    if obj.get("format") == "medseg-r-shipped":
        return SHIPPED_WEIGHTS
    state = obj.get("state_dict")
    if "pytorch-lightning_version" in obj and isinstance(state, Mapping) \
            and any(str(k).startswith("model.sam.") for k in state):
        return TRAINING_CHECKPOINT
    return None


def what_medseg_file_is(obj: Any) -> Optional[str]:
    """What :func:`medseg_file_kind` found, and what to do with it, in words; ``None`` as it."""
    kind = medseg_file_kind(obj)
    if kind == MEDSEG_CHECKPOINT:
        return "a MedSeg-R checkpoint: give it as --checkpoint, or load it with medseg_r.load_model"
    if kind == SHIPPED_WEIGHTS:
        return (f"the shipped MedSeg-R weights {obj.get('name')!r}: give the file or its name as "
                f"--checkpoint, or load them with medseg_r.model.shipped.load_any")
    if kind == TRAINING_CHECKPOINT:
        return TRAINING_ADVICE
    return None


def read_state_dict(path: str | os.PathLike) -> Dict[str, torch.Tensor]:
    """Read a state dict from ``path``; unwraps ``{"model": ...}`` / ``{"state_dict": ...}`` and ``module.``."""
    obj = torch_load(path)
    what = what_medseg_file_is(obj)
    if what:
        raise CheckpointError(f"{path} is neither a MedSeg-R model nor backbone weights: it is {what}")
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _resize_pos_embed(value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    # SAM's absolute positional embedding is [1, H, W, C]: resample the grid bicubically.
    grid = value.permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=(shape[1], shape[2]), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).to(value.dtype)


def _resize_rel_pos(value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    # Relative position tables are [2*size-1, head_dim]: linear resampling, as SAM does at run time.
    table = value.t().unsqueeze(0).float()
    table = F.interpolate(table, size=shape[0], mode="linear", align_corners=False)
    return table.squeeze(0).t().to(value.dtype)


def adapt_state_dict(state: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """Resize positional tables in ``state`` to the shapes ``model`` was built with (other input size)."""
    own = model.state_dict()
    out = dict(state)
    for key, value in state.items():
        if key not in own or own[key].shape == value.shape:
            continue
        if key.endswith("pos_embed") and value.ndim == 4:
            out[key] = _resize_pos_embed(value, own[key].shape)
        elif (key.endswith("rel_pos_h") or key.endswith("rel_pos_w")) and value.ndim == 2:
            out[key] = _resize_rel_pos(value, own[key].shape)
    return out


def _listing(keys, limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_strict(model: nn.Module, state: Dict[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """Load ``state`` into ``model``; any missing, unexpected or mis-shaped key is a :class:`CheckpointError`."""
    own = model.state_dict()
    missing = set(own) - set(state)
    unexpected = set(state) - set(own)
    mismatched = {k for k in set(own) & set(state) if own[k].shape != state[k].shape}
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    if mismatched:
        detail = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in sorted(mismatched)]
        problems.append(f"{len(mismatched)} key(s) with the wrong shape: {_listing(detail, 4)}")
    if problems:
        raise CheckpointError(f"{source} does not match the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def refresh_eval_caches(module: nn.Module, *_: object) -> None:
    """Rebuild what modules in eval mode derived from their weights when they were put in it.

    TinyViT's attention (LiteMedSAM's encoder) keeps an eval-mode copy of its attention biases, a
    buffer that is not saved: loading weights into a model already in eval mode would leave the
    copy of the weights it had before. Every module in eval mode whose own ``train`` does more than
    set the flag (and whose submodules are all in eval mode too, so that no mode changes) is put in
    eval mode again. Also a ``load_state_dict`` post hook (its extra arguments are ignored)."""
    for m in module.modules():
        if not m.training and type(m).train is not nn.Module.train \
                and not any(c.training for c in m.modules()):
            m.train(False)


def patch_grid(img_size: int, patch: int) -> int:
    if img_size % patch:
        raise ValueError(f"img_size {img_size} must be a multiple of the patch size {patch}")
    return img_size // patch


__all__ = ["CheckpointError", "MEDSEG_CHECKPOINT", "SHIPPED_WEIGHTS", "TRAINING_CHECKPOINT",
           "adapt_state_dict", "load_strict", "medseg_file_kind", "patch_grid", "read_state_dict",
           "refresh_eval_caches", "torch_load", "what_medseg_file_is"]
