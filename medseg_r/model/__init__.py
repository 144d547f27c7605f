"""MedSegR: backbone + cognition + perception + decoder-side priors; its builder and checkpoints."""

from ..io.images import image_to_tensor
from .build import build_model
from .checkpoint import load_model, save_model
from .medseg_r import MedSegR
from .options import FREEZE_MODES, PRIOR_MODES, ModelOptions

__all__ = ["FREEZE_MODES", "MedSegR", "ModelOptions", "PRIOR_MODES", "build_model",
           "image_to_tensor", "load_model", "save_model"]
