"""Reading and writing images with clear errors; atomic writes; the one image conversion."""
from .atomic import atomic_write
from .images import image_to_tensor, read_image, to_unit_float

__all__ = ["atomic_write", "image_to_tensor", "read_image", "to_unit_float"]
