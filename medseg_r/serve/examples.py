"""The bundled examples of the web app, generated in memory when the server starts (nothing ships or
downloads): two chest-radiograph-like pictures and a small chest-CT-like NIfTI volume."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Dict

import numpy as np

from ..example import EXAMPLE_REPORT, chest_like_image

CT_REPORT = "A 15 mm round solid nodule in the right upper lobe. No pleural effusion."
CT_SPACING_MM = (1.8, 1.8, 5.0)


@dataclass
class Example:
    """``write(folder) -> path`` puts the example's file into a case folder."""

    name: str
    title: str
    kind: str
    report: str
    write: Callable[[str], str]


def chest_ct_volume(size: int = 192, slices: int = 32, seed: int = 0) -> np.ndarray:
    """A RAS-ordered ``[X, Y, Z]`` int16 volume in Hounsfield units: body, two lungs that narrow
    towards apex and base, mediastinum, spine, and one 15 mm nodule in the upper third of the
    patient's right lung (voxel x high = patient's right)."""
    rng = np.random.default_rng(seed)
    sx, sy, sz = CT_SPACING_MM
    x = (np.arange(size) - size / 2) * sx  # mm, + = patient's right
    y = (np.arange(size) - size / 2) * sy  # mm, + = anterior
    z = np.arange(slices) / (slices - 1)  # 0 caudal .. 1 cranial
    X, Y = np.meshgrid(x, y, indexing="ij")
    hu = np.empty((size, size, slices), np.float32)
    for k, f in enumerate(z):
        reach = 0.55 + 0.45 * np.sin(np.pi * min(1.0, 0.15 + f))  # lungs narrow at apex and base
        body = (X / 160) ** 2 + (Y / 115) ** 2 < 1
        lungs = (((np.abs(X) - 70) / (52 * reach)) ** 2 + ((Y + 5) / (85 * reach)) ** 2) < 1
        spine = (X / 18) ** 2 + ((Y + 85) / 18) ** 2 < 1
        sl = np.where(body, 40.0, -1000.0)
        sl[lungs & body] = -850.0
        sl[spine] = 700.0
        hu[..., k] = sl
    nodule = ((X[..., None] - 75) / 7.5) ** 2 + ((Y[..., None] - 15) / 7.5) ** 2 + (
        (z[None, None, :] - 0.8) * (slices - 1) * sz / 7.5
    ) ** 2 < 1
    hu[nodule] = 30.0
    hu += rng.normal(0, 20, hu.shape).astype(np.float32)
    return hu.astype(np.int16)


def _png_writer(size: int, name: str) -> Callable[[str], str]:
    image, _ = chest_like_image(size)

    def write(folder: str) -> str:
        from PIL import Image

        path = os.path.join(folder, name)
        Image.fromarray(image).save(path, format="PNG")
        return path

    return write


def _ct_writer(name: str) -> Callable[[str], str]:
    volume = chest_ct_volume()

    def write(folder: str) -> str:
        import nibabel as nib

        path = os.path.join(folder, name)
        nib.save(nib.Nifti1Image(volume, np.diag([*CT_SPACING_MM, 1.0])), path)
        return path

    return write


def build_examples() -> Dict[str, Example]:
    """Name -> :class:`Example`. ``chest_xray`` is the picture ``medseg-r predict --example``
    uses."""
    return {
        e.name: e
        for e in (
            Example(
                "chest_xray",
                "Chest radiograph (256 px)",
                "image",
                EXAMPLE_REPORT,
                _png_writer(256, "example.png"),
            ),
            Example(
                "chest_xray_512",
                "Chest radiograph (512 px)",
                "image",
                EXAMPLE_REPORT,
                _png_writer(512, "example_512.png"),
            ),
            Example(
                "chest_ct",
                "Chest CT volume (NIfTI, 32 slices)",
                "volume",
                CT_REPORT,
                _ct_writer("example_ct.nii.gz"),
            ),
        )
    }
