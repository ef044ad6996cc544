"""From volumes and painted labels to network-ready slices.

The network is 2D and sees axial slices of a ``(Z, Y, X)`` volume. Every slice is normalised as
``NormConfig`` says (recorded in the checkpoint) and resized to the model's square input; labels
are resized with nearest neighbour, or as class fractions for training (``resize_soft_labels``).
An annotated slice is one with at least one non-zero label (ARCHITECTURE.md); on it, 0 means
background. Other slices never enter the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import NormConfig
from .errors import EngineError

__all__ = [
    "normalize_volume",
    "guess_norm",
    "check_image",
    "check_labels",
    "annotated_slices",
    "resize_slices",
    "resize_labels",
    "resize_soft_labels",
    "slice_stack",
]


def check_image(volume: np.ndarray, what: str = "image") -> None:
    """Refuse what the network cannot take: not 3D, or NaN/inf values."""
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


def slice_stack(norm: np.ndarray, index: Sequence[int] | np.ndarray, context: int, channels: int) -> torch.Tensor:
    """The network's input channels for slices ``index`` of a normalised volume.

    Args:
        norm: (Z, Y, X) float32, as ``normalize_volume`` returns it.
        index: the slices wanted, (N,).
        context: neighbouring slices per side (``ModelConfig.slice_context``); at the volume's ends the
            edge slice stands in for the missing ones, so every slice gets the same number of channels.
        channels: ``ModelConfig.in_channels``; with no context a grey slice is repeated to fill them.

    Returns:
        (N, channels, Y, X) float32; with context, channel ``context`` is the slice itself and the
        others go from ``z - context`` to ``z + context``.
    """
    index = np.asarray(index, dtype=np.int64)
    if context == 0:
        return torch.from_numpy(np.ascontiguousarray(norm[index]))[:, None].expand(-1, channels, -1, -1)
    offsets = np.arange(-context, context + 1)
    picks = np.clip(index[:, None] + offsets[None, :], 0, norm.shape[0] - 1)  # (N, 2 * context + 1)
    return torch.from_numpy(np.ascontiguousarray(norm[picks]))


def resize_slices(slices: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) images; antialiased when shrinking so thin structures survive."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(slices.shape[-2:]) == size:
        return slices
    shrink = size[0] < slices.shape[-2] or size[1] < slices.shape[-1]
    return F.interpolate(slices, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def resize_soft_labels(labels: torch.Tensor, num_classes: int, size: int | tuple[int, int]) -> torch.Tensor:
    """(N, H, W) class indices -> (N, num_classes, S, S) class fractions, resized as the images are.

    A 512-pixel CT slice shrunk to 128 by nearest neighbour keeps one pixel in 16: thin organs lose
    whole rows, and the best prediction through that grid scores 0.90 mean Dice on the dev CT. The
    one-hot map filtered like the image (``resize_slices``) keeps each class's share of every model
    pixel, and the same round trip scores 0.945 (benchmarks/grid_ceiling.py). Each pixel sums to 1.
    """
    onehot = F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float()
    return resize_slices(onehot, size).clamp_(0, 1)


def resize_labels(labels: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of (N, H, W) label maps."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(labels.shape[-2:]) == size:
        return labels
    out = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")
    return out[:, 0].long()
