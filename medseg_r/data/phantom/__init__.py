"""The embedded phantom benchmark: chest radiographs drawn around real lung masks, with real LIDC
nodule outlines, reports and target masks (see :mod:`.generate`)."""
from .generate import make_phantom

__all__ = ["make_phantom"]
