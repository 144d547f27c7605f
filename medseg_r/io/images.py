"""2-D image files (PNG, JPEG, TIFF, BMP; 8/16-bit, grey or RGB) -> numpy arrays, with clear errors.

PIL reads most of them; colour PNG and TIFF files of 16 bits per sample, which PIL would cut to 8,
are read with pypng and tifffile (imagecodecs for compressed TIFFs)."""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MAX_PIXELS = 16384 * 16384


@contextmanager
def _opened(path: str):
    """A PIL image of ``path``, header read and pixels not yet decoded, with this module's errors:
    ``FileNotFoundError``, or a ``ValueError`` for a file that is not an image, cannot be decoded
    (inside the ``with`` block too) or is over :data:`MAX_PIXELS`."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():  # over the limit is refused below, with its own message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            # PIL itself refuses only twice its limit; the header says the size before decoding
            if img.size[0] * img.size[1] > MAX_PIXELS:
                raise Image.DecompressionBombError(f"{img.size[0]} x {img.size[1]} pixels")
            yield img
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not a readable image (corrupt, or not PNG/JPEG/TIFF/BMP)") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{path} could not be decoded: {exc}") from None
    except Image.DecompressionBombError:
        raise ValueError(f"{path} is larger than {MAX_PIXELS:,} pixels") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a 2-D image as ``[H, W]`` or ``[H, W, 3]`` (native dtype: uint8, uint16, float...)."""
    path = os.fspath(path)
    with _opened(path) as img:
        return _pixels(img, path)


def _pixels(img, path: str) -> np.ndarray:
    """The pixels of the opened image ``img`` of ``path``, as :func:`read_image` gives them."""
    arr = _deep_colour(img, path)
    if arr is None:
        img.load()
        native = img.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L", "1")
        arr = np.array(img if native else img.convert("RGB"))
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
        raise ValueError(f"{path} has an unsupported shape {arr.shape}")
    return arr


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a 2-D mask file for :func:`mask_foreground`: a label palette image gives its indices
    (VOC-style label masks: index 0 is background, whatever colour the palette paints it; see
    :func:`_label_palette`), an 8-bit image with an alpha channel painted one colour everywhere (any
    hue) gives its alpha as one 0/255 mask (a mask drawn as transparency over a flat colour); any other is read
    as :func:`read_image` reads it."""
    path = os.fspath(path)
    with _opened(path) as img:
        if img.mode in ("P", "PA"):
            img.load()
            arr = np.array(img)
            index = arr[..., 0] if arr.ndim == 3 else arr
            if _label_palette(img, index):
                return index
        elif img.mode in ("RGBA", "LA"):
            img.load()
            arr = np.array(img)
            colour, alpha = arr[..., :-1], arr[..., -1]
            flat = (colour == colour.reshape(-1, colour.shape[-1])[0]).all()  # one colour, any hue
            if flat and alpha.min() != alpha.max():
                return (alpha > 0).astype(np.uint8) * 255  # soft edges are one mask, not labels
        return _pixels(img, path)


def _label_palette(img, index: np.ndarray) -> bool:
    """Whether a palette image is a label mask read by its indices: its index 0 is painted black
    (VOC's convention), or the colours it uses are not all greys (a white background, a red lesion).
    A grey palette whose index 0 is not black (what quantising a black-and-white mask gives:
    white, the lesion, may be index 0) is read by its colours instead."""
    palette = np.array(img.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    used = np.unique(index)
    used = used[used < len(palette)]
    if not len(palette) or not len(used):
        return True
    if not palette[0].any():
        return True
    colours = palette[used]
    return bool((colours.max(1) != colours.min(1)).any())


def _deep_colour(img, path: str):
    """A colour (or grey + alpha) PNG or TIFF of more than 8 bits per sample, which PIL reads as 8
    bits (keeping the high byte): decoded with pypng or tifffile (its first page; compressed TIFFs
    through imagecodecs) instead, as ``[H, W, 3]`` (alpha dropped) or ``[H, W]`` (grey + alpha),
    native dtype. ``None`` for every other image."""
    import zlib

    if img.format == "PNG":
        with open(path, "rb") as f:
            header = f.read(26)  # signature, IHDR: width, height, bit depth, colour type
        if len(header) < 26 or header[24] != 16 or header[25] not in (2, 4, 6):
            return None
        import png

        try:  # read(), not asDirect(): no sBIT shift, the values as stored (as for 16-bit grey)
            width, height, rows, info = png.Reader(filename=path).read()
            arr = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
        except (png.Error, ValueError, OSError, zlib.error) as exc:
            raise ValueError(f"{path} could not be decoded: {exc}") from None
        arr = arr.reshape(height, width, info["planes"])
    elif img.format == "TIFF":
        bits = img.tag_v2.get(258)  # BitsPerSample, one per sample
        if not isinstance(bits, tuple) or len(bits) < 2 or max(bits) <= 8:
            return None
        import tifffile

        try:
            with tifffile.TiffFile(path) as tiff:
                page = tiff.pages[0]
                arr = page.asarray()
                if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
                    arr = np.moveaxis(arr, 0, -1)  # samples first
        except (ValueError, OSError, zlib.error, tifffile.TiffFileError) as exc:
            raise ValueError(f"{path} could not be decoded: {exc}") from None
        if arr.ndim != 3:
            raise ValueError(f"{path} has an unsupported shape {arr.shape}")
    else:
        return None
    return arr[..., 0] if arr.shape[-1] == 2 else arr[..., :3]


def image_size(path: str | os.PathLike) -> tuple:
    """``(height, width)`` of a 2-D image file from its header, without decoding the pixels (cheap
    enough to check thousands of files before training), with :func:`read_image`'s errors for a
    file that is missing, not an image or too large; pixel data damaged behind a good header is
    found only by :func:`read_image`."""
    with _opened(os.fspath(path)) as img:
        width, height = img.size
    return height, width


LOSSY_SUFFIXES = (".jpg", ".jpeg")


def is_lossy(path) -> bool:
    """Whether ``path`` names a lossy (JPEG) image, whose mask edges hold every grey value."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(LOSSY_SUFFIXES)


def mask_foreground(values: np.ndarray, *, lossy: bool = False) -> np.ndarray:
    """The one rule by which a mask image marks its foreground, used by training, evaluation,
    ``predict --reference`` and ``describe``: ``[H, W]`` or ``[H, W, C]`` -> bool ``[H, W]``. A colour
    mask's channels are combined by their maximum (a red, green or white mask alike; alpha dropped);
    a lossy (JPEG) mask is cut at half its range (its compression noise is not foreground), any other
    at zero. An empty mask gives all ``False``."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        arr = np.nan_to_num(arr, nan=0.0)  # NaN is background; no copy of an integer mask
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., :3].max(axis=-1)
    if arr.ndim != 2:
        raise ValueError(f"a mask image must be [H, W] or [H, W, C] with C in 1, 3, 4; got shape {arr.shape}")
    if lossy:
        top = float(arr.max()) if arr.size else 0.0
        return arr > top / 2 if top > 0 else np.zeros(arr.shape, dtype=bool)
    return arr > 0


ROBUST_PERCENTILES = (0.5, 99.5)  # integer images here and volumes' default (data.volumes.normalise)


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """The one conversion of an image array for the model, used everywhere in the package:
    ``[H, W]`` or ``[H, W, C]`` (C = 1, 3 or 4; any dtype) -> float32 ``[H, W, 3]`` in ``[0, 1]``.

    uint8 is divided by 255; other integers (a 12- or 16-bit radiograph) are stretched from their 0.5th
    to their 99.5th percentile and clipped, as volumes are (a burnt-in marker or one hot pixel at 65535
    left the lungs black under a min-max stretch); floats are min-max scaled (a constant image gives
    zeros). Grey is repeated to three channels, alpha is dropped. NaN or infinite values are an error (a
    ``ValueError``): callers that have a policy for them (NIfTI sources: the volume's minimum) apply it
    first."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., :3] if arr.shape[-1] >= 3 else np.repeat(arr, 3, axis=-1)
    elif arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    else:
        raise ValueError(f"image must be [H, W] or [H, W, C] with C in 1, 3, 4; got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"empty image of shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"image must hold real numbers (integers or floats), got dtype {arr.dtype} "
                         f"(complex data: take its magnitude, np.abs, first)")
    data = arr.astype(np.float32)
    if not np.isfinite(data).all():
        raise ValueError("image contains NaN or infinite values")
    lo, hi = float(data.min()), float(data.max())
    if np.issubdtype(arr.dtype, np.integer) and hi > lo:
        low, high = (float(v) for v in np.percentile(data, ROBUST_PERCENTILES))
        if high > low:  # else (most pixels one value) the full range
            lo, hi = low, high
            data = np.clip(data, lo, hi)
    return (data - lo) / (hi - lo) if hi > lo else np.zeros_like(data)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """``[H, W]`` or ``[H, W, C]`` of any dtype -> ``[H, W, 3]`` uint8 for display, scaled as the
    model scales it (:func:`to_unit_float`: uint8 as stored, other integers by percentiles, floats
    min-max): the one conversion of predict's figures and the web page's pictures."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:  # as stored, without a float copy
        if arr.ndim == 3:
            arr = arr[..., :3] if arr.shape[-1] >= 3 else np.repeat(arr[..., :1], 3, axis=-1)
        else:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        return np.ascontiguousarray(arr)
    return (to_unit_float(arr) * 255).round().astype(np.uint8)


def image_to_tensor(image: np.ndarray):
    """:func:`to_unit_float` as a torch tensor ``[1, 3, H, W]``."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(to_unit_float(image))).permute(2, 0, 1).unsqueeze(0)


HOUNSFIELD_AIR = -500.0  # values this far below zero are CT attenuation (air about -1000 HU)


def is_hounsfield(values: np.ndarray) -> bool:
    """Whether a volume's values read as Hounsfield units: some lie at or below -500 (air, lung),
    which MR and other intensities never reach, whatever the largest value (a crop of the lung may
    hold no bone)."""
    finite = values[np.isfinite(values)]
    return bool(finite.size) and float(finite.min()) <= HOUNSFIELD_AIR
