"""Inputs of the web app: uploads (checked, size-limited, zipped DICOM series unpacked safely) and
examples, read with ``predict``'s own reader (:func:`medseg_r.inference.sources.load_source`)."""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..io.images import is_hounsfield, to_rgb8
from ..inference.sources import (DICOM_ENDINGS, IMAGE_ENDINGS, NIFTI_ENDINGS, InputError, Source,
                                 load_source)

# CT windows (level, width) in HU, offered for volumes; "auto" is predict's default (percentiles).
WINDOWS: Dict[str, Optional[Tuple[float, float]]] = {
    "auto": None,
    "lung": (-600.0, 1500.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
}
KINDS_TEXT = (
    "PNG/JPEG/TIFF/BMP, NIfTI (.nii, .nii.gz), a DICOM file (.dcm, or a name without an ending or "
    "of digits and dots) or a zipped DICOM series (.zip)"
)
MAX_ZIP_MEMBERS = 5000
MAX_UPLOAD_PIXELS = 40_000_000  # a 6,300 x 6,300 image: above any radiograph or mammogram
# A NIfTI's voxels, read from its header: 512 x 512 x 640 (a whole-body CT at 1 mm). A few hundred
# KB of compressed zeros can declare far more, and segmenting takes tens of bytes per voxel.
MAX_UPLOAD_VOXELS = 512 * 512 * 640
UPLOAD_ENDINGS = NIFTI_ENDINGS + (".zip",) + tuple(IMAGE_ENDINGS) + tuple(DICOM_ENDINGS)


class UploadError(InputError):
    """An upload refused before it is read: ``status`` is the HTTP status the page gets."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Case:
    """A loaded input: ``path`` is what ``predict --image`` would be given (a file, or the unpacked
    series folder), inside the session's ``folder``."""

    folder: str
    path: str
    name: str
    source: Source
    example_report: Optional[str] = None
    _normalised: Dict[str, np.ndarray] = field(default_factory=dict)
    _info: Dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.source.kind

    def normalised(self, window: str) -> np.ndarray:
        """The volume scaled to [0, 1] with a named window (the last one asked is kept)."""
        if window not in self._normalised:
            self._normalised = {window: self.source.normalised(window=WINDOWS[window])}
        return self._normalised[window]

    def picture(self, z: int = 0, window: str = "auto") -> np.ndarray:
        """What the page shows: the image as an ``[H, W, 3]`` uint8, or slice ``z`` of a volume
        (radiological display) in ``window``."""
        if self.kind == "image":
            return to_rgb8(self.source.pixels)
        vol = self.normalised(window)
        return to_rgb8((self.source.display(z, normalised=vol) * 255).astype(np.uint8))

    def info(self) -> Dict[str, Any]:
        """Name, kind, format, size, spacing, whether a volume is CT (HU), the default window."""
        if not self._info:
            self._info = self._describe()
        return dict(self._info)

    def _describe(self) -> Dict[str, Any]:
        src = self.source
        if self.kind == "image":
            height, width = src.pixels.shape[:2]
        else:  # radiological display: rows run along voxel y, columns along voxel x
            width, height = src.voxels.shape[:2]
        spacing = src.pixel_spacing
        ct = self.kind == "volume" and is_hounsfield(src.voxels)
        return {
            "name": self.name,
            "kind": self.kind,
            "format": src.format,
            "width": int(width),
            "height": int(height),
            "slices": src.n_slices,
            "spacing_mm": None if spacing is None else [round(s, 4) for s in spacing],
            "slice_mm": None  # one slice (a single DICOM image, a 2-D NIfTI) has no spacing
            if self.kind == "image" or src.n_slices == 1
            else round(float(np.linalg.norm(src.affine[:3, 2])), 4),
            "ct": ct,
            "window": "lung" if ct else "auto",
            "example_report": self.example_report,
        }


def safe_name(name: str) -> str:
    """A file name from the browser, reduced to its last part and safe characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    ending = next((e for e in UPLOAD_ENDINGS if base.lower().endswith(e)), "")
    stem = base[: len(base) - len(ending)]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "upload"  # "胸片.png": upload.png
    return stem[-(120 - len(ending)):] + ending


def upload_kind(name: str) -> str:
    """``image``, ``nifti``, ``dicom`` or ``zip`` from the file name, else :class:`UploadError`
    (415)."""
    lower = name.lower()
    if lower.endswith(IMAGE_ENDINGS):
        return "image"
    if lower.endswith(NIFTI_ENDINGS):
        return "nifti"
    if lower.endswith(DICOM_ENDINGS):
        return "dicom"
    if lower.endswith(".zip"):
        return "zip"
    if "." not in lower or re.fullmatch(r"[\d.]+", lower):  # "IM000020", "1.2.840.113619.2.55":
        return "dicom"  # DICOM files are often named so (read if the header says DICM)
    raise UploadError(f"{name}: wrong kind of file; expected {KINDS_TEXT}", status=415)


def unpack_dicom_zip(archive: str, folder: str, *, max_bytes: int) -> str:
    """Unpack the files of a zipped DICOM series flat into ``folder`` (sub-folders dropped, no path
    leaves it), refusing archives that unpack to more than ``max_bytes`` or too many files."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            members = [
                m
                for m in members
                if not os.path.basename(m.filename).startswith(".")
                and os.path.basename(m.filename).upper() != "DICOMDIR"
            ]
            if not members:
                raise UploadError(f"{os.path.basename(archive)}: the zip archive holds no file")
            if len(members) > MAX_ZIP_MEMBERS:
                raise UploadError(
                    f"{os.path.basename(archive)}: {len(members)} files; at most "
                    f"{MAX_ZIP_MEMBERS} slices per series",
                    status=413,
                )
            if sum(m.file_size for m in members) > max_bytes:
                raise UploadError(
                    f"{os.path.basename(archive)}: unpacks to more than {_megabytes(max_bytes)} MB",
                    status=413,
                )
            os.makedirs(folder, exist_ok=True)
            for number, member in enumerate(members):
                target = os.path.join(folder, f"{number:05d}_{safe_name(member.filename)}")
                with zf.open(member) as src, open(target, "wb") as dst:
                    copied = 0
                    while chunk := src.read(2**20):
                        copied += len(chunk)
                        if copied > member.file_size:  # a lying header
                            raise UploadError(f"{os.path.basename(archive)}: corrupt zip archive")
                        dst.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise UploadError(
            f"{os.path.basename(archive)}: not a readable zip archive ({exc})"
        ) from None
    return folder


def _megabytes(n: int) -> str:
    """``n`` bytes in MB as a person writes it: "2,048", "0.05"."""
    mb = n / 2**20
    return f"{mb:,.0f}" if mb >= 10 else f"{mb:.3g}"


def check_image_pixels(path: str, *, max_pixels: int) -> None:
    """Refuse (413) a 2-D image whose header gives more than ``max_pixels`` pixels: a few hundred KB
    of PNG can decode to gigabytes."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except Image.DecompressionBombError:  # over PIL's own limit, far over this one
        raise UploadError(f"{os.path.basename(path)}: over {max_pixels / 1e6:.0f} megapixels, the "
                          f"most this server takes", status=413) from None
    except (UnidentifiedImageError, OSError):
        return  # not readable: load_source says why
    if width * height > max_pixels:
        raise UploadError(f"{os.path.basename(path)}: {width} x {height} pixels; this server takes "
                          f"images of at most {max_pixels / 1e6:.0f} megapixels", status=413)


def check_nifti_voxels(path: str, *, max_voxels: int) -> None:
    """Refuse (413) a NIfTI whose header declares more than ``max_voxels`` voxels, before its data
    is read."""
    import nibabel as nib

    try:
        shape = nib.load(path).shape
    except Exception:  # not readable: load_source says why
        return
    if int(np.prod(shape, dtype=np.int64)) > max_voxels:
        raise UploadError(f"{os.path.basename(path)}: {' x '.join(str(n) for n in shape)} voxels; "
                          f"this server takes volumes of at most {max_voxels / 1e6:.0f} million "
                          f"voxels", status=413)


def open_upload(path: str, folder: str, *, max_bytes: int,
                max_pixels: int = MAX_UPLOAD_PIXELS, max_voxels: int = MAX_UPLOAD_VOXELS) -> Case:
    """A saved upload -> :class:`Case` (zip archives are unpacked into a series folder named after
    the archive, as ``predict`` would be pointed at it); an image over ``max_pixels`` is refused
    before it is decoded."""
    name = os.path.basename(path)
    kind = upload_kind(name)
    target = path
    if kind == "image":
        check_image_pixels(path, max_pixels=max_pixels)
    if kind == "nifti":
        check_nifti_voxels(path, max_voxels=max_voxels)
    if kind == "zip":
        stem = name[:-4] or "series"
        target = unpack_dicom_zip(path, os.path.join(folder, stem), max_bytes=max_bytes)
        os.unlink(path)
    try:
        source = load_source(target)
    except InputError as exc:  # name the user's file, not the folder it was unpacked into
        raise InputError(str(exc).replace(target, name)) from None
    return Case(folder=folder, path=target, name=name, source=source)
