"""Checks of a data set's files before any work: each would otherwise stop training or scoring at
the first batch that holds it, possibly epochs in."""
from __future__ import annotations

import os
from typing import List

import numpy as np

from ..io.images import image_size
from ..io.text import first_few
from .datasets import record_path

VOLUME_ENDINGS = (".nii", ".nii.gz", ".dcm", ".dicom", ".ima")


def check_files(records, root: str, what: str) -> None:
    """Every image and mask file of ``records`` exists, is an image by its header, and the mask has
    its image's size. Headers only (milliseconds a file; pixel data damaged behind a good header is
    found only when read). Every kind of problem is reported at once, naming the first few cases of
    each: ``FileNotFoundError`` when files are missing, else ``ValueError``."""
    missing: List[str] = []
    unreadable: List[str] = []
    mismatched: List[str] = []
    for rec in records:
        sizes = []
        for obj in (rec.image, rec.mask):
            if not isinstance(obj, (str, os.PathLike)):
                sizes.append(np.shape(obj)[:2])
                continue
            path = record_path(obj, root)
            if not os.path.isfile(path):
                missing.append(f"{rec.id}: {path}")
                continue
            try:
                sizes.append(image_size(path))
            except ValueError as exc:
                if path.lower().endswith(VOLUME_ENDINGS):  # a volume folder's table given itself
                    exc = ValueError(f"{path} is a volume: give the folder that holds cases.jsonl "
                                     f"or cases.csv as --data, which reads NIfTI and DICOM slice by "
                                     f"slice")
                unreadable.append(f"{rec.id}: {exc}")
        if len(sizes) == 2 and tuple(sizes[0]) != tuple(sizes[1]):
            mask = f" ({rec.mask})" if isinstance(rec.mask, (str, os.PathLike)) else ""
            mismatched.append(f"{rec.id}: image {sizes[0][1]}x{sizes[0][0]}, "
                              f"mask{mask} {sizes[1][1]}x{sizes[1][0]}")

    parts = ([f"{len(unreadable)} file(s) are not readable images: {first_few(unreadable, 3)}"] if unreadable else []) + (
        [f"{len(mismatched)} mask(s) differ in size from their image: {first_few(mismatched, 3)}"] if mismatched else [])
    if missing:
        raise FileNotFoundError("; ".join([f"{len(missing)} file(s) of the {what} cases not found: "
                                           f"{first_few(missing, 3)}"] + parts))
    if parts:
        raise ValueError(f"{what} cases: " + "; ".join(parts))


__all__ = ["check_files"]
