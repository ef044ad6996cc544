"""Checks and normalisation shared by every metric: label maps, spacing, the classes to score."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "MetricInputError",
    "ShapeMismatchError",
    "as_label_map",
    "check_pair",
    "normalize_spacing",
    "resolve_labels",
]


class MetricInputError(ValueError):
    """An input to a metric cannot be scored as given."""


class ShapeMismatchError(MetricInputError):
    """Prediction and ground truth do not lie on the same voxel grid."""


def as_label_map(arr: np.ndarray, name: str) -> np.ndarray:
    """Return ``arr`` as a non-negative integer label map without copying when possible.

    Args:
        arr: ``(Y, X)`` or ``(Z, Y, X)`` boolean mask or integer label map. Floats holding whole numbers
            (as ``nibabel``'s ``get_fdata`` returns) are accepted and cast.
        name: ``"pred"`` or ``"gt"``, used in error messages.

    Returns:
        The same array as an unsigned or signed integer array (booleans become ``uint8`` views).
    """
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise MetricInputError(
            f"{name} must be a 2D (Y, X) or 3D (Z, Y, X) array, got {arr.ndim} dimensions."
        )
    if arr.dtype == bool:
        return arr.view(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.rint(arr)):
            raise MetricInputError(f"{name} holds non-integer values; pass a label map of whole numbers.")
        arr = arr.astype(np.int64)
    elif not np.issubdtype(arr.dtype, np.integer):
        raise MetricInputError(f"{name} has dtype {arr.dtype}; pass a boolean mask or an integer label map.")
    if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise MetricInputError(f"{name} holds negative labels; label values must be 0 (background) or above.")
    return arr


def check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction / ground-truth pair and return both as label maps of one shape."""
    pred_arr = as_label_map(pred, "pred")
    gt_arr = as_label_map(gt, "gt")
    if pred_arr.shape != gt_arr.shape:
        raise ShapeMismatchError(
            f"pred has shape {pred_arr.shape} but gt has shape {gt_arr.shape}; "
            "resample the prediction onto the ground-truth grid first."
        )
    return pred_arr, gt_arr


def normalize_spacing(spacing: float | Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    """Voxel size in mm per array axis; ``None`` means 1 and a scalar means isotropic."""
    if spacing is None:
        return (1.0,) * ndim
    values = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if values.size == 1:
        values = np.repeat(values, ndim)
    if values.ndim != 1 or values.size != ndim:
        raise MetricInputError(f"spacing must have {ndim} values (one per array axis), got {values.size}.")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise MetricInputError(f"spacing must be positive and finite, got {tuple(values.tolist())}.")
    return tuple(float(v) for v in values)


def resolve_labels(
    labels: int | Iterable[int] | None, present_pred: Iterable[int], present_gt: Iterable[int]
) -> list[int]:
    """The classes to score: the given ones, or every non-zero label present in either map.

    Args:
        labels: explicit label values (an int or an iterable), or ``None``.
        present_pred: non-zero labels found in the prediction.
        present_gt: non-zero labels found in the ground truth.

    Returns:
        Sorted, unique label values.
    """
    if labels is None:
        return sorted(set(present_pred) | set(present_gt))
    chosen = [labels] if isinstance(labels, (int, np.integer)) else list(labels)
    out: set[int] = set()
    for value in chosen:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise MetricInputError(f"labels must be integers, got {value!r}.")
        if value <= 0:
            raise MetricInputError(f"label {value} is background or negative; score labels 1 and above.")
        out.add(int(value))
    return sorted(out)
