"""An on-disk cache of what a frozen image encoder computes before the first injection site.

With the encoder frozen (``freeze="image_encoder"`` or ``"backbone"``, encoder in eval mode), its
output up to the first modulated site does not depend on the report, so it is computed once per
image (and per flip: a flipped image is another image) and reused across epochs, and across the
models of a comparison that share the backbone, its weights and the site. Each entry is keyed by
the SHA-1 of the prepared canvas (so a changed image is another entry) under a folder named by a
fingerprint of the backbone, its encoder weights, the input size and the site (so changed weights
never read old entries). Entries are written atomically; deleting the folder at any time is safe.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import tempfile
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

DTYPES = {"float16": torch.float16, "float32": torch.float32}


def _sha1_tensor(t: torch.Tensor) -> str:
    t = t.detach().contiguous().cpu()
    flat = t.reshape(-1)
    raw = flat.view(torch.uint8) if t.dtype != torch.bool else flat.to(torch.uint8)
    h = hashlib.sha1(str((tuple(t.shape), str(t.dtype))).encode())
    h.update(raw.numpy().tobytes())
    return h.hexdigest()


class FeatureCache:
    """The frozen encoder's output per image (and per flip), kept on disk under ``root`` and the
    most recent in memory, keyed by backbone, input size, injection site, storage precision, the
    encoder's weights and the image (see the module docstring): safe to reuse and to delete.

    Args:
        root: the cache folder (created when needed).
        dtype: storage precision, ``"float16"`` (default: half the disk, about 1e-3 relative
            error) or ``"float32"`` (exact).
        memory_mb: entries also kept in memory, least recently used dropped beyond this size.
    """

    def __init__(self, root: str, *, dtype: str = "float16", memory_mb: int = 1024) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if isinstance(memory_mb, bool) or not isinstance(memory_mb, numbers.Real) or memory_mb < 0:
            raise ValueError(f"memory_mb must be a number of megabytes >= 0, got {memory_mb!r}")
        self.root, self.dtype = os.fspath(root), dtype
        self.memory_bytes = int(memory_mb) * 2**20
        self._memory: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self._held = 0
        self._fingerprints: Dict[Tuple, str] = {}
        self.hits = self.misses = 0

    def fingerprint(self, model, site: str) -> str:
        """Backbone name, input size, site, storage dtype and a hash of the encoder's weights
        (recomputed only when a weight tensor changed: PyTorch counts in-place writes)."""
        encoder: nn.Module = model.sam.image_encoder
        state = tuple((id(p), p._version) for p in encoder.state_dict(keep_vars=True).values())
        memo = (model.backbone_name, model.img_size, site, state)
        if memo not in self._fingerprints:
            h = hashlib.sha1(f"{model.backbone_name}|{model.img_size}|{site}|{self.dtype}".encode())
            for name, value in encoder.state_dict().items():
                h.update(name.encode())
                h.update(_sha1_tensor(value).encode())
            self._fingerprints = {memo: h.hexdigest()[:20]}
        return self._fingerprints[memo]

    def _path(self, folder: str, key: str) -> str:
        return os.path.join(self.root, folder, key[:2], key + ".npy")

    def _remember(self, key: str, value: torch.Tensor) -> None:
        if self.memory_bytes <= 0:
            return
        self._memory[key] = value
        self._memory.move_to_end(key)
        self._held += value.numel() * value.element_size()
        while self._held > self.memory_bytes and self._memory:
            _, old = self._memory.popitem(last=False)
            self._held -= old.numel() * old.element_size()

    def _read(self, folder: str, key: str) -> Optional[torch.Tensor]:
        full = f"{folder}/{key}"
        if full in self._memory:
            self._memory.move_to_end(full)
            return self._memory[full]
        path = self._path(folder, key)
        if not os.path.isfile(path):
            return None
        try:
            value = torch.from_numpy(np.load(path))
        except (OSError, ValueError):  # a damaged entry is recomputed
            return None
        self._remember(full, value)
        return value

    def _write(self, folder: str, key: str, value: torch.Tensor) -> None:
        path = self._path(folder, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp.npy")
        os.close(fd)
        try:
            np.save(tmp, value.numpy())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._remember(f"{folder}/{key}", value)

    @torch.no_grad()
    def features(self, model, canvas: torch.Tensor, site: str) -> torch.Tensor:
        """The unmodulated output of ``site``'s stage for each canvas ``[B, 3, S, S]``,
        channels-last ``[B, H, W, C]`` in fp32 on the canvas' device; missing entries are computed
        in fp32."""
        folder = self.fingerprint(model, site)
        keys = [_sha1_tensor(c) for c in canvas]
        found = [self._read(folder, k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        for i in missing:  # one image at a time: on a CPU several times faster per image
            with torch.autocast(canvas.device.type, enabled=False):
                image = canvas[i:i + 1].float().contiguous(memory_format=torch.channels_last)
                value = model.adapter.features_at(model.sam.image_encoder, image, site)[0]
            stored = value.to(DTYPES[self.dtype]).cpu().contiguous()
            self._write(folder, keys[i], stored)
            found[i] = stored
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        with torch.autocast(canvas.device.type, enabled=False):  # autocast cannot stack fp16
            return torch.stack(found).to(canvas.device, torch.float32)  # one conversion per batch
