"""Checks and conversions of what a caller hands to :class:`~medseg_r.model.MedSegR`."""

from __future__ import annotations

import math
import numbers
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np
import torch

from ..report import Report, parse_report
from ..report.schema import check_report

ReportLike = Union[str, Report]


def as_reports(reports: Union[ReportLike, Sequence[ReportLike]], batch: int) -> List[Report]:
    """``batch`` reports as :class:`Report` objects (strings are parsed); a count that does not
    match the batch, or an item that is neither, is a ``ValueError``."""
    if isinstance(reports, (str, Report)):
        reports = [reports]
    if not isinstance(reports, Sequence):
        try:  # a pandas Series, a generator
            reports = list(reports)
        except TypeError:
            raise ValueError(f"reports must be a string, a Report or a list of them, got "
                             f"{type(reports).__name__}") from None
    if len(reports) != batch:
        raise ValueError(f"got {len(reports)} report(s) for a batch of {batch} image(s)")
    out = []
    for r in reports:
        if isinstance(r, Report):
            check_report(r)  # built by hand or read from JSON: the contract's values
            out.append(r)
        elif isinstance(r, str):
            out.append(parse_report(r))
        else:
            raise ValueError(f"a report must be a string or a Report, got {type(r).__name__}")
    return out


def check_images(images: torch.Tensor, *, finite: bool = True) -> None:
    """``images`` must be a floating tensor ``[B, 3, H, W]`` with B, H, W >= 1 and, with
    ``finite`` (a caller's images; training batches come from checked files and skip the
    device-to-host sync it costs), no NaN or infinite value and every value in ``[0, 1]`` (0-255
    pixels as floats were taken as intensities 255 times too bright)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor [B, 3, H, W], got {shape}")
    if not images.is_floating_point():
        raise ValueError("images must be floating point in [0, 1]")
    if min(images.shape[-2:]) < 1 or images.shape[0] < 1:
        raise ValueError(f"empty image batch {tuple(images.shape)}")
    if finite:  # one device-to-host read for the three numbers
        seen = images.detach()
        ok, lo, hi = torch.stack([torch.isfinite(seen).all().to(seen.dtype), seen.min(), seen.max()]).tolist()
        if not ok:
            raise ValueError("images contain NaN or infinite values")
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"images must be intensities in [0, 1], got values from {lo:.4g} to {hi:.4g} "
                             f"(divide 0-255 pixels by 255; MedSegR.predict converts an image array "
                             f"of any dtype)")


def check_threshold(threshold) -> None:
    """A mask threshold given as a logit (``MedSegR.predict``, ``evaluate``): a finite number (a
    ``ValueError`` otherwise, naming it)."""
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, (bool, np.bool_)) \
            or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite logit (0 is probability 0.5), got {threshold!r}")


def check_box(box, shape: Optional[Sequence[int]] = None) -> None:
    """One image's box for ``predict``: four numbers ``(x0, y0, x1, y1)`` in pixels, or ``None``
    (a ``ValueError`` otherwise; :func:`check_prompts` checks their order in the batch tensor).
    With the image's ``shape`` ``(H, W)``, a box that does not overlap it is an error too (it
    would prompt the decoder with a region outside the image)."""
    if box is None:
        return
    if isinstance(box, (str, bytes)) or not isinstance(box, Iterable):
        raise ValueError(f"box must be four numbers (x0, y0, x1, y1), got {box!r}")
    values = box.tolist() if isinstance(box, (torch.Tensor, np.ndarray)) else list(box)
    if len(values) != 4 or not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                                   for v in values):
        raise ValueError(f"box must be four numbers (x0, y0, x1, y1), got {box!r}")
    if not all(math.isfinite(float(v)) for v in values):
        raise ValueError(f"box must be four finite numbers, got {box!r}")
    x0, y0, x1, y1 = map(float, values)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0, got {box!r}")
    if shape is not None:
        height, width = shape
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise ValueError(f"box {tuple(values)} lies outside the {width} x {height} image "
                             f"(pixels: x from 0 to {width}, y from 0 to {height})")


def check_prompts(boxes, points, batch: int, shape: Optional[Sequence[int]] = None) -> None:
    """``boxes`` ``[B, 4]`` (x0, y0, x1, y1 with x1 >= x0, y1 >= y0) and ``points`` (coords
    ``[B, N, 2]``, labels ``[B, N]`` of 1 (include), 0 (exclude) or -1 (SAM's padding)), finite,
    one per image, and with the images' ``shape`` ``(H, W)`` no box wholly outside its image: a
    ``ValueError`` naming what is wrong (a NaN box would give NaN masks without a word)."""
    if boxes is not None:
        if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or tuple(boxes.shape) != (batch, 4):
            shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
            raise ValueError(f"boxes must be a tensor [{batch}, 4] (x0, y0, x1, y1 per image), got {shape}")
        if not bool(torch.isfinite(boxes).all()):
            raise ValueError("boxes contain NaN or infinite values")
        if bool((boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any()):
            raise ValueError("each box must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
        if shape is not None:  # wholly outside the image, by more than the rounding of a rescale;
            # a box on the edge row or column (a reference box of a 1 px lesion there) is in it
            height, width = shape
            for box in boxes.tolist():
                x0, y0, x1, y1 = box
                if x1 < -1 or y1 < -1 or x0 > width + 1 or y0 > height + 1:
                    raise ValueError(f"box {tuple(box)} lies outside the {width} x {height} image "
                                     f"(pixels: x from 0 to {width}, y from 0 to {height})")
    if points is not None:
        try:
            coords, labels = points
        except (TypeError, ValueError):
            raise ValueError("points must be (coords [B, N, 2], labels [B, N])") from None
        if not (isinstance(coords, torch.Tensor) and isinstance(labels, torch.Tensor)
                and coords.ndim == 3 and coords.shape[0] == batch and coords.shape[2] == 2
                and tuple(labels.shape) == tuple(coords.shape[:2])):
            raise ValueError(f"points must be (coords [{batch}, N, 2], labels [{batch}, N])")
        if not bool(torch.isfinite(coords).all()):
            raise ValueError("point coordinates contain NaN or infinite values")
        if not bool(((labels == 1) | (labels == 0) | (labels == -1)).all()):
            raise ValueError(f"point labels must be 1 (include), 0 (exclude) or -1 (padding), got "
                             f"{sorted(set(labels.flatten().tolist()))}")
