"""Images and masks for :func:`medseg_r.describe` -> one checked case with one mask per lesion.

Accepted inputs: numpy arrays (2-D ``[H, W]`` or ``[H, W, 3|4]`` images; 3-D ``[X, Y, Z]`` volumes
in the package's RAS+ voxel order, z = superior) or paths to anything ``medseg-r predict`` reads
(PNG/JPEG/TIFF/BMP, NIfTI, DICOM file or series folder). For a NIfTI or DICOM image the spacing
and the patient's axes come from its affine (``spacing`` then overrides only the spacing). A
NIfTI or DICOM with one slice is a 2-D image shown in radiological display.

Documented behaviour, not errors:

* an empty mask describes "no finding" (a negative report);
* a binary mask (``bool``, or one non-zero value such as 1 or 255) gives one lesion per connected
  component (8-connected in 2-D, 26-connected in 3-D); a piece of at most 2 pixels or 5 % of a
  neighbour's size within 2 pixels of that neighbour belongs to it (rasterised spicules);
* a label mask (two or more distinct non-zero integers, at most 64) gives one lesion per label,
  whatever the number of its pieces;
* NaN or infinite image values become the image's finite minimum (counted in the notes), as
  ``medseg-r predict`` does for NIfTI volumes.

Errors (:class:`DescribeError`, one line): missing or unreadable file, image and mask of different
sizes, an image without any finite value, a mask with non-integer values (probabilities: threshold
them first) or more than 64 labels, an RGB(A) mask whose colour channels differ, a 3-D array without
``spacing``, a non-positive spacing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from ..io.images import is_lossy, mask_foreground

MAX_LABELS = 64


class DescribeError(ValueError):
    """An input that cannot be described; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass
class Case:
    """A checked case: ``grey`` image ``[H, W]`` or volume ``[X, Y, Z]`` (float, finite),
    ``lesions`` (bool masks on that grid), their mask ``labels``, ``spacing`` (mm per axis or
    ``None``), ``affine`` (volumes from files), and ``notes`` for the output."""

    grey: np.ndarray
    lesions: List[np.ndarray]
    labels: List[int]
    spacing: Optional[Tuple[float, ...]]
    affine: Optional[np.ndarray] = None
    from_file: bool = False
    notes: List[str] = field(default_factory=list)

    @property
    def volume(self) -> bool:
        return self.grey.ndim == 3


def _source(obj, what: str):
    """The :class:`~medseg_r.inference.sources.Source` of a path (predict's reader), or None for an
    array."""
    if not isinstance(obj, (str, os.PathLike)):
        return None
    from ..inference.sources import InputError, load_source

    try:
        return load_source(obj)
    except (InputError, FileNotFoundError) as exc:
        raise DescribeError(f"{what}: {exc}") from None


def _read(obj, what: str, *, source=None, image=None):
    """(array, affine or None, is a 2-D display of a file) of an array or a path (``source``: its
    Source, read already). A one-image mask volume of a one-image ``image`` Source (a radiograph,
    turned for the model by its PatientOrientation) is put on that image's axes first."""
    source = source if source is not None else _source(obj, what)
    if source is None:
        return np.asarray(obj), None, False
    if source.kind == "image":
        return np.asarray(source.pixels), None, True
    if source.n_slices == 1:
        from ..data.volumes import check_same_grid, display_slice, on_axes_of

        voxels, affine = source.voxels, source.affine
        if image is not None and image.kind == "volume" and image.n_slices == 1:
            voxels, affine = on_axes_of(voxels, affine, image.affine)
            if voxels.shape == image.voxels.shape:
                try:
                    check_same_grid(image.affine, affine, mask=str(obj))
                except ValueError as exc:
                    raise DescribeError(str(exc)) from None
        # the displayed picture's pixel size: rows run along voxel y, columns along voxel x
        rows, cols = float(np.linalg.norm(affine[:3, 1])), float(np.linalg.norm(affine[:3, 0]))
        return display_slice(voxels, 0), np.diag([rows, cols, 1.0, 1.0]), True
    return source.voxels, source.affine, False


def _grey(image: np.ndarray, mask_shape: Tuple[int, ...]) -> np.ndarray:
    """A grey float image: colour ``[H, W, 3|4]`` (a 3-D array whose first two axes are the
    mask's 2-D grid) is averaged over its colour channels, alpha dropped."""
    if image.ndim not in (2, 3) or min(image.shape) < 1:
        raise DescribeError(f"image must be 2-D, colour 2-D or 3-D, got shape {image.shape}")
    colour = image.ndim == 3 and image.shape[-1] in (3, 4) and tuple(mask_shape[:2]) == \
        image.shape[:2] and len(mask_shape) in (2, 3) and (len(mask_shape) == 2 or
                                                          mask_shape[-1] in (3, 4))
    if colour:
        return image[..., :3].astype(float).mean(-1)
    return image.astype(float)


def _colour_kind(mask: np.ndarray, source) -> str:
    """The kind of a colour mask, "RGBA" or "RGB": from its file where it has one (the mask
    reader drops an alpha channel it does not read as the mask)."""
    if mask.shape[-1] == 4:
        return "RGBA"
    if isinstance(source, (str, os.PathLike)):
        from PIL import Image

        try:
            with Image.open(source) as img:
                return "RGBA" if "A" in img.getbands() else "RGB"
        except (OSError, ValueError):
            pass
    return "RGB"


def _mask_array(mask: np.ndarray, grid: Tuple[int, ...], source=None) -> np.ndarray:
    if mask.ndim == len(grid) + 1 and mask.shape[-1] in (3, 4):
        channels = mask[..., :3]
        if not (channels == channels[..., :1]).all():
            raise DescribeError(f"mask: an {_colour_kind(mask, source)} mask whose colour "
                                f"channels differ; give a grey or label mask")
        mask = channels[..., 0]
    if mask.shape != grid:
        raise DescribeError(f"mask of shape {mask.shape} does not match the image {grid}")
    if mask.dtype == bool:
        return mask.astype(np.int64)
    if not np.isfinite(mask).all() or not np.equal(np.mod(mask, 1), 0).all():
        raise DescribeError("mask holds non-integer values (probabilities?); threshold it first")
    return mask.astype(np.int64)


def _spacing(spacing, ndim: int, affine: Optional[np.ndarray]) -> Optional[Tuple[float, ...]]:
    if spacing is None and affine is not None:
        spacing = [float(np.linalg.norm(affine[:3, k])) for k in range(ndim)]
    if spacing is None:
        if ndim == 3:
            raise DescribeError("a 3-D mask needs spacing=(x_mm, y_mm, z_mm) (or give a "
                                "NIfTI/DICOM file, whose affine has it)")
        return None
    values = [float(spacing)] * ndim if np.isscalar(spacing) else [float(s) for s in spacing]
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise DescribeError(f"spacing must be one positive number or {ndim} (mm per pixel, one "
                            f"per axis), got {spacing!r}")
    return tuple(values)


def _merge_fragments(labels: np.ndarray, n: int) -> List[np.ndarray]:
    """Connected components, with small pieces beside a bigger one merged into it."""
    sizes = ndimage.sum(labels > 0, labels, range(1, n + 1))
    owner = list(range(n + 1))
    structure = np.ones((3,) * labels.ndim, bool)
    for k in np.argsort(sizes):
        label = int(k) + 1
        piece = labels == label
        near = ndimage.binary_dilation(piece, structure=structure, iterations=2) & ~piece
        neighbours = [int(v) for v in np.unique(labels[near]) if v and v != label]
        bigger = [v for v in neighbours if sizes[v - 1] > sizes[k]]
        if bigger:
            host = max(bigger, key=lambda v: sizes[v - 1])
            if sizes[k] <= max(2.0, 0.05 * sizes[host - 1]):
                owner[label] = host
    def root(v: int) -> int:
        while owner[v] != v:
            v = owner[v]
        return v
    groups: dict = {}
    for label in range(1, n + 1):
        groups.setdefault(root(label), []).append(label)
    return [np.isin(labels, members) for members in groups.values()]


def split_lesions(mask: np.ndarray) -> Tuple[List[np.ndarray], List[int], str]:
    """(lesion masks, their mask values, how) from an integer mask (see the module docstring);
    lesions in decreasing size."""
    values = [int(v) for v in np.unique(mask) if v != 0]
    if not values:
        return [], [], "empty"
    if len(values) > MAX_LABELS:
        raise DescribeError(f"mask has {len(values)} distinct values; expected a binary mask or at "
                            f"most {MAX_LABELS} labels (threshold a grey mask first)")
    if len(values) > 1:
        lesions, labels, how = [mask == v for v in values], values, "labels"
    else:
        structure = np.ones((3,) * mask.ndim, bool)
        components, n = ndimage.label(mask != 0, structure=structure)
        lesions = _merge_fragments(components, n)
        labels, how = [values[0]] * len(lesions), "components"
    order = np.argsort([-int(m.sum()) for m in lesions], kind="stable")
    return [lesions[k] for k in order], [labels[k] for k in order], how


JPEG_GREY_NOISE = 48  # channel differences a grey JPEG's chroma compression leaves (of 255)


def _mask_file(mask, notes: List[str], image=None):
    """``(values, affine or None)`` of a mask given as a path or an array: a palette image gives its
    indices (VOC-style label masks) and a flat colour with an alpha channel its alpha
    (:func:`~medseg_r.io.images.read_mask`, as training reads masks), a JPEG (lossy: its edges hold every grey value) is binarised
    at half its range, with a note."""
    values = affine = None
    if isinstance(mask, (str, os.PathLike)):
        from ..inference.sources import IMAGE_FORMATS, InputError, format_of

        try:
            image_file = format_of(mask) in IMAGE_FORMATS
        except InputError as exc:
            raise DescribeError(f"mask: {exc}") from None
        if image_file:  # read once: palette indices, a mask drawn as alpha (as training reads it)
            from ..io.images import read_mask

            try:
                values = read_mask(mask)
            except ValueError as exc:
                raise DescribeError(f"mask: {exc}") from None
            if image is not None and image.view is not None:  # drawn on a radiograph's stored
                from ..data.projection import as_displayed  # pixels: turned as the image is

                values = as_displayed(values, image.view)
    if values is None:
        values, affine, _ = _read(mask, "mask", image=image)
    values = np.asarray(values)
    if is_lossy(mask):
        colour = values.ndim == 3 and values.shape[-1] >= 3 and \
            int(np.ptp(values[..., :3].astype(np.int16), axis=-1).max()) > JPEG_GREY_NOISE
        values = mask_foreground(values, lossy=True).astype(np.uint8)  # all zero for an empty mask
        notes.append("JPEG mask (lossy): binarised at half its range"
                     + (" (a colour JPEG: every colour is foreground, one label)" if colour else "")
                     + "; save masks as PNG to keep labels")
    return values, affine


def load_case(image, mask, *, spacing: Optional[Sequence[float]] = None) -> Case:
    """Read and check ``image`` and ``mask`` (arrays or paths); raises :class:`DescribeError`."""
    image_source = _source(image, "image")
    pixels, affine, from_file = _read(image, "image", source=image_source)
    notes: List[str] = []
    mask_values, mask_affine = _mask_file(mask, notes, image_source)
    if affine is not None and mask_affine is not None and np.shape(pixels) == mask_values.shape:
        from ..data.volumes import check_same_grid

        try:
            check_same_grid(affine, mask_affine, mask=str(mask))
        except ValueError as exc:
            raise DescribeError(str(exc)) from None
    grey = _grey(pixels, mask_values.shape)
    labels_in = _mask_array(mask_values, grey.shape, source=mask)
    finite = np.isfinite(grey)
    if not finite.any():
        raise DescribeError("image holds no finite value (all NaN or infinite)")
    if not finite.all():
        grey = np.where(finite, grey, grey[finite].min())
        notes.append(f"{int((~finite).sum())} NaN or infinite image values set to the minimum")
    own = None  # the file's own spacing, where it has one
    if affine is not None and affine.shape == (4, 4) and grey.ndim == 2:
        own = (float(affine[0, 0]), float(affine[1, 1]))
        spacing = spacing if spacing is not None else own
        affine = None
    elif affine is not None:
        own = tuple(float(np.linalg.norm(affine[:3, k])) for k in range(grey.ndim))
    case_spacing = _spacing(spacing, grey.ndim, affine)
    if own is not None and case_spacing is not None and not np.allclose(case_spacing, own, rtol=1e-3):
        shown = " x ".join(f"{v:g}" for v in own)
        given = " x ".join(f"{v:g}" for v in case_spacing)
        notes.append(f"the spacing given ({given} mm) replaces the file's own ({shown} mm)")
    lesions, labels, how = split_lesions(labels_in)
    if how == "labels":
        notes.append(f"label mask: one finding per label ({', '.join(map(str, labels))})")
    return Case(grey=grey, lesions=lesions, labels=labels, spacing=case_spacing, affine=affine,
                from_file=from_file, notes=notes)
