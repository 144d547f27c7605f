"""The embedded phantom benchmark: chest-radiograph-like cases from real lung masks and real LIDC nodules."""
from .generate import make_phantom

__all__ = ["make_phantom"]
