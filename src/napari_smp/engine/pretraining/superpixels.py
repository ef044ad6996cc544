"""SLIC superpixels for SuperCL pre-training: computed once per slice, down-sampled, pooled.

SuperCL (research/pretraining.md §1.4) runs scikit-image's SLIC on each intensity view, with the grey
slice stacked to three channels so that SLIC works in CIELAB, 100 segments at 512x512 and compactness 10.
The two intensity views differ only by a mild blur, so we run SLIC once per slice before any
augmentation and reuse the map for both views (the note's "cheaper variant"): the CPU then goes to the
network, not to SLIC. The number of segments scales with the slice area so that each superpixel covers
about as many pixels as in the papers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "default_segments",
    "slic_slice",
    "slic_stack",
    "downsample_superpixels",
    "superpixel_pool",
]

PAPER_SEGMENTS = 100  # at a 512x512 patch (research/pretraining.md §1.4)
PAPER_SIDE = 512
COMPACTNESS = 10.0


def default_segments(side: int) -> int:
    """SLIC segments for a ``side`` x ``side`` slice: the papers' pixels per superpixel, at least 4."""
    return max(4, int(round(PAPER_SEGMENTS * (side / PAPER_SIDE) ** 2)))


def slic_slice(image: np.ndarray, n_segments: int, compactness: float = COMPACTNESS) -> np.ndarray:
    """Superpixels of one grey slice, as the official code computes them (grey stacked to RGB -> Lab).

    Args:
        image: (H, W) float in [0, 1].
        n_segments: approximate number of superpixels.
        compactness: SLIC's balance of colour against space.

    Returns:
        (H, W) int32 labels starting at 0; a constant slice is one superpixel.
    """
    from skimage.segmentation import slic

    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    if float(img.max() - img.min()) < 1e-8:
        return np.zeros(img.shape, np.int32)
    rgb = np.repeat(img[..., None], 3, axis=-1)
    labels = slic(rgb, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
    return labels.astype(np.int32)


def slic_stack(
    slices: np.ndarray,
    n_segments: int,
    compactness: float = COMPACTNESS,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Superpixels of every slice of a stack (the run's cache).

    Args:
        slices: (N, H, W) float in [0, 1].
        progress: called as ``progress(done, total)`` after each slice.

    Returns:
        (N, H, W) int32 labels, each slice numbered from 0.
    """
    out = np.empty(slices.shape, np.int32)
    for i, sl in enumerate(slices):
        out[i] = slic_slice(sl, n_segments, compactness)
        if progress is not None:
            progress(i + 1, len(slices))
    return out


def downsample_superpixels(labels: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of superpixel maps to a feature grid (the official code's choice).

    Args:
        labels: (B, H, W) integer superpixel ids.
        size: grid side, or (h, w).

    Returns:
        (B, h, w) long.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    out = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")
    return out[:, 0].round().long()


def superpixel_pool(values: torch.Tensor, labels: torch.Tensor, area_weighted: bool = False) -> torch.Tensor:
    """Average-superpixel map (SuperCL's ASP): each cell takes the aggregate of its superpixel.

    The official code sums the values of a superpixel and divides by the number of cells of the whole
    grid (area-weighted); the default here is the true mean over the superpixel's own cells, which is
    what "average superpixel" says. ``area_weighted=True`` reproduces the code.

    Args:
        values: (B, h, w) per-cell values (SuperCL: the channel mean of the feature map).
        labels: (B, h, w) integer superpixel ids on the same grid.
        area_weighted: divide superpixel sums by h * w instead of by the superpixel's size.

    Returns:
        (B, h * w) the pooled map, flattened row-major.
    """
    b = values.shape[0]
    flat = values.reshape(b, -1)
    ids = labels.reshape(b, -1).long()
    n_ids = int(ids.max()) + 1 if ids.numel() else 1
    sums = flat.new_zeros(b, n_ids).scatter_add_(1, ids, flat)
    if area_weighted:
        per_id = sums / flat.shape[1]
    else:
        counts = flat.new_zeros(b, n_ids).scatter_add_(1, ids, torch.ones_like(flat))
        per_id = sums / counts.clamp_min(1.0)
    return per_id.gather(1, ids)
