"""Pure numpy summaries the widgets display: painted slices, cluster shares, boxes, cluster x class.

Nothing here imports Qt or torch, so every function is unit-tested on small arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AnnotationSummary",
    "Box",
    "cluster_shares",
    "cluster_class_table",
    "receptive_field_boxes",
    "touched_slices",
]


class AnnotationSummary:
    """Which axial slices of a (Z, Y, X) label map are painted, and with which classes.

    A slice is annotated when it holds a non-zero label (ARCHITECTURE.md, "Annotations"). The classes
    of each slice are cached so that a paint stroke costs a recount of the slices it touched only.
    Each slice also keeps a fingerprint (non-zero voxel count, sum of labels): ``recount_changed``
    finds the slices an edit we were not told about (an undo, say) changed with two passes over the
    volume, and recounts the classes of those only.
    """

    def __init__(self, labels: np.ndarray) -> None:
        self._labels = labels
        self._per_slice: dict[int, frozenset[int]] = {}
        self._prints = np.zeros((labels.shape[0], 2), dtype=np.int64)
        self.recount()

    def recount(self, slices: Iterable[int] | None = None) -> None:
        """Recount ``slices`` (all when None) of the label map, which may have changed in place."""
        data = self._labels
        if slices is None:
            self._per_slice.clear()
            self._prints = _fingerprints(data)
            todo = np.flatnonzero(self._prints[:, 0]).tolist()
        else:
            todo = sorted({int(z) for z in slices if 0 <= int(z) < data.shape[0]})
            for z in todo:
                self._prints[z] = _fingerprints(data[z : z + 1])[0]
        for z in todo:
            plane = np.asarray(data[z])
            values = np.unique(plane[plane != 0]) if plane.any() else np.zeros(0, dtype=plane.dtype)
            if values.size:
                self._per_slice[z] = frozenset(int(v) for v in values)
            else:
                self._per_slice.pop(z, None)

    def recount_changed(self) -> list[int]:
        """Recount the slices whose fingerprint changed since they were last counted; return them."""
        now = _fingerprints(self._labels)
        changed = np.flatnonzero((now != self._prints).any(axis=1)).tolist()
        self.recount(changed)
        return changed

    @property
    def labels(self) -> np.ndarray:
        """The (Z, Y, X) label map being summarised (not a copy)."""
        return self._labels

    @property
    def slices(self) -> list[int]:
        """Annotated slice indices, ascending."""
        return sorted(self._per_slice)

    @property
    def classes(self) -> list[int]:
        """Non-zero labels present on annotated slices, ascending."""
        found: set[int] = set()
        for values in self._per_slice.values():
            found |= values
        return sorted(found)

    def describe(self, names: dict[int, str] | None = None) -> str:
        """One line for the widget, e.g. ``3 slices annotated (4, 9, 12): liver, spleen``."""
        if not self._per_slice:
            return "no slice annotated yet: paint at least one axial slice"
        shown = self.slices if len(self.slices) <= 8 else self.slices[:7] + ["..."]
        listing = ", ".join(str(z) for z in shown)
        classes = ", ".join((names or {}).get(c, f"class {c}") for c in self.classes)
        plural = "s" if len(self.slices) != 1 else ""
        return f"{len(self.slices)} slice{plural} annotated ({listing}): {classes}"


def _fingerprints(labels: np.ndarray) -> np.ndarray:
    """(Z, 2) int64: non-zero voxel count and label sum of each slice of a (Z, Y, X) label map."""
    flat = np.asarray(labels).reshape(labels.shape[0], -1)
    return np.stack([np.count_nonzero(flat, axis=1), flat.sum(axis=1, dtype=np.int64)], axis=1).astype(np.int64)


def touched_slices(atoms: Iterable[object]) -> set[int] | None:
    """Axial slices touched by the history atoms of a napari ``Labels.events.paint`` event.

    Returns None when an atom has a form we do not recognise, so the caller recounts everything.
    """
    found: set[int] = set()
    for atom in atoms:
        key = getattr(atom, "slice_key", None)
        if key is not None:  # a masked paint atom: its bounding box as slices
            z = key[0]
            found.update(range(z.start or 0, z.stop) if isinstance(z, slice) else [int(z)])
            continue
        if isinstance(atom, tuple) and atom and isinstance(atom[0], tuple) and len(atom[0]) > 0:
            found.update(np.unique(np.asarray(atom[0][0])).astype(int).tolist())
            continue
        return None
    return found


def cluster_shares(assignment: np.ndarray, k: int) -> np.ndarray:
    """Share of the pixels each cluster claims.

    Args:
        assignment: (S, Y, X) cluster index per pixel, values in [0, k).
        k: number of clusters.

    Returns:
        (k,) float64 shares summing to 1.
    """
    counts = np.bincount(np.asarray(assignment, dtype=np.int64).ravel(), minlength=k)[:k]
    return counts / max(int(counts.sum()), 1)


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
        """(4, 3) rectangle vertices ``(z, y, x)`` for a napari Shapes layer, pixel edges included."""
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
