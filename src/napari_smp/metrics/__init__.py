"""Segmentation metrics: Dice and surface distances (HD95, HD, ASSD, ASD) per class, numpy/scipy only.

Values equal ``medpy.metric.binary`` to 1e-9 (default ``convention="medpy"``) or MONAI to 1e-6
(``"monai"``; only HD95 differs), computed from each class's surface voxels with KD-trees, so the cost
follows the surfaces, not the volume; see docs/metrics.md for the conventions and the empty-mask rule.
"""

from __future__ import annotations

from ._inputs import MetricInputError, ShapeMismatchError
from .per_class import class_metrics
from .report import ClassRow, EvaluationReport, MeanRow, evaluate_labels, per_slice_dice
from .result import BOTH_EMPTY, GT_EMPTY, PRED_EMPTY, ClassMetrics, PerClass
from .scores import asd, assd, dice, hd, hd95
from .surface import Convention

__all__ = [
    "BOTH_EMPTY",
    "GT_EMPTY",
    "PRED_EMPTY",
    "ClassMetrics",
    "ClassRow",
    "EvaluationReport",
    "MeanRow",
    "Convention",
    "MetricInputError",
    "PerClass",
    "ShapeMismatchError",
    "asd",
    "assd",
    "class_metrics",
    "dice",
    "evaluate_labels",
    "hd",
    "hd95",
    "per_slice_dice",
]
