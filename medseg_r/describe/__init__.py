"""Reports for data that has none: describe the lesions of a mask as findings and report text.

``medseg_r.describe(image, mask, spacing=..., domain=...)`` returns a
:class:`~medseg_r.report.Report` whose findings (location, size, shape, texture, count; see
``PRIORS.md``) are measured from the mask and its image, written in one of several sentence
styles, and read back by the report reader. ``describe_case`` returns the measurements as well;
``describe_manifest`` / ``describe_dataset`` / ``fill_missing_reports`` work on data sets.

This package uses numpy, scipy and scikit-image, never torch. The module itself is callable, so
``medseg_r.describe(...)`` works whether or not ``medseg_r.describe`` was imported as a module.
"""
from __future__ import annotations

import sys
import types

from .batch import describe_dataset, describe_manifest, fill_missing_reports
from .core import DOMAINS, ORIENTATIONS, Description, LesionDescription, describe, describe_case
from .inputs import DescribeError
from .sentences import STYLES, prior_key, render

__all__ = ["DOMAINS", "Description", "DescribeError", "LesionDescription", "ORIENTATIONS",
           "STYLES", "describe", "describe_case", "describe_dataset", "describe_manifest",
           "fill_missing_reports", "prior_key", "render"]


class _CallableModule(types.ModuleType):
    """``medseg_r.describe`` is both this package and the function of the same name."""

    def __call__(self, *args, **kwargs):
        return describe(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
