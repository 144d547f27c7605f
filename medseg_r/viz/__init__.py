"""Pictures of results: overlays of masks and location attention."""
from .overlay import overlay

__all__ = ["overlay"]
