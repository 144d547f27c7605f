"""2-D image files (PNG, JPEG, TIFF, BMP; 8/16-bit, grey or RGB) -> numpy arrays, with clear errors."""
from __future__ import annotations

import os

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MAX_PIXELS = 16384 * 16384


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a 2-D image as ``[H, W]`` or ``[H, W, 3]`` (native dtype: uint8, uint16, float...)."""
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L", "1"):
                arr = np.array(img)
            else:
                arr = np.array(img.convert("RGB"))
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not a readable image (corrupt, or not PNG/JPEG/TIFF/BMP)") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{path} could not be decoded: {exc}") from None
    except Image.DecompressionBombError:
        raise ValueError(f"{path} is larger than {MAX_PIXELS:,} pixels") from None
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
        raise ValueError(f"{path} has an unsupported shape {arr.shape}")
    return arr
