"""Checks and conversions of what a caller hands to :class:`~medseg_r.model.MedSegR`."""

from __future__ import annotations

from typing import List, Sequence, Union

import torch

from ..report import Report, parse_report

ReportLike = Union[str, Report]


def as_reports(reports: Union[ReportLike, Sequence[ReportLike]], batch: int) -> List[Report]:
    """``batch`` reports as :class:`Report` objects (strings are parsed); a count that does not
    match the batch, or an item that is neither, is a ``ValueError``."""
    if isinstance(reports, (str, Report)):
        reports = [reports]
    if len(reports) != batch:
        raise ValueError(f"got {len(reports)} report(s) for a batch of {batch} image(s)")
    out = []
    for r in reports:
        if isinstance(r, Report):
            out.append(r)
        elif isinstance(r, str):
            out.append(parse_report(r))
        else:
            raise ValueError(f"a report must be a string or a Report, got {type(r).__name__}")
    return out


def check_images(images: torch.Tensor) -> None:
    """``images`` must be a floating tensor ``[B, 3, H, W]`` with B, H, W >= 1."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor [B, 3, H, W], got {shape}")
    if not images.is_floating_point():
        raise ValueError("images must be floating point in [0, 1]")
    if min(images.shape[-2:]) < 1 or images.shape[0] < 1:
        raise ValueError(f"empty image batch {tuple(images.shape)}")
