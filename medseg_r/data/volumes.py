"""3-D volumes (NIfTI via nibabel, DICOM series via pydicom) with one report per case, as 2-D slices.

A volume data set is a folder with ``cases.jsonl`` or ``cases.csv``: ``image`` (``.nii``/``.nii.gz``, a
DICOM file or a DICOM series folder), ``mask`` (NIfTI or DICOM, same grid), ``report``, optional ``split``.
Slices are axial (the last voxel axis after reorientation to RAS+ for NIfTI). Every slice with foreground is
kept, plus ``empty_fraction`` x that many empty slices (chosen with ``seed``).
Intensity: ``window=(level, width)`` for CT (e.g. lung ``(-600, 1500)``), else ``percentiles=(0.5, 99.5)``
(MR default), mapped to [0, 1].
"""
from __future__ import annotations

import json
import os
from typing import List, Optional, Tuple

import numpy as np

from .datasets import Record

VOLUME_ENDINGS = (".nii", ".nii.gz", ".dcm")


def _is_nifti(path: str) -> bool:
    return path.lower().endswith((".nii", ".nii.gz"))


def load_volume(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(voxels [X, Y, Z] float32, affine 4x4)`` in RAS+ voxel order (x toward the patient's right,
    y anterior, z superior): NIfTI via ``as_closest_canonical``; an axial DICOM series sorted along z."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"volume not found: {path}")
    if _is_nifti(path):
        import nibabel as nib

        try:
            img = nib.as_closest_canonical(nib.load(path))
            data = np.asarray(img.dataobj, dtype=np.float32)
        except Exception as exc:
            raise ValueError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
        if data.ndim == 2:
            data = data[..., None]
        if data.ndim != 3:
            raise ValueError(f"{path}: expected a 3-D volume, got shape {data.shape}")
        return data, img.affine
    return load_dicom(path)


def load_dicom(path: str) -> Tuple[np.ndarray, np.ndarray]:
    import pydicom

    files = [os.path.join(path, f) for f in sorted(os.listdir(path))] if os.path.isdir(path) else [path]
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except Exception:
            continue
        if "PixelData" not in ds:
            raise ValueError(f"{f}: DICOM file without pixel data")
        slices.append(ds)
    if not slices:
        raise ValueError(f"{path}: no readable DICOM slice")
    slices.sort(key=lambda d: float(getattr(d, "ImagePositionPatient", [0, 0, getattr(d, "InstanceNumber", 0)])[2]))
    arrays = []
    for ds in slices:
        arr = ds.pixel_array.astype(np.float32)
        arr = arr * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
        # DICOM pixels are LPS (columns toward patient's left, rows toward posterior): map to RAS voxels.
        arrays.append(arr[::-1, ::-1].T)
    data = np.stack(arrays, axis=-1)
    first = slices[0]
    spacing = [float(v) for v in getattr(first, "PixelSpacing", [1.0, 1.0])]
    dz = float(getattr(first, "SliceThickness", 1.0) or 1.0)
    affine = np.diag([spacing[1], spacing[0], dz, 1.0])
    if hasattr(first, "ImagePositionPatient"):
        affine[:3, 3] = [float(v) for v in first.ImagePositionPatient]
    return data, affine


def normalise(volume: np.ndarray, *, window: Optional[Tuple[float, float]] = None,
              percentiles: Tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """CT window ``(level, width)`` or percentile clipping -> [0, 1]. NaNs become the minimum."""
    vol = np.asarray(volume, dtype=np.float32)
    finite = np.isfinite(vol)
    if not finite.any():
        raise ValueError("volume has no finite value")
    if window is not None:
        level, width = window
        if width <= 0:
            raise ValueError("window width must be positive")
        lo, hi = level - width / 2, level + width / 2
    else:
        lo, hi = np.percentile(vol[finite], percentiles)
    vol = np.where(finite, vol, lo)
    return np.clip((vol - lo) / max(hi - lo, 1e-6), 0, 1)


def volume_slices(case_id: str, image: np.ndarray, mask: np.ndarray, report: str, *, split=None,
                  empty_fraction: float = 0.1, seed: int = 0) -> List[Record]:
    if image.shape != mask.shape:
        raise ValueError(f"{case_id}: mask shape {mask.shape} does not match image {image.shape}")
    full = [z for z in range(image.shape[2]) if mask[..., z].any()]
    empty = [z for z in range(image.shape[2]) if z not in set(full)]
    rng = np.random.default_rng(seed)
    k = min(len(empty), int(round(empty_fraction * max(len(full), 1))))
    chosen = sorted(full + (rng.choice(empty, size=k, replace=False).tolist() if k else []))
    return [Record(id=f"{case_id}_z{z:04d}", image=display_slice(image, z), mask=(display_slice(mask, z) > 0)
                   .astype(np.uint8), report=report, split=split, tags=[] if z in full else ["negative_slice"])
            for z in chosen]


def display_slice(volume: np.ndarray, z: int) -> np.ndarray:
    """Axial slice ``z`` of a RAS+ volume as displayed in radiological convention: anterior at the top,
    the patient's right on the image's left."""
    return np.ascontiguousarray(volume[..., z].T[::-1, ::-1])


def read_volume_folder(folder: str, *, window: Optional[Tuple[float, float]] = None,
                       percentiles: Tuple[float, float] = (0.5, 99.5), empty_fraction: float = 0.1,
                       seed: int = 0, **_: object) -> List[Record]:
    table = next((os.path.join(folder, n) for n in ("cases.jsonl", "cases.csv") if os.path.isfile(os.path.join(folder, n))),
                 None)
    if table is None:
        raise ValueError(f"{folder}: not a known data set layout (manifest.jsonl, LViT img/+labelcol/, "
                         "or a volume folder with cases.jsonl / cases.csv)")
    if table.endswith(".jsonl"):
        with open(table, "r", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    else:
        import csv

        with open(table, "r", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    records: List[Record] = []
    for i, row in enumerate(rows):
        image_path = os.path.join(folder, row["image"])
        mask_path = os.path.join(folder, row["mask"])
        image, _ = load_volume(image_path)
        mask, _ = load_volume(mask_path)
        case_id = row.get("id") or os.path.basename(str(row["image"])).split(".")[0]
        records += volume_slices(case_id, normalise(image, window=window, percentiles=percentiles), mask,
                                 str(row.get("report", "")), split=row.get("split") or None,
                                 empty_fraction=empty_fraction, seed=seed + i)
    return records
