"""A projection radiograph's orientation, from its DICOM ``PatientOrientation`` (0020,0020).

The model reads a chest radiograph as a radiologist does, in the conventional display: the patient's
right on the image's left and the head at the top (``PatientOrientation`` ``L\\F``: columns run
toward the patient's left, rows toward the feet). A film stored otherwise (mirrored, ``R\\F``; upside
down, ``L\\H``; turned a quarter, ``F\\L`` ...) is turned to that display before the model sees it,
and the voxel grid's affine follows, so a mask keeps the stored image's geometry. A lateral view
(``A\\F``, ``P\\F``) is turned head up; left and right overlap in it, so a report's sides cannot be
placed on it and are not used (:func:`medseg_r.report.transform.without_sides`).

A file with ``ImageOrientationPatient`` (a slice of a scan, a localiser) is not read here: its
orientation is that attribute's; nor is a CT, MR, PET or NM image (its plane is that attribute's,
default axial) or a mammogram (``MG``: one breast, whose views are not a chest's). Letters other than
``A P R L H F`` (veterinary terms) or a pair that names no frontal or lateral plane leave the image as
stored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

_FRONTAL, _AXIAL, _SAGITTAL = frozenset("LR"), frozenset("HF"), frozenset("AP")
NOT_READ = frozenset(("CT", "MR", "PT", "NM", "MG"))  # modalities whose PatientOrientation is not read


@dataclass(frozen=True)
class ProjectionView:
    """How a stored projection image is turned to the conventional display.

    ``stored`` is the file's ``PatientOrientation`` as written (``"R\\F"``); ``lateral`` a lateral
    view; ``transpose``, ``flip_columns`` and ``flip_rows`` act on the stored picture ``[rows, columns]``
    in that order."""

    stored: str
    lateral: bool
    transpose: bool
    flip_columns: bool
    flip_rows: bool

    @property
    def turned(self) -> bool:
        return self.transpose or self.flip_columns or self.flip_rows

    def describe(self) -> str:
        """What was done, for ``predict``'s notes."""
        if self.transpose:
            how = "turned a quarter"
        elif self.flip_columns and self.flip_rows:
            how = "turned half a turn"
        elif self.flip_columns:
            how = "mirrored left to right"
        else:
            how = "turned upside down"
        return f"the DICOM's PatientOrientation {self.stored} was read: the image was {how} " \
               f"to the conventional display for the model (" + (
                   "head at the top" if self.lateral else
                   "the patient's right on the image's left, head at the top") + \
               "); the figure shows it so, and the mask file keeps the stored image's geometry"


def _letters(value) -> Optional[Tuple[str, str]]:
    """The two entries of a ``PatientOrientation`` value, upper case; None if not two."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.split("\\")
    else:
        try:
            parts = [str(v) for v in value]
        except TypeError:
            return None
    parts = [p.strip().upper() for p in parts]
    if len(parts) != 2 or not all(parts) or not all(set(p) <= set("APRLHF") for p in parts):
        return None
    return parts[0], parts[1]


def projection_view(ds) -> Optional[ProjectionView]:
    """The orientation of a one-image DICOM header read as a projection radiograph; None when it has
    ``ImageOrientationPatient`` (an empty one is none), a ``Modality`` of :data:`NOT_READ`, no readable
    ``PatientOrientation``, or one naming no frontal or lateral plane. The first letter of each entry
    is its main direction (``LF`` of an oblique film is ``L``)."""
    if ds is None or ds.get("ImageOrientationPatient") or \
            str(ds.get("Modality", "") or "").upper() in NOT_READ:
        return None
    letters = _letters(ds.get("PatientOrientation"))
    if letters is None:
        return None
    # the directions in which the column index and the row index increase
    along_row, along_column = letters[0][0], letters[1][0]
    transpose = along_row in _AXIAL and along_column in (_FRONTAL | _SAGITTAL)
    if transpose:
        along_row, along_column = along_column, along_row
    if along_column not in _AXIAL or along_row not in (_FRONTAL | _SAGITTAL):
        return None
    lateral = along_row in _SAGITTAL
    return ProjectionView(stored="\\".join(letters), lateral=lateral, transpose=transpose,
                          flip_columns=not lateral and along_row == "R", flip_rows=along_column == "H")


def upright(voxels: np.ndarray, affine: np.ndarray, view: ProjectionView) -> Tuple[np.ndarray, np.ndarray]:
    """A one-image volume ``[X, Y, 1]`` (displayed as stored: display ``[r, c]`` is voxel
    ``[X-1-c, Y-1-r]``) turned by ``view``, with the affine that keeps each pixel's position: a
    transposed display swaps voxel axes 0 and 1, flipped display columns flip voxel axis 0, flipped
    rows voxel axis 1."""
    from nibabel.orientations import apply_orientation, inv_ornt_aff

    steps = []
    if view.transpose:
        steps.append([[1, 1], [0, 1], [2, 1]])
    if view.flip_columns:
        steps.append([[0, -1], [1, 1], [2, 1]])
    if view.flip_rows:
        steps.append([[0, 1], [1, -1], [2, 1]])
    for step in steps:
        ornt = np.array(step, dtype=float)
        affine = affine @ inv_ornt_aff(ornt, voxels.shape)
        voxels = apply_orientation(voxels, ornt)
    return np.ascontiguousarray(voxels, dtype=np.float32), affine


def _swap(picture: np.ndarray) -> np.ndarray:
    return np.swapaxes(picture, 0, 1)  # rows and columns; a colour axis after them stays


def as_displayed(stored: np.ndarray, view: Optional[ProjectionView]) -> np.ndarray:
    """A picture ``[rows, columns, ...]`` in the file's stored pixel order (a mask drawn on it) turned
    as ``view`` turns the image for the model (none: unchanged)."""
    if view is not None:
        if view.transpose:
            stored = _swap(stored)
        if view.flip_columns:
            stored = stored[:, ::-1]
        if view.flip_rows:
            stored = stored[::-1]
    return np.ascontiguousarray(stored)


def as_stored(display: np.ndarray, view: Optional[ProjectionView]) -> np.ndarray:
    """A picture ``[rows, columns, ...]`` in the conventional display (as the model saw it) back in the
    file's stored pixel order: the inverse of :func:`as_displayed`."""
    if view is not None:
        if view.flip_rows:
            display = display[::-1]
        if view.flip_columns:
            display = display[:, ::-1]
        if view.transpose:
            display = _swap(display)
    return np.ascontiguousarray(display)
