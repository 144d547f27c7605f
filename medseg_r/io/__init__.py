"""Reading and writing images with clear errors; atomic writes."""
from .atomic import atomic_write
from .images import read_image

__all__ = ["atomic_write", "read_image"]
