"""Write a predicted mask in the input's own format and geometry (see :mod:`.sources`), atomically."""
from __future__ import annotations

import os
from typing import Callable, Dict

import numpy as np

from ..io import atomic_write
from .sources import Source


def _write_png(source: Source, mask: np.ndarray, path: str) -> None:
    from PIL import Image

    with atomic_write(path) as tmp:
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp, format="PNG")


def write_stored_png(source: Source, mask: np.ndarray, path: str) -> None:
    """A one-image DICOM's mask ``[H, W]`` (as displayed to the model) as a PNG in the file's stored
    pixel order (rows x columns of its pixel array; a turned radiograph turned back), 0/255."""
    from ..data.projection import as_stored

    _write_png(source, as_stored(np.asarray(mask, dtype=bool), source.view), path)


def _write_tiff(source: Source, mask: np.ndarray, path: str) -> None:
    from PIL import Image

    with atomic_write(path) as tmp:
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp, format="TIFF", compression="tiff_deflate")


def _write_nifti(source: Source, mask_ras: np.ndarray, path: str) -> None:
    """NIfTI input: the input's affine, header and voxel order; DICOM input: RAS+ voxels and affine."""
    import nibabel as nib

    data = source.restore(mask_ras.astype(np.uint8))
    if source.format == "nifti":
        header = source.header.copy()
        header.set_data_dtype(np.uint8)
        header["scl_slope"], header["scl_inter"] = 1.0, 0.0
        header["cal_min"], header["cal_max"] = 0.0, 1.0  # the input's display range would hide it
        header.set_intent("none")  # a 0/1 label map, whatever the input's intent
        kind = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        image = kind(data, header.get_best_affine(), header=header)
    else:
        image = nib.Nifti1Image(data, source.affine)
        image.set_qform(source.affine, code=1)
        image.set_sform(source.affine, code=1)
    with atomic_write(path, suffix=".nii.gz") as tmp:
        nib.save(image, tmp)


WRITERS: Dict[str, tuple] = {
    "png": ("mask.png", _write_png), "jpeg": ("mask.png", _write_png), "bmp": ("mask.png", _write_png),
    "tiff": ("mask.tif", _write_tiff), "nifti": ("mask.nii.gz", _write_nifti), "dicom": ("mask.nii.gz", _write_nifti),
}


def write_mask(source: Source, mask: np.ndarray, path: str) -> None:
    """``mask``: ``[H, W]`` for images, ``[X, Y, Z]`` RAS+ for volumes (as predicted)."""
    writer: Callable = WRITERS[source.format][1]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    writer(source, np.asarray(mask, dtype=bool), path)
