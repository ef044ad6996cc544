"""The public one-metric functions: Dice, HD95, HD, ASSD and ASD, per class.

Each returns a :class:`~napari_smp.metrics.result.PerClass` (label -> float, NaN with a reason where the
value is undefined). To get several metrics of one pair, call
:func:`~napari_smp.metrics.per_class.class_metrics` once instead: the surface distances are shared.

Empty masks (one rule, everywhere): a class empty on one side has Dice 0.0 and NaN distances with the
reason ``"pred empty"`` or ``"gt empty"``; a class empty on both sides has NaN Dice and NaN distances
with the reason ``"both empty"``. Nothing is silently 0 and nothing raises.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .per_class import class_metrics
from .result import ClassMetrics, PerClass
from .surface import Convention

__all__ = ["asd", "assd", "dice", "hd", "hd95"]

Spacing = float | Sequence[float] | None
Labels = int | Iterable[int] | None


def _pick(metrics: dict[int, ClassMetrics], name: str) -> PerClass:
    values = {label: getattr(m, name) for label, m in metrics.items()}
    reasons = {label: m.reason for label, m in metrics.items() if m.reason and math.isnan(values[label])}
    return PerClass(values, reasons)


def dice(pred: np.ndarray, gt: np.ndarray, labels: Labels = None) -> PerClass:
    """Dice coefficient ``2|P∩G| / (|P|+|G|)`` per class (equals ``medpy.metric.binary.dc``).

    Args:
        pred: ``(Y, X)`` or ``(Z, Y, X)`` predicted label map (integer) or mask (bool).
        gt: ground truth of the same shape.
        labels: classes to score; ``None`` means every non-zero label present in either map.

    Returns:
        label -> Dice in [0, 1]; NaN with reason ``"both empty"`` for a class absent from both maps.
    """
    return _pick(class_metrics(pred, gt, labels=labels, distances=False), "dice")


def hd95(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Spacing = None,
    labels: Labels = None,
    convention: Convention = "medpy",
) -> PerClass:
    """95th-percentile Hausdorff distance per class, in mm.

    Args:
        pred: ``(Y, X)`` or ``(Z, Y, X)`` predicted label map (integer) or mask (bool).
        gt: ground truth of the same shape.
        spacing: voxel size in mm in array axis order; scalar = isotropic; ``None`` = 1.
        labels: classes to score; ``None`` means every non-zero label present in either map.
        convention: ``"medpy"`` (pooled 95th percentile of both directions, equals ``medpy.metric.hd95``)
            or ``"monai"`` (max of the two directed 95th percentiles, equals MONAI's
            ``compute_hausdorff_distance(percentile=95)``). MONAI's is never smaller.

    Returns:
        label -> HD95 in mm; NaN with a reason when a side is empty.
    """
    return _pick(class_metrics(pred, gt, spacing, labels, convention), "hd95")


def hd(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None, labels: Labels = None) -> PerClass:
    """Hausdorff distance (max of both directed maxima) per class, in mm; equals ``medpy.metric.hd``.

    Args and empty-mask rule as :func:`hd95`; the result does not depend on a convention.
    """
    return _pick(class_metrics(pred, gt, spacing, labels), "hd")


def assd(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None, labels: Labels = None) -> PerClass:
    """Average symmetric surface distance per class, in mm.

    The mean of both directed distance sets pooled, as ``medpy.metric.assd`` (0.5.x) and MONAI's
    ``compute_average_surface_distance(symmetric=True)``. Args and empty-mask rule as :func:`hd95`.
    """
    return _pick(class_metrics(pred, gt, spacing, labels), "assd")


def asd(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None, labels: Labels = None) -> PerClass:
    """Average surface distance from the prediction to the ground truth per class, in mm.

    Directed (pred -> gt), as ``medpy.metric.asd(pred, gt)``. Args and empty-mask rule as :func:`hd95`.
    """
    return _pick(class_metrics(pred, gt, spacing, labels), "asd")
