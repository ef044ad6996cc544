"""Surface voxels and surface distances of binary masks, and the reductions built on them.

The surface of a mask is ``mask XOR binary_erosion(mask, cross)``: the cross is the face-connected
structuring element (connectivity 1: 4 neighbours in 2D, 6 in 3D) and everything outside the array
counts as background, exactly as in ``medpy.metric.binary`` and MONAI's ``get_mask_edges``. A surface
distance is the exact Euclidean distance (in mm, voxel centre to voxel centre) from a surface voxel of
one mask to the nearest surface voxel of the other.

Why the cost follows the surface and not the volume: the surface voxels of every class of a label map
come from one pass that compares each voxel with its face neighbours (:func:`surface_indices`), and the
nearest-voxel search runs on the surface voxels themselves, in a KD-tree (:func:`nearest_distances`). A
prediction with scattered false positives then costs a few more surface points, where a distance
transform would have to cover the bounding box of the noise: the whole volume.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ._boxes import Box, box_volume, grow_box, label_boxes, union_box
from ._inputs import MetricInputError

__all__ = [
    "Convention",
    "directed_surface_distances",
    "hd95_from_distances",
    "nearest_distances",
    "surface_distances_of",
    "surface_indices",
    "surface_voxels",
]

Convention = Literal["medpy", "monai"]

# The scan reads the label map in slabs along axis 0 of about this many voxels (bounded temporaries).
_CHUNK_VOXELS = 1 << 21

# Tuning of the search (speed only: every route gives the same distances).
# Below this many box voxels per surface point the surfaces are dense and a dense EDT is cheaper.
_MIN_VOXELS_PER_SURFACE_POINT = 4
# The KD-tree first probes this many (largest-spacing) voxels far; most queries end there, cheaply.
_PROBE_RADIUS_VOXELS = 4
# A query left over by the probe that lies inside the bounding box of the other surface (a hole deep
# inside the other mask) costs the KD-tree about as much as this many voxels of a dense EDT over that
# box (measured: ~85-160 us per query against ~0.2 us per EDT voxel); when the deep queries together
# cost more, the EDT of the box answers them. Queries outside the box always go to the KD-tree.
_EDT_VOXELS_PER_DEEP_QUERY = 400
# The EDT needs ~13 bytes per voxel (scipy's int32 feature transform); never run one over more voxels.
_MAX_EDT_VOXELS = 1 << 24
# Queries fewer than this run on one thread (a thread pool costs more than it saves on small sets).
_PARALLEL_QUERIES = 4096


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Surface of a boolean mask; voxels on the array border count as surface (the definition).

    Args:
        mask: ``(Y, X)`` or ``(Z, Y, X)`` boolean array.

    Returns:
        Boolean array of the same shape, True on the one-voxel-thick inner boundary.
    """
    cross = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=cross, border_value=0)


def _edges(block: np.ndarray) -> np.ndarray:
    """True where a voxel differs from a face neighbour or lies on a face of ``block``.

    For a voxel of label ``k`` this is exactly "some voxel of its cross is not ``k`` or lies outside",
    i.e. the voxel does not survive ``binary_erosion(block == k, cross, border_value=0)``.
    """
    edge = np.zeros(block.shape, dtype=bool)
    full = (slice(None),) * block.ndim
    for ax in range(block.ndim):
        hi = full[:ax] + (slice(1, None),)
        lo = full[:ax] + (slice(None, -1),)
        step = block[hi] != block[lo]
        edge[hi] |= step
        edge[lo] |= step
        edge[full[:ax] + (0,)] = True
        edge[full[:ax] + (-1,)] = True
    return edge


def _scan(label_map: np.ndarray, box: Box, label: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Surface voxels inside ``box`` of ``label_map`` (its faces count as outside), slab by slab.

    Args:
        label_map: the whole map.
        box: the region to scan; a face of it that is not a face of the map must hold no voxel of the
            labels the caller keeps (a one-voxel margin around their boxes ensures it).
        label: scan the mask ``== label``; ``None`` scans every non-zero label at once.

    Returns:
        ``(flat, values)``: flat indices into ``label_map`` of the surface voxels in C order, and their
        labels (``None`` when ``label`` is given).
    """
    region = label_map[box]
    origin = [s.start for s in box]
    n0 = region.shape[0]
    step = max(1, _CHUNK_VOXELS // max(math.prod(region.shape[1:]), 1))
    flats: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for z0 in range(0, n0, step):
        z1 = min(z0 + step, n0)
        e0 = max(z0 - 1, 0)  # one slice of context on each side, the map's own faces excepted
        block = region[e0 : min(z1 + 1, n0)]
        if label is not None:
            block = block == label
        inner = block[z0 - e0 : z1 - e0]
        edge = _edges(block)[z0 - e0 : z1 - e0]
        edge &= inner if label is not None else inner != 0
        local = np.nonzero(edge)
        if not local[0].size:
            continue
        if label is None:
            values.append(inner[local])
        shift = [o + (z0 if ax == 0 else 0) for ax, o in enumerate(origin)]
        coords = tuple(c + s for c, s in zip(local, shift, strict=True))
        flats.append(np.ravel_multi_index(coords, label_map.shape))
    flat = np.concatenate(flats) if flats else np.zeros(0, dtype=np.intp)
    if label is not None:
        return flat, None
    return flat, (np.concatenate(values) if values else np.zeros(0, dtype=label_map.dtype))


def _compact(flat: np.ndarray, size: int) -> np.ndarray:
    # 4 bytes per surface voxel instead of 8 whenever the map is under 4 Gvoxels
    return flat.astype(np.uint32) if size <= np.iinfo(np.uint32).max else flat


def surface_indices(
    label_map: np.ndarray, labels: Iterable[int] | None = None, boxes: dict[int, Box] | None = None
) -> dict[int, np.ndarray]:
    """Surface voxels of every requested label of a map, as flat indices in C order.

    Each label's surface equals :func:`surface_voxels` of ``label_map == label``. Labels whose boxes are
    small next to the region they span together are scanned one by one in their own boxes; otherwise
    (classes spread over the volume, e.g. by scattered false positives) one pass over that region
    finds the surface voxels of all of them. Either way no per-class volume is allocated.

    Args:
        label_map: ``(Y, X)`` or ``(Z, Y, X)`` non-negative integer array.
        labels: the labels wanted; ``None`` means every non-zero label present.
        boxes: the map's :func:`~napari_smp.metrics._boxes.label_boxes`, when already known.

    Returns:
        label -> 1D array of flat indices into ``label_map``, for the requested labels present.
    """
    if boxes is None:
        boxes = label_boxes(label_map)
    wanted = sorted(boxes) if labels is None else sorted({int(k) for k in labels if int(k) in boxes})
    if not wanted:
        return {}
    grown = {k: grow_box(boxes[k], label_map.shape, 1) for k in wanted}
    region = union_box(grown.values())
    out: dict[int, np.ndarray] = {}
    if len(wanted) == 1 or sum(box_volume(b) for b in grown.values()) <= box_volume(region):
        for k in wanted:
            out[k] = _compact(_scan(label_map, grown[k], k)[0], label_map.size)
        return out
    flat, values = _scan(label_map, region, None)
    assert values is not None
    order = np.argsort(values, kind="stable")  # stable: C order within each label
    flat, values = _compact(flat[order], label_map.size), values[order]
    starts = np.concatenate(([0], np.flatnonzero(values[1:] != values[:-1]) + 1))
    present, stops = values[starts], np.append(starts[1:], len(values))
    keep = set(wanted)
    for k, a, b in zip(present.tolist(), starts.tolist(), stops.tolist(), strict=True):
        if k in keep:
            out[k] = flat[a:b]
    return out


def _exact_distances(offsets: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Euclidean lengths of integer voxel offsets ``(M, ndim)``, with scipy's EDT arithmetic."""
    scaled = offsets.astype(np.float64) * np.asarray(spacing)
    np.multiply(scaled, scaled, out=scaled)
    # summing axis by axis in order reproduces distance_transform_edt to the last bit
    return np.sqrt(np.add.reduce(scaled.T, axis=0))


def _nearest_by_edt(
    features: np.ndarray, queries: np.ndarray, lo: np.ndarray, hi: np.ndarray, spacing: tuple[float, ...]
) -> np.ndarray:
    """Coordinates of the nearest feature of every query, from a dense EDT of the box ``[lo, hi)``.

    Every feature and every query must lie in the box; the feature transform then finds the same
    nearest voxels as one over the whole volume.
    """
    grid = np.ones(tuple((hi - lo).tolist()), dtype=bool)
    grid[tuple((features - lo).T)] = False  # the EDT measures the distance to the nearest zero
    ft = ndimage.distance_transform_edt(grid, sampling=spacing, return_distances=False, return_indices=True)
    local = tuple((queries - lo).T)
    return np.stack([ft[ax][local] for ax in range(len(lo))], axis=1) + lo


def nearest_distances(features: np.ndarray, queries: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) from every query voxel to the nearest feature voxel, exactly.

    A KD-tree over the features answers most queries in a short bounded probe. What is left is either
    outside the features' bounding box (scattered false positives: the KD-tree again, unbounded) or
    deep inside it (holes in a mask: a dense EDT of that box when there are enough of them to pay for
    it). Dense surfaces in a small box go to the EDT directly. All routes give the same distances
    (recomputed from the integer voxel offsets with scipy's EDT arithmetic), so the routes only change
    the speed.

    Args:
        features: ``(N, ndim)`` integer voxel coordinates, N >= 1.
        queries: ``(M, ndim)`` integer voxel coordinates.
        spacing: voxel size in mm per axis.

    Returns:
        ``(M,)`` float64 distances in mm, in the order of ``queries``.
    """
    n_f, n_q = len(features), len(queries)
    if n_q == 0:
        return np.zeros(0)
    f_lo, f_hi = features.min(axis=0), features.max(axis=0) + 1
    lo, hi = np.minimum(f_lo, queries.min(axis=0)), np.maximum(f_hi, queries.max(axis=0) + 1)
    volume = math.prod((hi - lo).tolist())
    if volume < _MIN_VOXELS_PER_SURFACE_POINT * (n_f + n_q) and volume <= _MAX_EDT_VOXELS:
        return _exact_distances(_nearest_by_edt(features, queries, lo, hi, spacing) - queries, spacing)
    scale = np.asarray(spacing)
    tree = cKDTree(features * scale)
    q_mm = queries * scale
    workers = -1 if n_q >= _PARALLEL_QUERIES else 1
    _, idx = tree.query(q_mm, distance_upper_bound=_PROBE_RADIUS_VOXELS * max(spacing), workers=workers)
    found = idx < n_f
    nearest = np.empty_like(queries)
    nearest[found] = features[idx[found]]
    far = np.flatnonzero(~found)
    if far.size:
        inside = np.all((queries[far] >= f_lo) & (queries[far] < f_hi), axis=1)
        deep = far[inside]
        box_voxels = math.prod((f_hi - f_lo).tolist())
        if deep.size * _EDT_VOXELS_PER_DEEP_QUERY > box_voxels and box_voxels <= _MAX_EDT_VOXELS:
            nearest[deep] = _nearest_by_edt(features, queries[deep], f_lo, f_hi, spacing)
            far = far[~inside]
    if far.size:
        workers = -1 if far.size >= _PARALLEL_QUERIES // 8 else 1  # far queries cost ~10x a near one
        nearest[far] = features[tree.query(q_mm[far], workers=workers)[1]]
    return _exact_distances(nearest - queries, spacing)


def _coords(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(np.unravel_index(flat, shape), axis=1)


def directed_surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Both directed surface-distance sets of two non-empty masks.

    Args:
        pred: ``(Y, X)`` or ``(Z, Y, X)`` boolean mask, not empty.
        gt: boolean mask of the same shape, not empty.
        spacing: voxel size in mm per array axis.

    Returns:
        ``(d_pred_to_gt, d_gt_to_pred)``: 1D float64 arrays of distances in mm, one per surface voxel of
        ``pred`` (resp. ``gt``), in C order of the voxels.
    """
    p = np.asarray(pred, dtype=bool).view(np.uint8)
    g = np.asarray(gt, dtype=bool).view(np.uint8)
    surf_pred = _coords(surface_indices(p, [1])[1], p.shape)
    surf_gt = _coords(surface_indices(g, [1])[1], g.shape)
    return nearest_distances(surf_gt, surf_pred, spacing), nearest_distances(surf_pred, surf_gt, spacing)


def surface_distances_of(
    surf_pred: np.ndarray, surf_gt: np.ndarray, shape: tuple[int, ...], spacing: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`directed_surface_distances` from flat surface indices (as :func:`surface_indices` gives)."""
    p, g = _coords(surf_pred, shape), _coords(surf_gt, shape)
    return nearest_distances(g, p, spacing), nearest_distances(p, g, spacing)


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
