"""Segmentation for the web app: ``medseg-r predict``'s :class:`Predictor` with exact per-session
caches.

A page re-segments the same image many times: with another report, another box, another point, after
an undo. What does not depend on the change is kept, per session, in memory:

* the **prefix cache** (the feature cache of :mod:`medseg_r.model.feature_cache`, kept exact): the
  frozen encoder's output up to the first injection site depends on the image alone, so a new report
  resumes the encoder there. That is the whole encoder with late injection (``inject_at=["neck"]``),
  the TinyViT stem and first stage for LiteMedSAM's default ``layers.0``, and only the patch
  embedding for SAM's default ``patch_embed``;
* the **encoder memo**: the modulated embedding, attention and location map depend on the image and
  the report, not on box or point prompts, so a prompt change (or an undo) runs the decoder alone.

Both keep the tensors exactly as the uncached forward computes them (same batch, same memory layout;
nothing is stored in reduced precision or re-laid out), so the masks are bit-identical to
``medseg-r predict``'s (``tests/serve/test_engine.py``). :func:`encode_stage` and
:func:`decode_stage` are the model's own split of its forward pass at the decoder
(:meth:`MedSegR.encode_inputs`, :meth:`MedSegR.decode_encoded`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import OrderedDict
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..inference.predictor import Prediction, Predictor
from ..model.encoding import Encoded
from ..report.schema import Report

Points = Tuple[torch.Tensor, torch.Tensor]


def tensor_key(tensor: torch.Tensor) -> str:
    """SHA-1 of a tensor's shape, dtype and values."""
    t = tensor.detach().contiguous().cpu()
    digest = hashlib.sha1(f"{tuple(t.shape)}|{t.dtype}".encode())
    digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def report_key(reports: Sequence[Report]) -> str:
    """Everything the model reads from the reports (text, findings, evidence spans)."""
    return json.dumps([r.to_dict() for r in reports], sort_keys=True)


class LRU:
    """A small least-recently-used store bounded by entries and by bytes of tensors held."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: "OrderedDict[str, Tuple[Any, int]]" = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    def get(self, key: str) -> Any:
        if key not in self._items:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return self._items[key][0]

    def put(self, key: str, value: Any, size: int) -> None:
        if size > self.max_bytes or self.max_entries < 1:
            return
        if key in self._items:
            self._bytes -= self._items.pop(key)[1]
        self._items[key] = (value, size)
        self._bytes += size
        while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
            self._bytes -= self._items.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._items)


def _nbytes(*tensors: Optional[torch.Tensor]) -> int:
    return sum(t.untyped_storage().nbytes() for t in tensors if isinstance(t, torch.Tensor))


class PrefixCache:
    """Duck-typed :class:`~medseg_r.model.feature_cache.FeatureCache` for one session, in memory and
    exact: the prefix is computed on the canvas batch as given and kept as the encoder returned it
    (the on-disk cache re-lays it out channels-last and stores it, which moves logits by up to 2e-5
    on LiteMedSAM: enough to flip pixels of an untrained model, whose probabilities sit near
    0.5)."""

    def __init__(self, max_bytes: int = 256 * 2**20, max_entries: int = 512) -> None:
        self.store = LRU(max_entries, max_bytes)

    @property
    def hits(self) -> int:
        return self.store.hits

    @property
    def misses(self) -> int:
        return self.store.misses

    @torch.no_grad()
    def features(self, model, canvas: torch.Tensor, site: str) -> torch.Tensor:
        key = f"{site}|{tensor_key(canvas)}"
        found = self.store.get(key)
        if found is None:
            found = model.adapter.features_at(model.sam.image_encoder, canvas, site)
            self.store.put(key, found, _nbytes(found))
        return found


@torch.no_grad()
def encode_stage(model, images: torch.Tensor, reports: Sequence[Any],
                 prefix: Optional[PrefixCache] = None) -> Encoded:
    """:meth:`MedSegR.forward` up to the decoder (``images`` ``[B, 3, H, W]`` in [0, 1]), with the
    session's prefix cache: :meth:`MedSegR.encode_inputs`."""
    return model.encode_inputs(images, list(reports), feature_cache=prefix)


@torch.no_grad()
def decode_stage(model, encoded: Encoded, boxes: Optional[torch.Tensor] = None,
                 points: Optional[Points] = None) -> dict:
    """The rest of :meth:`MedSegR.forward`: ``masks`` ``[B, 1, H, W]``, ``iou``, ``attention``."""
    out = model.decode_encoded(encoded, boxes=boxes, points=points)
    return {"masks": out["masks"], "iou": out["iou"], "attention": encoded.attention}


class SessionPredictor(Predictor):
    """A :class:`Predictor` whose forward pass goes through the session's caches and takes point
    prompts. Build one per server; :meth:`for_call` gives a copy for one request (shared model,
    the session's caches, that request's points) without touching the model."""

    def __init__(self, model, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.prefix: Optional[PrefixCache] = None
        self.memo: Optional[LRU] = None
        self.points: Optional[Sequence[Tuple[float, float, int]]] = None
        self.last: Optional[Prediction] = None
        self.encoder_runs = 0

    def for_call(
        self,
        *,
        prefix: Optional[PrefixCache],
        memo: Optional[LRU],
        points: Optional[Sequence[Tuple[float, float, int]]] = None,
    ) -> "SessionPredictor":
        call = copy.copy(self)
        call.prefix, call.memo, call.points, call.last, call.encoder_runs = (
            prefix,
            memo,
            points,
            None,
            0,
        )
        return call

    @torch.no_grad()
    def _run(self, images: torch.Tensor, reports: Sequence[Report], box=None):
        """As :meth:`Predictor._run` (same downscaling of large inputs), through the caches."""
        H, W = images.shape[-2:]
        scale = min(1.0, self.max_side / max(H, W))
        x = images.to(self.device)
        if scale < 1.0:
            x = F.interpolate(
                x,
                size=(max(1, round(H * scale)), max(1, round(W * scale))),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        boxes = (
            None
            if box is None
            else torch.tensor([list(box)] * len(reports), dtype=torch.float32) * scale
        )
        points = None
        if self.points:
            if len(reports) != 1:
                raise ValueError("point prompts are for 2-D images")
            coords = (
                torch.tensor([[[px, py] for px, py, _ in self.points]], dtype=torch.float32) * scale
            )
            points = (
                coords,
                torch.tensor([[label for _, _, label in self.points]], dtype=torch.int64),
            )
        key = None if self.memo is None else f"{tensor_key(x)}|{report_key(reports)}"
        encoded = None if key is None else self.memo.get(key)
        if encoded is None:
            encoded = encode_stage(self.model, x, list(reports), self.prefix)
            self.encoder_runs += 1
            if key is not None:
                self.memo.put(key, encoded, encoded.nbytes)
        out = decode_stage(self.model, encoded, boxes=boxes, points=points)
        logits, attention = out["masks"][:, :1], out["attention"]
        if scale < 1.0:
            logits = F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)
            if attention is not None:
                attention = F.interpolate(
                    attention, size=(H, W), mode="bilinear", align_corners=False
                )
        prob = torch.sigmoid(logits[:, 0]).float().cpu().numpy()
        att = attention[:, 0].float().cpu().numpy() if attention is not None else None
        return prob, att, out["iou"][:, 0].float().cpu().numpy()

    def predict_image(self, pixels: np.ndarray, report: Report, **kwargs: Any) -> Prediction:
        self.last = super().predict_image(pixels, report, **kwargs)
        return self.last

    def predict_volume(self, source, report: Report, **kwargs: Any) -> Prediction:
        self.last = super().predict_volume(source, report, **kwargs)
        return self.last
