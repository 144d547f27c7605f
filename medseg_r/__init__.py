"""MedSeg-R: report-guided medical image segmentation on Segment Anything backbones.

``import medseg_r`` is light: the report reader is pure Python, and the torch-based model API
(``build_model``, ``MedSegR``, ``load_model``, ``load_pretrained``, ``list_backbones``) is imported on first use.
"""
from __future__ import annotations

from typing import Any

from .report import Finding, Location, Report, parse_report

__version__ = "0.1.0"
__all__ = ["Finding", "Location", "MedSegR", "Report", "build_model", "describe", "describe_dataset",
           "list_backbones", "load_model", "load_pretrained", "parse_report", "__version__"]

_LAZY = {
    "MedSegR": ("medseg_r.model", "MedSegR"),
    "build_model": ("medseg_r.model", "build_model"),
    "load_model": ("medseg_r.model", "load_model"),
    "load_pretrained": ("medseg_r.model.shipped", "load_pretrained"),
    "list_backbones": ("medseg_r.backbones", "list_backbones"),
    # medseg_r.describe is a callable package: the attribute works as the function after import too
    "describe": ("medseg_r.describe", "describe"),
    "describe_dataset": ("medseg_r.describe", "describe_dataset"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'medseg_r' has no attribute {name!r}")


def __dir__():
    """The lazy names too, for tab completion in notebooks."""
    return sorted(set(globals()) | set(_LAZY))
