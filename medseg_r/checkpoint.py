"""MedSeg-R checkpoints (kept at this path for compatibility; the code is in
:mod:`medseg_r.model.checkpoint`)."""
from .model.checkpoint import FORMAT, VERSION, is_medseg_checkpoint, load_model, save_model

__all__ = ["FORMAT", "VERSION", "is_medseg_checkpoint", "load_model", "save_model"]
