"""Segmentation metrics: Dice and surface distances (HD95, HD, ASSD, ASD) per class, numpy/scipy only.

Values equal ``medpy.metric.binary`` (default ``convention="medpy"``) or MONAI (``"monai"``, HD95 only
differs) to 1e-6, computed on per-class crops; see docs/metrics.md for the conventions and the
empty-mask rule.
"""

from __future__ import annotations

from ._inputs import MetricInputError, ShapeMismatchError
from .per_class import class_metrics
from .result import BOTH_EMPTY, GT_EMPTY, PRED_EMPTY, ClassMetrics, PerClass
from .scores import asd, assd, dice, hd, hd95
from .surface import Convention

__all__ = [
    "BOTH_EMPTY",
    "GT_EMPTY",
    "PRED_EMPTY",
    "ClassMetrics",
    "Convention",
    "MetricInputError",
    "PerClass",
    "ShapeMismatchError",
    "asd",
    "assd",
    "class_metrics",
    "dice",
    "hd",
    "hd95",
]
