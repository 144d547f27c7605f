"""3-D volumes (NIfTI via nibabel, DICOM series via pydicom) with one report per case, as 2-D slices
(each an axial record whose report the data set reads at its level, as predict does: report_on_slice).

A volume data set is a folder with ``cases.jsonl`` or ``cases.csv``: ``image`` (``.nii``/``.nii.gz``, a
DICOM file or a DICOM series folder), ``mask`` (NIfTI or DICOM, same grid), ``report``, optional ``split``.
Slices are axial (the last voxel axis after reorientation to RAS+ for NIfTI). Every slice with foreground is
kept, plus ``empty_fraction`` x that many empty slices (chosen with ``seed``).
Intensity: ``window=(level, width)`` for CT (e.g. lung ``(-600, 1500)``), else ``percentiles=(0.5, 99.5)``
(MR default), mapped to [0, 1].
"""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import numpy as np

from ..io.images import ROBUST_PERCENTILES
from .datasets import Record
from .projection import projection_view, upright

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
            loaded = nib.load(path)
            img = nifti_as_volume(loaded, path)
            if len(img.shape) != 3:
                raise ValueError(f"{path}: expected a 3-D volume, got shape {tuple(loaded.shape)}")
            img = nib.as_closest_canonical(img)
            data = np.asarray(img.dataobj, dtype=np.float32)
        except ValueError as exc:
            if str(exc).startswith(f"{path}: "):
                raise
            raise ValueError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
        except Exception as exc:
            raise ValueError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
        return data, img.affine
    return load_dicom(path)


def nifti_as_volume(img, path: str):
    """A loaded NIfTI image with three axes, for reorienting (used by :func:`load_volume` and
    ``predict``'s reader alike): ``(X, Y, Z, 1)``, as converters often write one volume, without its
    trailing axes; a 2-D image with a slice axis added (its plane must be axial: a ``ValueError``
    otherwise); any other as it is."""
    import nibabel as nib

    shape = tuple(img.shape)
    if len(shape) > 3 and all(n == 1 for n in shape[3:]):
        return nib.Nifti1Image(np.asanyarray(img.dataobj).reshape(shape[:3]), img.affine)
    if len(shape) == 2:  # one slice: nibabel reorients three axes
        if int(nib.orientations.io_orientation(img.affine)[2, 0]) != 2:
            raise ValueError(f"{path}: a 2-D NIfTI whose plane is not axial (its affine turns the "
                             f"slice normal away from head-foot); give it as a PNG or a 3-D volume")
        return nib.Nifti1Image(np.asanyarray(img.dataobj)[..., None], img.affine)
    return img


# How far a DICOM series' slice gaps may stray from even spacing (a fraction of the mean gap)
SPACING_TOLERANCE = 0.1


# Elements every real DICOM image file has one of; bytes read by force have none
_DICOM_SIGNS = ("SOPClassUID", "SOPInstanceUID", "Modality", "StudyInstanceUID", "SeriesInstanceUID",
                "PatientID", "Rows")


def _is_dicom(ds) -> bool:
    """Whether a file read by force holds one of the elements every real DICOM image has
    (:data:`_DICOM_SIGNS`); bytes that are no DICOM read as a dataset without any."""
    return any(k in ds for k in _DICOM_SIGNS)


def _pixel_spacing(ds):
    """A slice's ``PixelSpacing`` (or, for a projection radiograph, ``ImagerPixelSpacing``); None."""
    return getattr(ds, "PixelSpacing", None) or getattr(ds, "ImagerPixelSpacing", None)


def _dicom_files(path: str) -> List[str]:
    """A DICOM file, or the files of a series folder (sorted by name, hidden ones left out)."""
    if not os.path.isdir(path):
        return [path]
    return [os.path.join(path, f) for f in sorted(os.listdir(path)) if not f.startswith(".")]


def _without_preamble(path: str):
    """A series folder's file read by force (no DICOM preamble), kept only when it is a DICOM image
    (pixel data, :func:`_is_dicom`); else ``None`` (a text file, a thumbnail beside the slices)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
        ok = "PixelData" in ds and _is_dicom(ds)
    except Exception:  # bytes that are no DICOM at all
        return None
    return ds if ok else None


def _check_one_geometry(slices, orient: np.ndarray) -> None:
    """The slices of one series must share the first one's plane and pixel size and each give its
    position: a ``ValueError`` naming the first file that does not (one voxel grid cannot hold it)."""
    first = _pixel_spacing(slices[0])
    for ds in slices:
        name = getattr(ds, "filename", None) or "a slice"
        if getattr(ds, "ImagePositionPatient", None) is None:
            raise ValueError(f"{name}: no ImagePositionPatient; the slices of a series cannot be "
                             f"put in order without it")
        own = np.array([float(v) for v in (ds.get("ImageOrientationPatient") or [1, 0, 0, 0, 1, 0])])
        if own.shape != orient.shape or not np.allclose(own, orient, atol=1e-3):
            raise ValueError(f"{name}: its ImageOrientationPatient {[round(float(v), 4) for v in own]} "
                             f"differs from the series' first slice's; one voxel grid cannot hold them")
        mine = _pixel_spacing(ds)
        if (mine is None) != (first is None) or (mine is not None and not np.allclose(
                [float(v) for v in mine], [float(v) for v in first], rtol=1e-3)):
            raise ValueError(f"{name}: its pixel spacing {mine} differs from the series' first "
                             f"slice's {first}; one voxel grid cannot hold them")


def load_dicom(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """A DICOM file or series folder -> ``(voxels [X, Y, Z] float32 in RAS+ order, RAS affine 4x4)``, whatever
    the series' plane (a coronal series of two or more slices is reordered so that z is superior).

    Slices are sorted along the slice normal (``ImageOrientationPatient`` x ``ImagePositionPatient``), pixel
    values rescaled (``RescaleSlope/Intercept``), ``MONOCHROME1`` inverted (not a CT's, whose rescaled
    values are Hounsfield units). A file without orientation (e.g.
    a radiograph) is one slice with the default orientation, so it displays exactly as stored, unless
    its ``PatientOrientation`` says it is stored other than in the conventional display
    (:mod:`.projection`): it is then turned to it, the affine keeping each pixel's position."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    slices = []
    for f in _dicom_files(path):
        if not os.path.isfile(f):
            continue
        try:
            ds = pydicom.dcmread(f, force=not os.path.isdir(path))
        except (InvalidDicomError, OSError, ValueError, EOFError, AttributeError, KeyError):
            if not os.path.isdir(path):
                raise ValueError(f"{f}: not a readable DICOM file") from None
            ds = _without_preamble(f)  # some exports leave out the 128-byte preamble
            if ds is None:
                continue
        if "PixelData" not in ds:
            if os.path.isdir(path) and "Rows" not in ds:  # a DICOMDIR, a report: no image
                continue
            if ds.preamble is None and not _is_dicom(ds):  # read by force
                raise ValueError(f"{f}: not a readable DICOM file")
            raise ValueError(f"{f}: DICOM file without pixel data")
        slices.append(ds)
    if not slices:
        folders = sorted(n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n))
                         and not n.startswith(".")) if os.path.isdir(path) else []
        if folders:
            raise ValueError(f"{path}: no DICOM image in the folder itself; it holds folders "
                             f"({', '.join(folders[:5])}{', ...' if len(folders) > 5 else ''}): give "
                             f"one series' folder")
        raise ValueError(f"{path}: no readable DICOM slice")
    series = {}
    for ds in slices:
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "") or ""), []).append(ds)
    if len(series) > 1:
        counts = ", ".join(f"{uid or '(no UID)'}: {len(members)} slice(s)"
                           for uid, members in sorted(series.items()))
        raise ValueError(f"{path}: holds {len(series)} DICOM series ({counts}); give one series' "
                         f"folder")
    first = slices[0]
    # an element present but empty is none given (the default, as projection_view reads it)
    orient = np.array([float(v) for v in (first.get("ImageOrientationPatient") or [1, 0, 0, 0, 1, 0])])
    row_dir, col_dir = orient[:3], orient[3:]  # LPS directions of increasing column / row index
    if orient.shape != (6,) or not np.isfinite(orient).all() or not np.allclose(
            [np.linalg.norm(row_dir), np.linalg.norm(col_dir)], 1, atol=1e-2) or \
            abs(float(row_dir @ col_dir)) > 1e-2:
        shown = [round(float(v), 4) for v in orient]
        raise ValueError(f"{path}: ImageOrientationPatient {shown} is not two perpendicular unit "
                         f"directions (a damaged header?)")
    normal = np.cross(row_dir, col_dir)

    def position(ds) -> np.ndarray:
        return np.array([float(v) for v in getattr(ds, "ImagePositionPatient", [0, 0, 0])])

    if len(slices) > 1:
        _check_one_geometry(slices, orient)
    slices.sort(key=lambda d: (float(position(d) @ normal), int(getattr(d, "InstanceNumber", 0) or 0)))
    shapes = {(int(d.Rows), int(d.Columns)) for d in slices}
    if len(shapes) != 1:
        raise ValueError(f"{path}: slices of different sizes {sorted(shapes)}")
    arrays, inverted = [], []
    for ds in slices:
        try:
            arr = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # truncated or undecodable pixel data
            name = getattr(ds, "filename", None) or path
            raise ValueError(f"{name}: cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from None
        if arr.ndim != 2:
            raise ValueError(f"{path}: expected single-frame greyscale slices, got pixel array {arr.shape} "
                             f"(colour or multi-frame DICOM: export it as PNG/TIFF, or as a NIfTI volume)")
        arr = arr * float(getattr(ds, "RescaleSlope", 1.0) or 1.0) + float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        # CT values rescaled are Hounsfield units whatever the display flag says (a window needs them)
        inverted.append(str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
                        and str(getattr(ds, "Modality", "")).upper() != "CT")
        # Stored pixels [row, column] -> voxels [X, Y] with X = reversed columns, Y = reversed rows: for an
        # axial series in the usual orientation that is RAS+ (x toward the patient's right, y anterior).
        arrays.append(arr[::-1, ::-1].T)
    if any(inverted):  # MONOCHROME1 (low values bright): one inversion for the whole series, so that
        # one tissue keeps one value on every slice
        flipped = [a for a, inv in zip(arrays, inverted) if inv]
        top = max(float(a.max()) for a in flipped) + min(float(a.min()) for a in flipped)
        arrays = [top - a if inv else a for a, inv in zip(arrays, inverted)]
    data = np.stack(arrays, axis=-1)
    rows, cols = shapes.pop()
    dr, dc = (float(v) for v in (_pixel_spacing(first) or [1.0, 1.0]))
    if not (np.isfinite([dr, dc]).all() and dr > 0 and dc > 0):
        raise ValueError(f"{path}: pixel spacing {dr:g} x {dc:g} mm is not a size (a damaged header?)")
    if len(slices) > 1:
        step = (position(slices[-1]) - position(slices[0])) / (len(slices) - 1)
        if np.linalg.norm(step) < 1e-6:
            raise ValueError(f"{path}: all slices share one position (not a volume series)")
        gaps = np.diff([float(position(d) @ normal) for d in slices])
        even = abs(float(step @ normal))  # along the normal: a tilted gantry's step leans
        if np.abs(gaps - even).max() > max(0.01, SPACING_TOLERANCE * even):
            raise ValueError(f"{path}: slices are not evenly spaced (gaps from {gaps.min():.3g} to "
                             f"{gaps.max():.3g} mm along the slice normal: missing or repeated "
                             f"slices?); one voxel grid cannot hold them")
    else:
        step = normal * float(getattr(first, "SliceThickness", 1.0) or 1.0)
    # LPS position of stored pixel (r, c, k): P0 + c*dc*row_dir + r*dr*col_dir + k*step; voxel (i, j) = (cols-1-c, rows-1-r).
    origin = position(slices[0]) + (cols - 1) * dc * row_dir + (rows - 1) * dr * col_dir
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = -dc * row_dir, -dr * col_dir, step, origin
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # LPS -> RAS
    if data.shape[2] == 1:  # one image (a radiograph, a scout): it displays as stored, or a projection
        # radiograph stored otherwise is turned to the conventional display by its PatientOrientation
        view = projection_view(first)
        if view is not None and view.turned:
            data, affine = upright(data, affine, view)
        return data, affine
    # A coronal or sagittal series (or an axial one stored otherwise) is reordered to RAS+ voxels as a
    # NIfTI is, so that z is the superior axis the report's zones are read along.
    import nibabel as nib

    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    return np.asarray(canonical.dataobj, dtype=np.float32), canonical.affine


CROSS_SECTIONAL = frozenset(("CT", "MR", "PT", "NM"))  # DICOM modalities of slices through the body


def is_axial_cross_section(ds) -> bool:
    """Whether a DICOM header (:func:`first_header`) is that of an axial slice through the body: a
    CT, MR or PET ``Modality``, not a localiser (scout) projection (``ImageType``), and a plane
    whose normal runs mostly head to foot (``ImageOrientationPatient``; none given: the default
    axial one). A coronal or sagittal slice keeps its upper/lower zones: they lie in its plane.
    ``None`` (no header) is no axial slice."""
    if ds is None:
        return False
    kinds = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if str(ds.get("Modality", "")) not in CROSS_SECTIONAL or "LOCALIZER" in kinds:
        return False
    try:
        orient = [float(v) for v in (ds.get("ImageOrientationPatient") or [1, 0, 0, 0, 1, 0])]
        normal = np.cross(orient[:3], orient[3:6])
    except (TypeError, ValueError):  # load_dicom refuses a damaged orientation
        return False
    return bool(abs(normal[2]) >= 0.7 * np.linalg.norm(normal) > 0)


def first_header(path: str):
    """The header (no pixels) of a DICOM file, or of the first image file of a series folder;
    ``None`` when none can be read (read as :func:`load_dicom` reads them: a single file, or one
    without the DICOM preamble, by force)."""
    import pydicom

    single = os.path.isfile(path)
    for name in _dicom_files(path):
        try:
            ds = pydicom.dcmread(name, stop_before_pixels=True, force=single)
        except Exception:  # no preamble (read by force, as load_dicom does), or no DICOM file
            try:
                ds = pydicom.dcmread(name, stop_before_pixels=True, force=True)
            except Exception:  # not a DICOM file: the next one
                continue
            if not _is_dicom(ds):
                continue
        if single or "Rows" in ds:  # in a folder: an image, not the DICOMDIR beside it
            return ds
    return None


def has_pixel_spacing(ds) -> bool:
    """Whether a DICOM header (:func:`first_header`) states its pixel size (``PixelSpacing`` or
    ``ImagerPixelSpacing``); :func:`load_dicom` takes 1 mm when it does not."""
    return ds is not None and bool(_pixel_spacing(ds))


def normalise(volume: np.ndarray, *, window: Optional[Tuple[float, float]] = None,
              percentiles: Tuple[float, float] = ROBUST_PERCENTILES) -> np.ndarray:
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
                  empty_fraction: float = 0.1, seed: int = 0,
                  axial_slice: bool = True, lateral: bool = False) -> List[Record]:
    """The records of one volume's slices: those that show the lesion and ``empty_fraction`` of
    the others. Each is an axial record told its report at its level; a volume of one slice is
    one only when ``axial_slice`` (an axial CT/MR slice: its report's zones are dropped, as
    ``predict`` drops them), else a plain image whose zones lie in its plane (a radiograph, a 2-D
    NIfTI), again as ``predict`` reads it; ``lateral``: a lateral radiograph, whose report's sides
    are not used (as ``predict`` reads it)."""
    if image.shape != mask.shape:
        raise ValueError(f"{case_id}: mask shape {mask.shape} does not match image {image.shape}")
    full = [z for z in range(image.shape[2]) if mask[..., z].any()]
    empty = [z for z in range(image.shape[2]) if z not in set(full)]
    rng = np.random.default_rng(seed)
    k = min(len(empty), int(round(empty_fraction * max(len(full), 1))))
    chosen = sorted(full + (rng.choice(empty, size=k, replace=False).tolist() if k else []))
    depth = image.shape[2]
    return [Record(id=f"{case_id}_z{z:04d}", image=display_slice(image, z), mask=(display_slice(mask, z) > 0)
                   .astype(np.uint8), report=report, split=split, tags=[] if z in full else ["negative_slice"],
                   axial=depth > 1 or axial_slice, level=z / (depth - 1) if depth > 1 else None,
                   lateral=lateral)
            for z in chosen]


def display_slice(volume: np.ndarray, z: int) -> np.ndarray:
    """Axial slice ``z`` of a RAS+ volume as displayed in radiological convention: anterior at the top,
    the patient's right on the image's left."""
    return np.ascontiguousarray(volume[..., z].T[::-1, ::-1])


def check_same_grid(image_affine: np.ndarray, mask_affine: np.ndarray, *, mask: str) -> None:
    """A mask volume must lie on its image's voxel grid (same origin, spacing and directions, within
    0.01 mm and 1e-4 of a direction): a mask of the same shape on another grid marks other voxels
    than it names. Raises ``ValueError`` saying how the two differ."""
    a, b = np.asarray(image_affine, dtype=np.float64), np.asarray(mask_affine, dtype=np.float64)
    spacing_a, spacing_b = np.linalg.norm(a[:3, :3], axis=0), np.linalg.norm(b[:3, :3], axis=0)
    same_axes = np.allclose(a[:3, :3] / spacing_a, b[:3, :3] / np.maximum(spacing_b, 1e-12), atol=1e-4)
    same_spacing = np.allclose(spacing_a, spacing_b, atol=1e-2)
    if same_axes and same_spacing and np.allclose(a[:3, 3], b[:3, 3], atol=1e-2):
        return

    def fmt(v):
        return "(" + ", ".join(f"{x:.2f}" for x in v) + ")"

    raise ValueError(f"mask {mask} is not on its image's voxel grid (origin {fmt(b[:3, 3])} mm against "
                     f"{fmt(a[:3, 3])}, spacing {fmt(spacing_b)} against {fmt(spacing_a)}"
                     f"{'' if same_axes else ', other axis directions'}): resample it onto the image")


def _check_volume_options(window, percentiles, empty_fraction) -> None:
    """The volume folder's ``dataset_options``, each named when it is wrong."""
    def numbers(value, what):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2 or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ValueError(f"dataset option {what} must be two numbers, got {value!r}")

    if window is not None:
        numbers(window, "window [level, width]")
        if window[1] <= 0:
            raise ValueError(f"dataset option window: the width must be positive, got {window[1]}")
    numbers(percentiles, "percentiles [low, high]")
    if not 0 <= percentiles[0] < percentiles[1] <= 100:
        raise ValueError(f"dataset option percentiles must rise within 0-100, got {list(percentiles)}")
    if isinstance(empty_fraction, bool) or not isinstance(empty_fraction, (int, float)) or empty_fraction < 0:
        raise ValueError(f"dataset option empty_fraction must be a number >= 0, got {empty_fraction!r}")


def read_volume_folder(folder: str, *, window: Optional[Tuple[float, float]] = None,
                       percentiles: Tuple[float, float] = ROBUST_PERCENTILES, empty_fraction: float = 0.1,
                       seed: int = 0, **_: object) -> List[Record]:
    _check_volume_options(window, percentiles, empty_fraction)
    table = next((os.path.join(folder, n) for n in ("cases.jsonl", "cases.csv") if os.path.isfile(os.path.join(folder, n))),
                 None)
    if table is None:
        raise ValueError(f"{folder}: not a known data set layout (manifest.jsonl, LViT img/+labelcol/, "
                         "or a volume folder with cases.jsonl / cases.csv)")
    from ..io.rows import read_rows

    rows = [row for _, row in read_rows(table)]
    records: List[Record] = []
    problems: List[str] = []  # every case that cannot be read, listed at once
    for i, row in enumerate(rows):
        try:
            records += _volume_case(folder, row, window=window, percentiles=percentiles,
                                    empty_fraction=empty_fraction, seed=seed + i)
        except (ValueError, FileNotFoundError) as exc:
            problems.append(f"row {i + 1}: {exc}")
    if problems:
        from ..io.text import first_few

        raise ValueError(f"{table}: {len(problems)} of {len(rows)} case(s) cannot be used: "
                         f"{first_few(problems, 3)}")
    return records


def _volume_case(folder: str, row: dict, *, window, percentiles, empty_fraction: float,
                 seed: int) -> List[Record]:
    """The slice records of one row of a volume folder's table (a ``ValueError`` or
    ``FileNotFoundError`` saying what is wrong with it)."""
    missing = [key for key in ("image", "mask") if not str(row.get(key) or "").strip()]
    if missing:
        raise ValueError(f"no {' and no '.join(missing)} (each case needs an image and a mask "
                         f"volume)")
    image_path = os.path.join(folder, row["image"])
    mask_path = os.path.join(folder, row["mask"])
    image, image_affine = load_volume(image_path)
    mask, mask_affine = load_volume(mask_path)
    mask, mask_affine = on_axes_of(mask, mask_affine, image_affine)
    if image.shape != mask.shape:
        raise ValueError(f"mask {row['mask']} has shape {mask.shape} but image {row['image']} has "
                         f"{image.shape} (after reorientation to RAS+)")
    check_same_grid(image_affine, mask_affine, mask=mask_path)
    case_id = row.get("id") or os.path.basename(str(row["image"])).split(".")[0]
    # one slice: an axial CT/MR slice as predict tells it (a NIfTI's 2-D image never is)
    header = first_header(image_path) if image.shape[2] == 1 and not _is_nifti(image_path) else None
    axial = is_axial_cross_section(header)
    view = projection_view(header)  # a lateral radiograph: its sides are not used, as predict does
    return volume_slices(case_id, normalise(image, window=window, percentiles=percentiles), mask,
                         str(row.get("report", "")), split=row.get("split") or None,
                         empty_fraction=empty_fraction, seed=seed,
                         axial_slice=image.shape[2] > 1 or axial, lateral=view is not None and view.lateral)


def on_axes_of(mask: np.ndarray, mask_affine: np.ndarray,
                image_affine: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """A mask volume with its voxel axes ordered and flipped as its image's are (a radiograph turned
    to the conventional display by its ``PatientOrientation`` is no longer RAS+, while a NIfTI mask is
    read as RAS+); unchanged when they already agree. :func:`check_same_grid` then compares them."""
    import nibabel as nib

    own, wanted = nib.orientations.io_orientation(mask_affine), nib.orientations.io_orientation(image_affine)
    if np.isnan(own).any() or np.isnan(wanted).any() or np.array_equal(own, wanted):
        return mask, mask_affine
    turn = nib.orientations.ornt_transform(own, wanted)
    return (np.ascontiguousarray(nib.orientations.apply_orientation(mask, turn)),
            mask_affine @ nib.orientations.inv_ornt_aff(turn, mask.shape))
