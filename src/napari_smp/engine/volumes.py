"""Volumes and painted label maps as the engine takes them: checked, normalised, their annotated slices
and classes found. numpy only (no torch), so the widgets use the same rules before a job starts.

An annotated slice is one with at least one non-zero label (ARCHITECTURE.md); on it, 0 means
background. Other slices never enter the loss. Every slice is normalised as ``NormConfig`` says
(recorded in the checkpoint), so inference repeats what training did.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import NormConfig
from .errors import EngineError

__all__ = [
    "normalize_volume",
    "guess_norm",
    "check_image",
    "check_labels",
    "annotated_slices",
    "check_spacing",
]


def check_image(volume: np.ndarray, what: str = "image") -> None:
    """Refuse what the network cannot take: not a real-valued 3D array, or NaN/inf values."""
    if not isinstance(volume, np.ndarray):
        raise EngineError(f"the {what} must be a numpy array (Z, Y, X), not {type(volume).__name__}")
    if not (np.issubdtype(volume.dtype, np.number) or volume.dtype == bool) or np.iscomplexobj(volume):
        raise EngineError(f"the {what} holds {volume.dtype} values; a real-valued intensity volume is needed")
    if volume.ndim != 3:
        raise EngineError(
            f"the {what} must be a 3D volume (Z, Y, X); got {volume.ndim}D shape {volume.shape}"
        )
    if min(volume.shape) < 1:
        raise EngineError(f"the {what} is empty (shape {volume.shape})")
    if np.issubdtype(volume.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(volume)))
        if bad:
            raise EngineError(f"the {what} holds {bad} NaN or infinite voxels; fill or crop them first")


def check_labels(
    labels: np.ndarray, shape: tuple[int, ...] | None = None, what: str = "label map"
) -> np.ndarray:
    """Validate a label map and return it as an integer array.

    Integer-valued floats are accepted (many tools store labels as float32); fractional, negative
    or NaN values are refused.
    """
    if labels.ndim != 3:
        raise EngineError(f"the {what} must be 3D (Z, Y, X); got shape {labels.shape}")
    if shape is not None and tuple(labels.shape) != tuple(shape):
        raise EngineError(f"the {what} has shape {labels.shape} but the image has shape {tuple(shape)}")
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)):
            raise EngineError(f"the {what} holds NaN or infinite values")
        if not np.all(labels == np.round(labels)):
            raise EngineError(f"the {what} holds fractional values; labels must be whole numbers")
    elif not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise EngineError(f"the {what} has dtype {labels.dtype}; labels must be integers")
    if labels.size and labels.min() < 0:
        raise EngineError(f"the {what} holds negative values (min {labels.min()}); labels must be >= 0")
    return labels.astype(np.int64, copy=False)


def normalize_volume(volume: np.ndarray, norm: NormConfig) -> np.ndarray:
    """Scale intensities to [0, 1] as the checkpoint records.

    Args:
        volume: (Z, Y, X) intensities (HU for CT).
    Returns:
        (Z, Y, X) float32 in [0, 1].
    """
    vol = volume.astype(np.float32, copy=False)
    if norm.mode == "ct":
        lo, hi = norm.window
    else:
        # a strided sample is enough for robust percentiles and keeps this cheap on 512x512x300
        step = max(1, int(round((vol.size / 2_000_000) ** (1 / 3))))
        lo, hi = np.percentile(vol[::step, ::step, ::step], norm.percentiles)
    if hi <= lo:
        return np.zeros_like(vol)
    return np.clip((vol - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def guess_norm(volume: np.ndarray) -> NormConfig:
    """CT windowing when intensities look like Hounsfield units (air near -1000), else percentiles."""
    step = max(1, int(round((volume.size / 1_000_000) ** (1 / 3))))
    lo, hi = np.percentile(volume[::step, ::step, ::step], (1, 99))
    return NormConfig(mode="ct") if lo < -500 and hi > 0 else NormConfig(mode="percentile")


def annotated_slices(labels: np.ndarray, extra: Sequence[int] | None = None) -> np.ndarray:
    """Indices of annotated axial slices: any non-zero label, plus slices the user lists as background.

    Args:
        labels: (Z, Y, X) integer label map.
        extra: slice indices to count as annotated even when empty (all background).
    """
    painted = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    if extra:
        bad = [s for s in extra if not 0 <= s < labels.shape[0]]
        if bad:
            raise EngineError(f"slice indices {bad} are outside 0..{labels.shape[0] - 1}")
        painted = np.union1d(painted, np.asarray(list(extra), dtype=np.int64))
    return painted


def check_spacing(spacing: object) -> tuple[float, float, float] | None:
    """``None``, or three positive finite voxel sizes in mm in ``(Z, Y, X)`` order, as floats."""
    if spacing is None:
        return None
    try:
        values = tuple(float(v) for v in spacing)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise EngineError(f"spacing must be three numbers in mm (Z, Y, X), got {spacing!r}") from None
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise EngineError(f"spacing must be three positive voxel sizes in mm (Z, Y, X), got {spacing!r}")
    return values[0], values[1], values[2]
