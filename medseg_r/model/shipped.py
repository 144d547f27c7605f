"""MedSeg-R weights that ship inside the package, so that a first try gives a sensible mask.

Only what differs from the pretrained backbone is stored (MedSeg-R's own modules, and any backbone
tensor that training changed), in fp16: a few MB. A fine-tuned mask decoder that several models share
(the accuracy benchmark's ``decoder_boxes``, which reads no report) is stored once, under
``decoders/``, and named by each model's file; it is stored as its difference from the pretrained
decoder, in int8 with one scale per row (half the bytes of fp16, and closer to the trained weights:
fine-tuning moves a weight by far less than its own size). The file also says on which data and
with which recipe the weights were trained, and what they measured; every command that uses them
prints it.
They were trained on the synthetic phantom chest radiographs of this package, not on patients:
they show the method, they are not for clinical use.

    python -m medseg_r.model.shipped RUN/model.ckpt --name litemedsam_phantom   # write a file
    python -m medseg_r.benchmarks.shipped_scores --out DIR --write   # measure and store the figures
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict, List, Optional

import torch

from ..io import atomic_write

FORMAT = "medseg-r-shipped"
DECODER_FORMAT = "medseg-r-shipped-decoder"
DECODER_KEYS = "sam.mask_decoder."  # the state-dict prefix of a shared decoder part
# file versions this code reads: 2 names a shared decoder (a reader of version 1 would silently
# load the pretrained decoder instead, so those files say 2)
VERSIONS = (1, 2)
# shared decoder files: 1 holds the fine-tuned tensors in fp16, 2 their difference from the
# pretrained ones in int8 (one scale per row: _encode_delta)
DECODER_VERSIONS = (1, 2)
HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
# the weights predict uses when no checkpoint is given
DEFAULT = {"litemedsam": "litemedsam_phantom"}
NOT_CLINICAL = "not on patients; they show the method and are not for clinical use"
NOTICE = ("MedSeg-R weights shipped with the package: trained on synthetic phantom chest "
          f"radiographs (medseg-r make-data phantom), {NOT_CLINICAL}")


def shipped_note(info: Dict[str, Any]) -> str:
    """The line ``predict`` prints when it uses shipped weights: on which data they were trained
    and that they are not for clinical use."""
    if info.get("trained_on"):
        return (f"note: MedSeg-R weights shipped with the package, trained on {info['trained_on']}: "
                f"{NOT_CLINICAL}.")
    return f"note: {info.get('notice') or NOTICE}."


def shipped_path(name: str, directory: str = HERE) -> str:
    return os.path.join(directory, f"{name}.pt")


def decoder_path(name: str, directory: str = HERE) -> str:
    return os.path.join(directory, "decoders", f"{name}.pt")


def default_for(backbone: str) -> Optional[str]:
    """The shipped weights for ``backbone``, when the package has them."""
    name = DEFAULT.get(backbone)
    return name if name and os.path.isfile(shipped_path(name)) else None


def shipped_names(directory: str = HERE) -> List[str]:
    """The shipped weights files of ``directory``, by name (none when it does not exist)."""
    return sorted(f[:-3] for f in os.listdir(directory) if f.endswith(".pt")) \
        if os.path.isdir(directory) else []


def _read_shipped(path: str) -> Dict[str, Any]:
    """The payload of the shipped weights file ``path``; a clear error when it is not one."""
    from ..backbones.weights import CheckpointError, torch_load

    payload = torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a shipped MedSeg-R weights file")
    if payload.get("version", 1) not in VERSIONS:
        raise CheckpointError(f"{path} is shipped-weights version {payload.get('version')}; this "
                              f"MedSeg-R reads versions {VERSIONS} (upgrade the package)")
    return payload


def load_shipped(name: str, *, directory: str = HERE):
    """The MedSeg-R model of shipped weights ``name`` (in ``directory``), in eval mode, and their
    description. ``name`` may also be the path of a shipped weights file, under any name: the
    shared decoder it names is then read from ``decoders/`` beside it."""
    from ..backbones.weights import CheckpointError
    from .build import build_model

    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"shipped weights are named by text or a path ({', '.join(shipped_names())}), "
                        f"got {type(name).__name__}")
    name = os.fspath(name)
    if os.path.isfile(name):
        path = name
        directory = os.path.dirname(os.path.abspath(name))
    else:
        path = shipped_path(name, directory)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no shipped weights {name!r} ({path}); this checkout has {shipped_names(directory)}"
                if os.path.isdir(directory) else f"no shipped weights in {directory}")
    payload = _read_shipped(path)
    model = build_model(payload["backbone"], img_size=payload.get("img_size"), **payload["options"])
    own = model.state_dict()
    delta = payload["state_dict"]
    unknown = sorted(set(delta) - set(own))
    missing = sorted(k for k in own if not k.startswith("sam.") and k not in delta)
    if unknown or missing:
        raise CheckpointError(f"{path} does not match the model: unknown {unknown[:4]}, "
                              f"missing {missing[:4]}")
    if payload.get("decoder"):  # a shared fine-tuned decoder, stored once (decoders/)
        part = _read_decoder(payload["decoder"], directory, backbone=payload["backbone"],
                             reference=own)
        delta = {**delta, **part}
    own.update({k: v.to(own[k].dtype) for k, v in delta.items()})
    model.load_state_dict(own, strict=True)
    return model.eval(), {**{k: payload[k]
                             for k in ("name", "trained_on", "recipe", "metrics", "notice")},
                          "decoder": payload.get("decoder")}


def checkpoint_kind(value: str | os.PathLike) -> Optional[str]:
    """Which of MedSeg-R's own files a ``--checkpoint`` value names
    (:func:`~medseg_r.backbones.weights.medseg_file_kind`, the file's tensors mapped, not read):
    ``SHIPPED_WEIGHTS`` also for one of :func:`shipped_names` that is no file or folder here;
    ``None`` for backbone weights, a missing path or a folder."""
    from ..backbones.weights import SHIPPED_WEIGHTS, medseg_file_kind, torch_load

    value = os.fspath(value)
    if not os.path.exists(value):
        return SHIPPED_WEIGHTS if value in shipped_names() else None
    return medseg_file_kind(torch_load(value, mmap=True)) if os.path.isfile(value) else None


def is_shipped(value: str | os.PathLike) -> bool:
    """Whether ``value`` names shipped weights: by name, or a shipped weights file anywhere, under
    any name (:func:`checkpoint_kind`)."""
    from ..backbones.weights import SHIPPED_WEIGHTS

    return checkpoint_kind(value) == SHIPPED_WEIGHTS


def stored_options(value: str | os.PathLike) -> Optional[Dict[str, Any]]:
    """The model options a ``--checkpoint`` value's file records (a MedSeg-R checkpoint or shipped
    weights, by file or name; read with the tensors mapped, so a command can refuse what it cannot
    do before loading the model); ``None`` when there are none to read."""
    from ..backbones.weights import CheckpointError, torch_load

    value = os.fspath(value)
    path = value if os.path.exists(value) else shipped_path(value, HERE)
    if not os.path.isfile(path):
        return None
    try:
        obj = torch_load(path, mmap=True)
    except CheckpointError:
        return None
    options = obj.get("options") if isinstance(obj, dict) else None
    return dict(options) if isinstance(options, dict) else None


def load_any(value: str | os.PathLike, *, expect_backbone: Optional[str] = None):
    """``(model, info)`` from what a command's ``--checkpoint`` names: a MedSeg-R checkpoint
    (``model.ckpt`` of a run, :func:`~medseg_r.model.checkpoint.load_model`; ``info`` None) or
    shipped weights, by name or file (:func:`is_shipped`; ``info`` their description). A file of
    neither kind is a ``CheckpointError`` saying what it is."""
    from ..backbones.weights import CheckpointError
    from .checkpoint import load_model

    value = os.fspath(value)
    if not is_shipped(value):
        return load_model(value, expect_backbone=expect_backbone), None
    try:
        model, info = load_shipped(value)
    except FileNotFoundError as exc:  # a copied file without the decoders/ folder beside it
        hint = f": copy the decoders/ folder of the package's weights beside {value}" \
            if os.path.isfile(value) else ""
        raise CheckpointError(f"{exc}{hint}") from None
    if expect_backbone is not None and model.backbone_name != expect_backbone:
        raise CheckpointError(f"{value} are weights for backbone {model.backbone_name!r}, not "
                              f"{expect_backbone!r}")
    return model, info


def load_pretrained(name: str = DEFAULT["litemedsam"], *, directory: str = HERE):
    """The shipped MedSeg-R model ``name`` (:func:`shipped_names`; default: MedSeg-R on LiteMedSAM),
    ready to predict, in eval mode: what ``medseg-r predict`` uses when no checkpoint is given.

    The weights were trained on synthetic phantom chest radiographs, not on patients; they show the
    method and are not for clinical use. Their description (training data, recipe, measured
    figures) is ``model.shipped_info``.

    Raises:
        FileNotFoundError: no shipped weights ``name``.
    """
    model, info = load_shipped(name, directory=directory)
    model.shipped_info = info
    return model


def _reference_key(reference: Dict[str, torch.Tensor], keys) -> str:
    """A fingerprint of the pretrained tensors ``keys`` of ``reference``: a version-2 decoder file
    records the one it was stored against, so that a loader whose pretrained decoder differs (a
    randomly initialised backbone, or other pretrained weights) refuses it instead of adding the
    differences to the wrong weights."""
    import hashlib

    h = hashlib.sha1()
    for key in sorted(keys):
        h.update(key.encode() + b"\0" + reference[key].detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _quantisable(value: torch.Tensor) -> bool:
    return value.is_floating_point() and value.numel() > 0


def _encode_delta(value: torch.Tensor, reference: torch.Tensor) -> Dict[str, torch.Tensor]:
    """``value - reference`` as int8 (``q``, the tensor's shape) with one fp32 ``scale`` per row
    (the first dimension; one for a 0- or 1-d tensor): ``reference + q * scale`` restores ``value``
    within half a scale step."""
    delta = value.detach().float() - reference.detach().float()
    rows = delta.reshape(delta.shape[0] if delta.dim() >= 2 else 1, -1)
    scale = rows.abs().amax(dim=1) / 127
    q = (rows / scale.clamp_min(torch.finfo(torch.float32).tiny)[:, None]).round().clamp(-127, 127)
    return {"q": q.to(torch.int8).reshape(delta.shape), "scale": scale}


def _decode_delta(encoded: Dict[str, torch.Tensor], reference: torch.Tensor) -> torch.Tensor:
    scale = encoded["scale"]
    delta = encoded["q"].float().reshape(scale.shape[0], -1) * scale[:, None]
    return (reference.float() + delta.reshape(reference.shape)).to(reference.dtype)


def _read_decoder(name: str, directory: str, *, backbone: str,
                  reference: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The tensors of shared decoder ``name``, checked against ``reference``, the pretrained
    model's state dict (a version-2 file holds the differences from it)."""
    from ..backbones.weights import CheckpointError, torch_load

    path = decoder_path(name, directory)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"shared decoder {name!r} is missing ({path})")
    payload = torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != DECODER_FORMAT:
        raise CheckpointError(f"{path} is not a shipped MedSeg-R decoder file")
    if payload.get("backbone") != backbone:
        raise CheckpointError(f"{path} is a decoder of {payload.get('backbone')!r}, not {backbone!r}")
    version = payload.get("version", 1)
    if version not in DECODER_VERSIONS:
        raise CheckpointError(f"{path} is shared-decoder version {version}; this MedSeg-R reads "
                              f"versions {DECODER_VERSIONS} (upgrade the package)")
    if version == 1:  # every tensor as it is (fp16)
        held, exact, scales = {}, payload["state_dict"], {}
    else:
        held, exact = payload["state_dict"], payload.get("exact", {})
        scales = payload.get("scales", {})
    unknown = sorted(set(held) - set(reference)) + sorted(set(exact) - set(reference))
    wrong = sorted(k for k, q in {**held, **exact}.items()
                   if k in reference and q.shape != reference[k].shape)
    if unknown or wrong or set(scales) != set(held):
        raise CheckpointError(f"{path} does not match the model: unknown {unknown[:4]}, other "
                              f"shapes {wrong[:4]}, scales for {len(scales)} of {len(held)} tensors")
    if version == 2 and payload.get("reference") != _reference_key(reference, held):
        raise CheckpointError(f"{path} holds differences from another pretrained {backbone} "
                              f"decoder than this one: it cannot be restored")
    return {**{k: _decode_delta({"q": q, "scale": scales[k]}, reference[k])
               for k, q in held.items()}, **exact}


def _write_decoder(name: str, state: Dict[str, torch.Tensor], *, reference: Dict[str, torch.Tensor],
                   backbone: str, trained_on: str, recipe: Dict[str, Any], directory: str) -> str:
    """Store a shared decoder part (``state``: its trained tensors; ``reference``: the pretrained
    model's state dict), as int8 differences; a file of that name holding other weights is an
    error (the models that name it would change)."""
    path = decoder_path(name, directory)
    encoded = {k: _encode_delta(v, reference[k]) for k, v in state.items() if _quantisable(v)}
    exact = {k: v for k, v in state.items() if not _quantisable(v)}  # integers, empty tensors
    if os.path.isfile(path):
        try:
            held = _read_decoder(name, directory, backbone=backbone, reference=reference)
        except Exception as exc:  # another format, or another reference
            raise ValueError(f"shared decoder {name!r} ({path}) cannot be compared with these "
                             f"weights ({exc}): delete it first, or name another") from None
        wanted = {**{k: _decode_delta(e, reference[k]) for k, e in encoded.items()}, **exact}
        if set(held) != set(wanted) or any(not torch.equal(held[k], wanted[k]) for k in wanted):
            raise ValueError(f"shared decoder {name!r} ({path}) holds other weights (or the "
                             f"same in an older format): delete it first, or name another")
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = {"format": DECODER_FORMAT, "version": 2, "name": name, "backbone": backbone,
               "state_dict": {k: e["q"] for k, e in encoded.items()},
               "scales": {k: e["scale"] for k, e in encoded.items()}, "exact": exact,
               "reference": _reference_key(reference, encoded),
               "trained_on": trained_on, "recipe": recipe}
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return path


def export_shipped(checkpoint: str, name: str, *, trained_on: str, recipe: Dict[str, Any],
                   metrics: Dict[str, Any], directory: str = HERE,
                   decoder: Optional[str] = None) -> str:
    """Write the shipped file of a trained MedSeg-R checkpoint: its own modules and the backbone
    tensors that differ from the pretrained backbone, in fp16. ``decoder``: store the mask
    decoder's changed tensors once, as the shared part of that name (``decoders/NAME.pt``: their
    differences from the pretrained decoder, int8), which the file then names (models that share
    one fine-tuned decoder)."""
    from .build import build_model
    from .checkpoint import load_model

    model = load_model(checkpoint)
    reference = build_model(model.backbone_name, img_size=model.img_size,
                            **model.options).state_dict()
    state = model.state_dict()
    delta = {}
    for key, value in state.items():
        if not key.startswith("sam.") or not torch.equal(value, reference[key]):
            delta[key] = value.half() if value.is_floating_point() else value
    if decoder:
        part = {k: state[k] for k in [k for k in delta if k.startswith(DECODER_KEYS)]}
        for key in part:
            del delta[key]
        if not part:
            raise ValueError(f"{checkpoint} has the pretrained mask decoder: there is no decoder "
                             f"part to share")
        _write_decoder(decoder, part, reference=reference, backbone=model.backbone_name,
                       trained_on=trained_on, recipe=recipe, directory=directory)
    payload = {"format": FORMAT, "version": 2 if decoder else 1, "name": name,
               "backbone": model.backbone_name,
               "img_size": model.img_size, "options": model.options, "state_dict": delta,
               "trained_on": trained_on, "recipe": recipe, "metrics": metrics, "notice": NOTICE,
               "decoder": decoder}
    os.makedirs(directory, exist_ok=True)
    path = shipped_path(name, directory)
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return path


def restamp_metrics(name: str, metrics: Dict[str, Any], *, directory: str = HERE) -> str:
    """Replace the figures stored in shipped file ``name`` (what its weights measured) and keep
    everything else, the weights above all, as it is. The figures come from a measurement
    (:mod:`medseg_r.benchmarks.shipped_scores`), never typed in."""
    path = shipped_path(name, directory)
    payload = _read_shipped(path)
    payload["metrics"] = metrics
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="write shipped MedSeg-R weights from a checkpoint")
    parser.add_argument("checkpoint")
    parser.add_argument("--name", required=True)
    parser.add_argument("--trained-on", required=True)
    parser.add_argument("--recipe", default="{}", help="JSON")
    parser.add_argument("--metrics", default="{}", help="JSON")
    parser.add_argument("--decoder", default=None,
                        help="store the fine-tuned mask decoder once, as the shared part of this name")
    args = parser.parse_args(argv)
    path = export_shipped(args.checkpoint, args.name, trained_on=args.trained_on,
                          recipe=json.loads(args.recipe), metrics=json.loads(args.metrics),
                          decoder=args.decoder)
    print(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
