"""What a user points ``medseg-r predict`` at, read into one structure with its geometry.

Supported inputs (chosen by file ending, or a folder = DICOM series):

======================  =======  ==========================================================
input                   kind     mask written as
======================  =======  ==========================================================
``.png .jpg .jpeg .bmp``  image   PNG (8-bit 0/255, same size; JPEG input still gets PNG)
``.tif .tiff``           image    TIFF (8-bit 0/255, same size)
``.nii .nii.gz``         volume   NIfTI with the input's own affine, header and voxel order
``.dcm``, DICOM folder   volume   NIfTI in RAS+ voxel order with the series' geometry (affine); one
                                 image also as PNG in the file's stored pixel order
======================  =======  ==========================================================

A volume is processed as axial slices in radiological display; a 1-slice volume (a single DICOM
radiograph or a 2-D NIfTI) is treated like a 2-D image for the location priors, except one axial
slice of a CT, MR or PET scan (DICOM ``Modality``), whose report zones are levels along the body: they
are not used there (:attr:`Source.axial_slice`). A DICOM radiograph stored other than in the conventional
display is turned to it by its ``PatientOrientation``, and a lateral one uses no sides
(:mod:`medseg_r.data.projection`, :attr:`Source.lateral_view`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..data.projection import ProjectionView, as_stored, projection_view
from ..data.volumes import (display_slice, first_header, has_pixel_spacing, is_axial_cross_section,
                            load_dicom, nifti_as_volume, normalise)
from ..io.images import is_hounsfield, read_image

MIN_SIDE = 8
MAX_ASPECT = 32  # longest side over shortest
IMAGE_ENDINGS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NIFTI_ENDINGS = (".nii", ".nii.gz")
DICOM_ENDINGS = (".dcm", ".dicom", ".ima")


class InputError(ValueError):
    """An input that cannot be used; the message names the file and the reason in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass
class Source:
    """One input case.

    ``kind`` is ``"image"`` or ``"volume"``. For images ``pixels`` is ``[H, W]`` or ``[H, W, 3]`` (native
    dtype). For volumes ``voxels`` is ``[X, Y, Z]`` float32 in RAS+ order (z = cranial), ``affine`` maps
    those voxels to RAS millimetres, and ``restore`` turns a RAS-ordered mask back into the input's own
    voxel order for writing."""

    path: str
    kind: str
    format: str  # "png", "jpeg", "bmp", "tiff", "nifti", "dicom"
    pixels: Optional[np.ndarray] = None
    voxels: Optional[np.ndarray] = None
    affine: Optional[np.ndarray] = None
    header: object = None
    restore: Optional[Callable[[np.ndarray], np.ndarray]] = None
    nan_voxels: int = 0
    stored_shape: Optional[Tuple[int, ...]] = None  # a NIfTI's own voxel order (``voxels`` is RAS+); a
    # one-image DICOM's pixel array (rows, columns)
    notes: Tuple[str, ...] = ()  # what the file leaves unsaid and was assumed (predict's warnings)
    axial_slice: bool = False  # one axial slice of a cross-sectional scan (CT, MR, PET): its report's
    # "upper / middle / lower" name a level along the body, which the slice cannot show
    lateral_view: bool = False  # a lateral radiograph (DICOM PatientOrientation): left and right
    # overlap in it, so its report's sides are not used
    view: Optional[ProjectionView] = None  # a one-image DICOM's PatientOrientation, as read (its turn)

    @property
    def n_slices(self) -> int:
        return 1 if self.kind == "image" else int(self.voxels.shape[2])

    @property
    def pixel_spacing(self) -> Optional[Tuple[float, float]]:
        """In-plane spacing in mm of the displayed slices (rows, columns), when known."""
        if self.affine is None:
            return None
        cols = np.linalg.norm(self.affine[:3, 0])  # display columns run along voxel x
        rows = np.linalg.norm(self.affine[:3, 1])
        return float(rows), float(cols)

    @property
    def voxel_volume_mm3(self) -> Optional[float]:
        return None if self.affine is None else float(abs(np.linalg.det(self.affine[:3, :3])))

    def display(self, z: int, *, window: Optional[Tuple[float, float]] = None,
                normalised: Optional[np.ndarray] = None) -> np.ndarray:
        """Slice ``z`` as shown to the model: images as they are, volume slices in radiological display."""
        if self.kind == "image":
            return self.pixels
        vol = normalised if normalised is not None else self.normalised(window=window)
        return display_slice(vol, z)

    def normalised(self, *, window: Optional[Tuple[float, float]] = None) -> np.ndarray:
        return normalise(self.voxels, window=window)


# the first bytes of the image files read without an ending that names them
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"BM", "bmp"),
               (b"II*\0", "tiff"), (b"MM\0*", "tiff"))


def _format_of(path: str) -> str:
    lower = path.lower()
    if os.path.isdir(path):
        return "dicom"
    for ending, name in ((".nii.gz", "nifti"), (".nii", "nifti"), (".png", "png"), (".jpg", "jpeg"),
                         (".jpeg", "jpeg"), (".bmp", "bmp"), (".tif", "tiff"), (".tiff", "tiff")):
        if lower.endswith(ending):
            return name
    if lower.endswith(DICOM_ENDINGS):
        return "dicom"
    try:  # no known ending: the file's own signature (a PACS export "IM0001", a saved "scan")
        with open(path, "rb") as handle:
            head = handle.read(348)
    except OSError:
        head = b""
    if head[128:132] == b"DICM":
        return "dicom"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    raise InputError(f"{path}: unknown input type (expected PNG/JPEG/TIFF/BMP, .nii/.nii.gz, a DICOM file or "
                     f"a DICOM series folder)")


def _check_size(path: str, shape) -> None:
    if len(shape) == 3 and min(shape[:2]) == 1 and shape[2] > 1:  # (X, 1, Z): one coronal or sagittal
        raise InputError(f"{path}: one coronal or sagittal slice stored as a volume (shape "  # plane
                         f"{tuple(int(n) for n in shape)} in RAS+ order): volumes are read as axial "
                         f"slices; give it as a 2-D image (PNG or TIFF)")
    if min(shape[:2]) < MIN_SIDE:
        raise InputError(f"{path}: image of {shape[1]}x{shape[0]} pixels is too small "
                         f"(at least {MIN_SIDE} pixels per side)")
    if max(shape[:2]) > MAX_ASPECT * min(shape[:2]):
        raise InputError(f"{path}: image of {shape[1]}x{shape[0]} pixels is a strip (sides more "
                         f"than {MAX_ASPECT}:1): its short side would all but vanish on the model's "
                         f"square input; crop it first")


def _load_image(path: str, fmt: str) -> Source:
    try:
        pixels = read_image(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    _check_size(path, pixels.shape)
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        raise InputError(f"{path}: image contains NaN or infinite values")
    notes = []
    pages, turned = _frames_and_orientation(path)
    if pages > 1:
        notes.append(f"the file holds {pages} images (pages or frames): only the first was read; "
                     f"give each as a file of its own, or a stack as a NIfTI volume")
    if turned:
        notes.append("the file's EXIF orientation (a rotation or mirroring for viewers) was not "
                     "applied: the model read the pixels as stored, so sides and upper/lower are "
                     "those of the stored picture; save it upright without the tag")
    return Source(path=path, kind="image", format=fmt, pixels=pixels, notes=tuple(notes))


def _frames_and_orientation(path: str) -> Tuple[int, bool]:
    """How many images a 2-D image file holds (a multi-page TIFF, an animated PNG; 1 if unknown)
    and whether its EXIF orientation asks viewers to turn or mirror it."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            orientation = img.getexif().get(0x0112, 1)
            return int(getattr(img, "n_frames", 1) or 1), orientation not in (None, 0, 1)
    except Exception:  # read_image has read it: anything odd here is no reason to fail
        return 1, False


def _load_nifti(path: str) -> Source:
    # nibabel logs its own header notes ("pixdim[1,2,3] should be non-zero; setting 0 dims to 1")
    # to stderr; predict says them once, in its own words (Source.notes)
    from nibabel.imageglobals import logger

    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return _read_nifti(path)
    finally:
        logger.setLevel(level)


def _read_nifti(path: str) -> Source:
    import nibabel as nib

    try:
        original = nib.load(path)
        singleton = len(original.shape) > 3 and all(n == 1 for n in original.shape[3:])
        if len(original.shape) not in (2, 3) and not singleton:
            raise InputError(f"{path}: a {len(original.shape)}-D NIfTI; give one 3-D volume (or a 2-D image)")
        if original.get_data_dtype().kind == "c":  # float32 would keep the real part alone
            raise InputError(f"{path}: a complex-valued NIfTI ({original.get_data_dtype()}); give "
                             f"real values, e.g. the magnitude image")
        two_d = len(original.shape) == 2
        try:  # one axial slice or (X, Y, Z, 1): a volume of three axes (nibabel reorients three)
            image = nifti_as_volume(original, path)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        canonical = nib.as_closest_canonical(image)
        voxels = np.asarray(canonical.dataobj, dtype=np.float32)
        notes = _nifti_geometry_notes(path, original.header, min(3, len(original.shape)))
    except InputError:
        raise
    except Exception as exc:  # nibabel raises many types for truncated or corrupt files
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    _check_size(path, voxels.shape)
    finite = np.isfinite(voxels)
    if not finite.any():
        raise InputError(f"{path}: the volume holds no finite value (all NaN or infinite)")
    to_original = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")),
                                                  nib.orientations.io_orientation(original.affine))

    def restore(mask_ras: np.ndarray) -> np.ndarray:
        out = nib.orientations.apply_orientation(mask_ras, to_original)
        return out[..., 0] if two_d else out.reshape(original.shape) if singleton else out

    # one slice of Hounsfield units is an axial CT slice, not a radiograph (a NIfTI names no
    # modality): its "upper / lower" are levels along the body, as for a DICOM CT slice
    axial = voxels.shape[2] == 1 and is_hounsfield(voxels[finite])
    return Source(path=path, kind="volume", format="nifti", voxels=voxels, affine=canonical.affine,
                  header=original.header, restore=restore, nan_voxels=int((~finite).sum()),
                  stored_shape=tuple(int(n) for n in original.shape), notes=notes, axial_slice=axial)


def _nifti_geometry_notes(path: str, header, ndim: int) -> Tuple[str, ...]:
    """What a NIfTI header leaves unsaid about its geometry, as the warnings ``predict`` gives: no
    voxel size (a zero ``pixdim`` where no ``sform`` gives the affine: nibabel takes 1 mm) and no
    orientation (``qform_code`` and ``sform_code`` both 0: the stored axes are taken as the
    standard ones). The codes are those nibabel used (``header``, as loaded), the ``pixdim`` as
    stored (loading sets a zero to 1)."""
    import nibabel as nib

    with nib.openers.ImageOpener(path) as handle:
        stored = type(header).from_fileobj(handle, check=False)
    notes = []
    if int(header["sform_code"]) == 0 and any(float(v) == 0 for v in stored["pixdim"][1:1 + ndim]):
        notes.append("the NIfTI gives no voxel size (pixdim 0): 1 mm was taken, so its mm, mm2 and "
                     "ml figures are not real sizes")
    if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0:
        swapped = "sides and upper/lower slices" if ndim == 3 else "sides"
        notes.append(f"the NIfTI gives no orientation (qform and sform codes 0): its axes were "
                     f"taken as stored, so {swapped} may be swapped; check the overlay")
    return tuple(notes)


def _load_dicom(path: str) -> Source:
    try:
        voxels, affine = load_dicom(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    _check_size(path, voxels.shape)
    # one slice: a radiograph reads like an axial CT slice, so the modality and the plane's
    # orientation tell them apart
    header = first_header(path)  # read once for both
    axial = voxels.shape[2] == 1 and is_axial_cross_section(header)
    view = projection_view(header) if voxels.shape[2] == 1 else None  # load_dicom turned it by this
    notes = [] if has_pixel_spacing(header) else [
        "the DICOM gives no pixel spacing (PixelSpacing, ImagerPixelSpacing): 1 mm was taken, so "
        "its mm, mm2 and ml figures are not real sizes"]
    if view is not None and view.turned:
        notes.append(view.describe())
    if view is not None and view.lateral:
        notes.append(f"a lateral view (the DICOM's PatientOrientation {view.stored}): left and right "
                     f"overlap in it, so the report's sides are not used, only its zones and organs")
    # one image: its shape as stored (rows, columns), as its stored-order PNG mask is written
    stored = as_stored(voxels[..., 0].T, view).shape if voxels.shape[2] == 1 else None
    return Source(path=path, kind="volume", format="dicom", voxels=voxels, affine=affine,
                  restore=lambda m: m, axial_slice=axial, notes=tuple(notes), stored_shape=stored,
                  lateral_view=view is not None and view.lateral, view=view)


LOADERS: Dict[str, Callable[[str], Source]] = {
    "png": lambda p: _load_image(p, "png"), "jpeg": lambda p: _load_image(p, "jpeg"),
    "bmp": lambda p: _load_image(p, "bmp"), "tiff": lambda p: _load_image(p, "tiff"),
    "nifti": _load_nifti, "dicom": _load_dicom,
}


IMAGE_FORMATS = frozenset(("png", "jpeg", "bmp", "tiff"))


def format_of(path: str | os.PathLike) -> str:
    """The input format of ``path`` (``png``, ``jpeg``, ``bmp``, ``tiff``, ``nifti``, ``dicom``;
    by ending, a folder is a DICOM series), without reading it; :class:`InputError` if unknown."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"input not found: {path}")
    return _format_of(path)


def load_source(path: str | os.PathLike) -> Source:
    """Read an input file or DICOM folder, or raise :class:`InputError` with a one-line reason."""
    path = os.fspath(path)
    return LOADERS[format_of(path)](path)
