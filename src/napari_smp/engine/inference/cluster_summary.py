"""What the clusters of one DMW-LA module say about the slices they were read on: numpy only.

From a :class:`~napari_smp.engine.inference.predictor.ClusterMaps` (``Predictor.clusters``) this computes
the pixels each cluster claims, the share of each cluster's pixels in each class of a label map (which
anatomy a cluster encodes) and every cluster's receptive-field box on every slice. Nothing here needs
torch; the functions are unit-tested on small arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..classes import ClassTable

if TYPE_CHECKING:
    from .predictor import ClusterMaps

__all__ = [
    "Box",
    "ClusterSummary",
    "cluster_class_table",
    "cluster_shares",
    "main_region_boxes",
    "receptive_field_boxes",
    "summarize_clusters",
]


def cluster_shares(assignment: np.ndarray, k: int) -> np.ndarray:
    """Share of the pixels each cluster claims.

    Args:
        assignment: (S, Y, X) cluster index per pixel, values in [0, k).
        k: number of clusters.

    Returns:
        (k,) float64 shares summing to 1.
    """
    counts = _counts(assignment, k)
    return counts / max(int(counts.sum()), 1)


def _counts(assignment: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(np.asarray(assignment, dtype=np.int64).ravel(), minlength=k)[:k]


def cluster_class_table(assignment: np.ndarray, labels: np.ndarray, k: int, n_classes: int) -> np.ndarray:
    """Share of each cluster's pixels that fall in each class: which anatomy a cluster encodes.

    Args:
        assignment: (S, Y, X) cluster index per pixel, values in [0, k).
        labels: (S, Y, X) class labels of the same pixels, values in [0, n_classes).
        k: number of clusters.
        n_classes: number of classes, background included.

    Returns:
        (k, n_classes) float64; each row sums to 1 (a cluster claiming no pixel has a row of NaN).
    """
    if assignment.shape != labels.shape:
        raise ValueError(f"cluster map {assignment.shape} and labels {labels.shape} differ in shape")
    a = np.asarray(assignment, dtype=np.int64).ravel()
    c = np.clip(np.asarray(labels, dtype=np.int64).ravel(), 0, n_classes - 1)
    joint = np.bincount(a * n_classes + c, minlength=k * n_classes)[: k * n_classes].reshape(k, n_classes)
    totals = joint.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, joint / np.maximum(totals, 1), np.nan)


@dataclass(frozen=True)
class Box:
    """A cluster's receptive-field box on one slice, in image pixels, half-open ``[y0, y1) x [x0, x1)``."""

    cluster: int
    slice: int
    y0: int
    x0: int
    y1: int
    x1: int

    def corners(self) -> np.ndarray:
        """(4, 3) rectangle vertices ``(z, y, x)`` (a napari Shapes rectangle), pixel edges included."""
        z = float(self.slice)
        y0, x0, y1, x1 = self.y0 - 0.5, self.x0 - 0.5, self.y1 - 0.5, self.x1 - 0.5
        return np.array([[z, y0, x0], [z, y0, x1], [z, y1, x1], [z, y1, x0]], dtype=np.float64)


def receptive_field_boxes(assignment: np.ndarray, slices: np.ndarray, k: int,
                          cell: tuple[float, float]) -> list[Box]:
    """Receptive-field box of every cluster on every slice.

    Definition (docs/user-guide.md, "Clusters"): the bounding box of the pixels a cluster claims on a
    slice, grown on every side by one feature cell of the module (its stride, in image pixels), and
    clipped to the image. Each claimed pixel belongs to a feature cell whose convolutions also read
    the neighbouring cell, so the grown box is the smallest region of the input the cluster's
    cells depend on; it is a lower bound of the true (larger, soft) receptive field.

    Args:
        assignment: (S, Y, X) cluster index per pixel.
        slices: (S,) slice index in the volume of each plane.
        k: number of clusters.
        cell: (dy, dx) size of one feature cell in image pixels: stride x image side / model input side.

    Returns:
        One ``Box`` per (slice, cluster) that claims at least one pixel, ordered by slice then cluster.
    """
    s, h, w = assignment.shape
    gy, gx = (max(1, int(round(v))) for v in cell)
    boxes = []
    for i in range(s):
        plane = assignment[i]
        for c in range(k):
            ys = np.flatnonzero((plane == c).any(axis=1))
            if ys.size == 0:
                continue
            xs = np.flatnonzero((plane == c).any(axis=0))
            boxes.append(Box(c, int(slices[i]), max(0, int(ys[0]) - gy), max(0, int(xs[0]) - gx),
                             min(h, int(ys[-1]) + 1 + gy), min(w, int(xs[-1]) + 1 + gx)))
    return boxes


def main_region_boxes(assignment: np.ndarray, slices: np.ndarray, k: int,
                      mask: np.ndarray | None = None, min_pixels: int = 1) -> list[Box]:
    """Box around each cluster's main connected region on every slice (the supplement's white boxes).

    A cluster's pixels are often its organ plus scattered cells elsewhere; a box around all of them
    covers the slice. The main region is the largest 8-connected component of the cluster's claimed
    pixels (inside ``mask``, e.g. the body); the box is its bounding box, half-open.

    Args:
        assignment: (S, Y, X) cluster index per pixel.
        slices: (S,) slice index in the volume of each plane.
        k: number of clusters.
        mask: (S, Y, X) bool, the pixels that count; None: all.
        min_pixels: a main region smaller than this gets no box.

    Returns:
        One ``Box`` per (slice, cluster) with a main region, ordered by slice then cluster.
    """
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    boxes = []
    for i in range(assignment.shape[0]):
        plane = assignment[i]
        for c in range(k):
            claimed = plane == c
            if mask is not None:
                claimed &= mask[i]
            if not claimed.any():
                continue
            lab, n = ndimage.label(claimed, structure=eight)
            sizes = np.bincount(lab.ravel())[1:]
            best = int(np.argmax(sizes))
            if sizes[best] < min_pixels:
                continue
            ys, xs = ndimage.find_objects((lab == best + 1).astype(np.int32))[0]
            boxes.append(Box(c, int(slices[i]), ys.start, xs.start, ys.stop, xs.stop))
    return boxes


@dataclass
class ClusterSummary:
    """The clusters of one module and what they claim.

    Attributes:
        maps: the engine's ``ClusterMaps``.
        counts: (K,) pixels each cluster claims; ``shares``: the same as fractions summing to 1.
        class_table: (K, C) share of each cluster's pixels in each class (columns: ``classes``); None
            without labels.
        boxes: receptive-field boxes, one per (slice, cluster present).
        classes: the label values and names of the table's columns.
    """

    maps: ClusterMaps
    counts: np.ndarray
    shares: np.ndarray
    class_table: np.ndarray | None
    boxes: list[Box]
    classes: ClassTable | None = None


def summarize_clusters(maps: ClusterMaps, img_size: int, labels: np.ndarray | None = None,
                       class_names: dict[int, str] | None = None) -> ClusterSummary:
    """Counts, shares, the cluster x class table (with ``labels``) and receptive-field boxes of ``maps``.

    Args:
        maps: ``Predictor.clusters`` output; its (S, Y, X) planes are at image resolution.
        img_size: the model's square input side, which the module's stride is counted in.
        labels: (S, Y, X) class labels of the same slices, or None.
        class_names: label value -> name; a named class gets a column even when no pixel holds it.
    """
    k = maps.similarity.shape[0]
    counts = _counts(maps.assignment, k)
    table, classes = None, None
    if labels is not None:
        classes = ClassTable.from_painting(labels, class_names)  # the columns: values present or named
        table = cluster_class_table(maps.assignment, classes.to_index(labels), k, len(classes))
    _, h, w = maps.assignment.shape
    cell = (maps.stride * h / img_size, maps.stride * w / img_size)
    boxes = receptive_field_boxes(maps.assignment, maps.slices, k, cell)
    return ClusterSummary(maps, counts, counts / max(int(counts.sum()), 1), table, boxes, classes)
