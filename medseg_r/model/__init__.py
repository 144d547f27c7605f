"""MedSegR: backbone + cognition + perception + decoder-side priors."""
from .medseg_r import FREEZE_MODES, PRIOR_MODES, MedSegR, build_model, image_to_tensor

__all__ = ["FREEZE_MODES", "MedSegR", "PRIOR_MODES", "build_model", "image_to_tensor"]
