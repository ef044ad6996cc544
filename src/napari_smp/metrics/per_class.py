"""All metrics of every class of a label-map pair, computed on per-class crops.

Why it is fast: ``scipy.ndimage.find_objects`` gives the bounding box of every label of a map in one
pass, so each class is scored on the union of its two boxes plus a one-voxel margin instead of on the
whole volume; the distance transforms (one per direction) run on that crop only. For an organ of a few
percent of a 512x512x100 volume this is tens of times faster than ``medpy``, with identical values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from ._inputs import MetricInputError, check_pair, normalize_spacing, resolve_labels
from .result import ClassMetrics, empty_reason
from .surface import Convention, directed_surface_distances, hd95_from_distances

__all__ = ["class_metrics", "dice_from_counts", "label_boxes"]

Box = tuple[slice, ...]
# find_objects allocates one entry per label value up to the maximum; beyond this, compact first
_MAX_DIRECT_LABEL = 1 << 16


def label_boxes(label_map: np.ndarray) -> dict[int, Box]:
    """Bounding box of every non-zero label, from one pass over the map.

    Args:
        label_map: ``(Y, X)`` or ``(Z, Y, X)`` non-negative integer array.

    Returns:
        label -> tuple of slices (half-open, one per axis) of the labels present.
    """
    if label_map.size == 0:
        return {}
    top = int(label_map.max())
    if top == 0:
        return {}
    if top <= _MAX_DIRECT_LABEL:
        return {i + 1: box for i, box in enumerate(ndimage.find_objects(label_map)) if box is not None}
    values, compact = np.unique(label_map, return_inverse=True)
    if values[0] != 0:  # keep compact label 0 for background
        values, compact = np.concatenate(([0], values)), compact + 1
    boxes = ndimage.find_objects(compact.reshape(label_map.shape))
    return {int(values[i + 1]): box for i, box in enumerate(boxes) if box is not None}


def _union_box(a: Box | None, b: Box | None, shape: tuple[int, ...], margin: int) -> Box:
    boxes = [box for box in (a, b) if box is not None]
    return tuple(
        slice(
            max(min(box[ax].start for box in boxes) - margin, 0),
            min(max(box[ax].stop for box in boxes) + margin, n),
        )
        for ax, n in enumerate(shape)
    )


def dice_from_counts(overlap: ArrayLike, n_pred: ArrayLike, n_gt: ArrayLike) -> np.ndarray:
    """``2 |P n G| / (|P| + |G|)`` from voxel counts, element-wise; NaN where both masks are empty.

    The one Dice formula of the package: per class (:func:`class_metrics`) and per slice
    (``report.per_slice_dice``).
    """
    overlap, total = np.asarray(overlap, float), np.asarray(n_pred, float) + np.asarray(n_gt, float)
    out = np.full(np.shape(total), np.nan)
    np.divide(2.0 * overlap, total, out=out, where=total > 0)
    return out


def _score(
    pred: np.ndarray,
    gt: np.ndarray,
    label: int,
    box: Box,
    spacing: tuple[float, ...],
    convention: Convention,
    distances: bool,
) -> ClassMetrics:
    p = pred[box] == label
    g = gt[box] == label
    n_pred = int(np.count_nonzero(p))
    n_gt = int(np.count_nonzero(g))
    overlap = int(np.count_nonzero(p & g))
    dice = float(dice_from_counts(overlap, n_pred, n_gt))
    reason = empty_reason(n_pred, n_gt)
    nan = math.nan
    if reason is not None or not distances:
        return ClassMetrics(label, dice, nan, nan, nan, nan, n_pred, n_gt, reason)
    d_pg, d_gp = directed_surface_distances(p, g, spacing)
    return ClassMetrics(
        label=label,
        dice=dice,
        hd95=hd95_from_distances(d_pg, d_gp, convention),
        hd=float(max(d_pg.max(), d_gp.max())),
        # pooled mean of both directions, as medpy.assd and MONAI's symmetric ASD
        assd=float((d_pg.sum() + d_gp.sum()) / (d_pg.size + d_gp.size)),
        asd=float(d_pg.mean()),
        pred_voxels=n_pred,
        gt_voxels=n_gt,
    )


def class_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: float | Sequence[float] | None = None,
    labels: int | Iterable[int] | None = None,
    convention: Convention = "medpy",
    distances: bool = True,
) -> dict[int, ClassMetrics]:
    """Dice, HD95, HD, ASSD and ASD of every class, with one crop and one EDT per direction per class.

    Args:
        pred: ``(Y, X)`` or ``(Z, Y, X)`` predicted label map (integer) or mask (bool).
        gt: ground truth of the same shape and kind.
        spacing: voxel size in mm in array axis order (``(Z, Y, X)`` for volumes); a scalar means
            isotropic, ``None`` means 1 (distances are then in voxels).
        labels: classes to score; ``None`` scores every non-zero label present in either map (a boolean
            or 0/1 mask gives the single class 1).
        convention: how HD95 pools the two directions, ``"medpy"`` or ``"monai"`` (see
            :func:`~napari_smp.metrics.surface.hd95_from_distances`); the other metrics do not depend on it.
        distances: False skips the surface distances (they are then NaN without a reason).

    Returns:
        label -> :class:`ClassMetrics`, in increasing label order.

    Raises:
        ShapeMismatchError: the two maps differ in shape.
        MetricInputError: bad dtype, negative labels, bad spacing, labels or convention.
    """
    pred_map, gt_map = check_pair(pred, gt)
    sp = normalize_spacing(spacing, pred_map.ndim)
    if convention not in ("medpy", "monai"):
        raise MetricInputError(f"convention must be 'medpy' or 'monai', got {convention!r}.")
    boxes_pred = label_boxes(pred_map)
    boxes_gt = label_boxes(gt_map)
    out: dict[int, ClassMetrics] = {}
    for label in resolve_labels(labels, boxes_pred, boxes_gt):
        box_p, box_g = boxes_pred.get(label), boxes_gt.get(label)
        if box_p is None and box_g is None:
            nan = math.nan
            out[label] = ClassMetrics(label, nan, nan, nan, nan, nan, 0, 0, empty_reason(0, 0))
            continue
        box = _union_box(box_p, box_g, pred_map.shape, margin=1)
        out[label] = _score(pred_map, gt_map, label, box, sp, convention, distances)
    return out
