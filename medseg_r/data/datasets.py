"""2-D segmentation data sets: records (image, mask, report) -> batches for MedSeg-R.

Every sample is resized like SAM (longest side to ``size``, padded bottom/right) so batches stack.
Augmentation is a horizontal flip that also mirrors the report, its text included
(:func:`~medseg_r.report.transform.mirrored_report`: every model, text-reading baselines too, is
told the side the flipped image shows). A sample whose report cannot be mirrored consistently (a
finding in the liver, spleen, heart ...) is never flipped, and a data set whose ``dataset.json``
says ``"augment_flip": false`` (the phantom: a mirrored chest radiograph shows the heart on the wrong
side) is not flipped at all. Flips are decided from ``(seed, epoch, index)`` so that a resumed run
sees exactly the same samples.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from ..io import read_image, to_unit_float
from ..io.images import is_lossy, mask_foreground, read_mask
from ..report import Report, parse_report
from ..report.transform import mirrored_report, report_on_slice, without_sides


@dataclass
class Record:
    """One 2-D case. ``image``/``mask`` are paths (or arrays already in memory for volume slices)."""

    id: str
    image: object
    mask: object
    report: str
    split: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    target: Optional[str] = None
    lesions: List[Dict[str, object]] = field(default_factory=list)  # bbox, texture, shape per lesion
    # an axial slice of a volume: its report is read as predict reads it there (report_on_slice), at
    # ``level`` (its fraction of the cranio-caudal extent; None: a volume of one slice)
    axial: bool = False
    level: Optional[float] = None
    lateral: bool = False  # a lateral radiograph: its report's sides are not used (without_sides)
    described: bool = False  # its report was written from its mask (train --describe-missing)


def fitted_size(h: int, w: int, size: int) -> tuple:
    """``(nh, nw)``: an ``h x w`` image with its longest side resized to ``size`` (:func:`fit_square`)."""
    scale = size / max(h, w)
    return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))


def fit_square(image: torch.Tensor, mask: torch.Tensor, size: int):
    """Resize the longest side to ``size`` and pad bottom/right (images bilinear, masks nearest)."""
    _, h, w = image.shape
    nh, nw = fitted_size(h, w, size)
    if (nh, nw) != (h, w):
        image = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
        mask = F.interpolate(mask[None], size=(nh, nw), mode="nearest")[0]
    image = F.pad(image, (0, size - nw, 0, size - nh))
    mask = F.pad(mask, (0, size - nw, 0, size - nh))
    return image, mask


def record_path(obj, root: str) -> str:
    """A record's image or mask path: absolute as given, else relative to the data set's ``root``."""
    return str(obj) if os.path.isabs(str(obj)) else os.path.join(root, str(obj))


def _name(obj) -> str:
    """A record's image or mask for a message: its path, or what an in-memory array is."""
    if isinstance(obj, (str, os.PathLike)):
        return str(obj)
    return f"(array {tuple(np.shape(obj))})"


def _load(obj, root: str, *, mask: bool = False) -> np.ndarray:
    if isinstance(obj, np.ndarray):
        return obj
    return (read_mask if mask else read_image)(record_path(obj, root))


class CaseError(ValueError):
    """A case whose image or mask cannot be used (its pixels, read only now: a NaN, a mask that
    is not one), named by its id and file."""


class SegmentationDataset(Dataset):
    """Records -> dicts with ``image`` [3,S,S], ``mask`` [1,S,S], ``report`` (:class:`Report`), ``id``, ``tags``
    and, when any record lists its lesions (the phantom's manifest does), ``attributes`` [2,S,S]: each lesion's
    texture and shape code over its box (:func:`~medseg_r.model.attributes.label_map`; zeros for a record
    without lesions), resized and flipped with the mask. ``native``: also ``native_mask``, the mask at the
    record's own size ``[H, W]`` (bool), which evaluation scores against."""

    def __init__(self, records: Sequence[Record], *, root: str = ".", size: int = 256, augment: bool = False,
                 seed: int = 0, native: bool = False) -> None:
        if not records:
            raise ValueError("the data set is empty (check the split name and the manifest)")
        self.records = list(records)
        self.root = root
        self.size = size
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self._reports: Dict[int, Report] = {}
        self.attributes = any(rec.lesions for rec in self.records)
        self.native = native

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def flipped(self, index: int) -> bool:
        return self.augment and zlib.crc32(f"{self.seed}:{self.epoch}:{index}".encode()) % 2 == 1

    def __getitem__(self, index: int) -> Dict[str, object]:
        rec = self.records[index]
        try:
            pixels = to_unit_float(_load(rec.image, self.root))
        except ValueError as exc:
            raise CaseError(f"case {rec.id}, image {_name(rec.image)}: {exc}") from None
        image = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
        try:
            mask_arr = mask_foreground(_load(rec.mask, self.root, mask=True), lossy=is_lossy(rec.mask))
        except ValueError as exc:
            raise CaseError(f"case {rec.id}, mask {_name(rec.mask)}: {exc}") from None
        if mask_arr.shape != tuple(image.shape[1:]):
            raise CaseError(f"case {rec.id}: mask shape {mask_arr.shape} does not match image "
                            f"{tuple(image.shape[1:])}")
        mask = torch.from_numpy(mask_arr.astype(np.float32))[None]
        if self.attributes:
            from ..model.attributes import label_map

            labels = torch.from_numpy(label_map(rec.lesions, *mask_arr.shape[:2])).float()
            image, stacked = fit_square(image, torch.cat([mask, labels]), self.size)
            mask, labels = stacked[:1], stacked[1:].round().long()
        else:
            image, mask = fit_square(image, mask, self.size)
        if index not in self._reports:
            report = parse_report(rec.report)
            if rec.axial:  # "upper/lower" are levels of the volume, not places in the slice
                report = report_on_slice(report, rec.level, shows_lesion="negative_slice" not in rec.tags)
            if rec.lateral:  # left and right overlap in it, as predict reads it
                report = without_sides(report)
            self._reports[index] = report
        report = self._reports[index]
        flip = False
        if self.flipped(index):
            mirrored = mirrored_report(report)
            if mirrored is not None:
                flip = True
                image, mask, report = image.flip(-1), mask.flip(-1), mirrored
                if self.attributes:
                    labels = labels.flip(-1)
        sample = {"image": image, "mask": mask, "report": report, "id": rec.id, "tags": list(rec.tags)}
        if self.native:
            native = torch.from_numpy(mask_arr)
            sample["native_mask"] = native.flip(-1) if flip else native
        if self.attributes:
            sample["attributes"] = labels
        return sample


def flip_allowed(root: str) -> bool:
    """Whether the data set at ``root`` may be mirrored (its ``dataset.json`` ``augment_flip``,
    default true)."""
    import json

    meta = os.path.join(root, "dataset.json")
    if not os.path.isfile(meta):
        return True
    with open(meta, encoding="utf-8") as handle:
        return bool(json.load(handle).get("augment_flip", True))


def collate(batch: List[Dict[str, object]]) -> Dict[str, object]:
    out = {"image": torch.stack([b["image"] for b in batch]), "mask": torch.stack([b["mask"] for b in batch]),
           "report": [b["report"] for b in batch], "id": [b["id"] for b in batch], "tags": [b["tags"] for b in batch]}
    if all("attributes" in b for b in batch):
        out["attributes"] = torch.stack([b["attributes"] for b in batch])
    if all("native_mask" in b for b in batch):
        out["native_mask"] = [b["native_mask"] for b in batch]  # sizes differ between records
    return out


class EpochShuffleSampler(Sampler[int]):
    """Random order fixed by ``(seed, epoch)``: a resumed run replays the same order. Under DDP, Lightning
    replaces it with ``DistributedSampler(seed=...)``, which is epoch-seeded as well."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n
