"""Surface voxels and surface distances of binary masks, and the reductions built on them.

The surface of a mask is ``mask XOR binary_erosion(mask, cross)``: the cross is the face-connected
structuring element (connectivity 1: 4 neighbours in 2D, 6 in 3D) and everything outside the array
counts as background, exactly as in ``medpy.metric.binary`` and MONAI's ``get_mask_edges``. A surface
distance is the exact Euclidean distance (in mm, voxel centre to voxel centre) from a surface voxel of
one mask to the nearest surface voxel of the other.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ._inputs import MetricInputError

__all__ = ["Convention", "directed_surface_distances", "hd95_from_distances", "surface_voxels"]

Convention = Literal["medpy", "monai"]


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Surface of a boolean mask; voxels on the array border count as surface.

    Args:
        mask: ``(Y, X)`` or ``(Z, Y, X)`` boolean array.

    Returns:
        Boolean array of the same shape, True on the one-voxel-thick inner boundary.
    """
    cross = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=cross, border_value=0)


# Tuning of the search (speed only: both routes give the same distances).
# Below this many crop voxels per surface voxel the surfaces are dense and the EDT is cheaper.
_MIN_VOXELS_PER_SURFACE_POINT = 4
# The KD-tree probe looks this many (largest-spacing) voxels far; queries further away are slow in a
# KD-tree (their search ball touches much of the surface), so when many are, the EDT takes over.
_PROBE_RADIUS_VOXELS = 4
_MAX_FAR_FRACTION = 0.05


def _edt_distances(features: np.ndarray, queries: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    # the EDT measures the distance to the nearest zero, so the features must be the zeros
    return ndimage.distance_transform_edt(~features, sampling=spacing)[queries]


def _exact_distances(offsets: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Euclidean lengths of integer voxel offsets ``(M, ndim)``, with scipy's EDT arithmetic."""
    scaled = offsets.astype(np.float64) * np.asarray(spacing)
    np.multiply(scaled, scaled, out=scaled)
    # summing axis by axis in order reproduces distance_transform_edt to the last bit
    return np.sqrt(np.add.reduce(scaled.T, axis=0))


def _nearest_distances(features: np.ndarray, queries: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) from every True voxel of ``queries`` to the nearest True voxel of ``features``.

    Exact either way; a KD-tree over the surface voxels is usually several times faster than a dense EDT
    of the crop, except for dense surfaces or for many queries far inside the other surface.
    """
    f_idx = np.argwhere(features)
    q_idx = np.argwhere(queries)
    if features.size < _MIN_VOXELS_PER_SURFACE_POINT * (len(f_idx) + len(q_idx)):
        return _edt_distances(features, queries, spacing)
    scale = np.asarray(spacing)
    tree = cKDTree(f_idx * scale)
    q_mm = q_idx * scale
    _, nearest = tree.query(q_mm, distance_upper_bound=_PROBE_RADIUS_VOXELS * max(spacing))
    far = nearest == len(f_idx)
    n_far = int(np.count_nonzero(far))
    if n_far > _MAX_FAR_FRACTION * len(q_idx):
        return _edt_distances(features, queries, spacing)
    if n_far:
        nearest[far] = tree.query(q_mm[far])[1]
    return _exact_distances(f_idx[nearest] - q_idx, spacing)


def directed_surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Both directed surface-distance sets of two non-empty masks.

    Callers pass crops: a crop that holds both masks plus a one-voxel background margin gives the same
    surfaces (the margin stands in for the rest of the volume in the erosion) and the same distances
    (every surface voxel lies inside the crop) as the whole volume, at a fraction of the cost.

    Args:
        pred: ``(Y, X)`` or ``(Z, Y, X)`` boolean mask, not empty.
        gt: boolean mask of the same shape, not empty.
        spacing: voxel size in mm per array axis.

    Returns:
        ``(d_pred_to_gt, d_gt_to_pred)``: 1D float64 arrays of distances in mm, one per surface voxel of
        ``pred`` (resp. ``gt``), in C order of the voxels.
    """
    surf_pred = surface_voxels(pred)
    surf_gt = surface_voxels(gt)
    return _nearest_distances(surf_gt, surf_pred, spacing), _nearest_distances(surf_pred, surf_gt, spacing)


def hd95_from_distances(d_pred_to_gt: np.ndarray, d_gt_to_pred: np.ndarray, convention: Convention) -> float:
    """95th-percentile Hausdorff distance from the two directed distance sets.

    Args:
        d_pred_to_gt: distances from the prediction's surface to the ground truth's, in mm.
        d_gt_to_pred: distances the other way, in mm.
        convention: ``"medpy"`` takes the 95th percentile of both sets pooled (``medpy.metric.hd95``,
            the Sim-MPNet paper's number); ``"monai"`` takes the larger of the two directed 95th
            percentiles (``monai.metrics.compute_hausdorff_distance(percentile=95)``). Both use linear
            interpolation between order statistics (``np.percentile`` / ``torch.quantile`` default).

    Returns:
        The distance in mm.
    """
    if convention == "medpy":
        return float(np.percentile(np.concatenate((d_pred_to_gt, d_gt_to_pred)), 95))
    if convention == "monai":
        return float(max(np.percentile(d_pred_to_gt, 95), np.percentile(d_gt_to_pred, 95)))
    raise MetricInputError(f"convention must be 'medpy' or 'monai', got {convention!r}.")
