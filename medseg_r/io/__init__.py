"""Reading and writing images with clear errors; atomic writes; JSON-lines rows; the one image conversion."""
from .atomic import atomic_write
from .images import image_to_tensor, read_image, to_unit_float
from .jsonl import read_jsonl_rows
from .rows import read_rows

__all__ = ["atomic_write", "image_to_tensor", "read_image", "read_jsonl_rows", "read_rows", "to_unit_float"]
