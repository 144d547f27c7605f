"""Prediction on the user's own files: images and volumes in, masks in the same format and geometry out,
with pictures, per-finding statistics, batch mode and clear errors (see :mod:`.pipeline`).

The names below are imported on first use, so that :mod:`.options` (what ``predict`` checks first)
comes without torch."""
from __future__ import annotations

from typing import Any

__all__ = ["InputError", "PredictOptions", "Prediction", "Predictor", "Source", "load_source", "predict_case",
           "predict_manifest", "read_manifest"]

_LAZY = {"predict_manifest": ".batch", "read_manifest": ".batch", "PredictOptions": ".options",
         "predict_case": ".pipeline", "Prediction": ".predictor", "Predictor": ".predictor",
         "InputError": ".sources", "Source": ".sources", "load_source": ".sources"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
