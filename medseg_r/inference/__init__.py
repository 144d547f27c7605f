"""Prediction on the user's own files: images and volumes in, masks in the same format and geometry out,
with pictures, per-finding statistics, batch mode and clear errors (see :mod:`.pipeline`)."""
from .batch import predict_manifest, read_manifest
from .pipeline import PredictOptions, predict_case
from .predictor import Prediction, Predictor
from .sources import InputError, Source, load_source

__all__ = ["InputError", "PredictOptions", "Prediction", "Predictor", "Source", "load_source", "predict_case",
           "predict_manifest", "read_manifest"]
