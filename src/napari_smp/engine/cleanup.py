"""Optional clean-up of a label map: the largest 3D connected component per class, no islands under N mL.

A network that sees axial slices leaves specks: a few voxels of "liver" in the spleen, a fleck of
aorta in the air. Two opt-in rules remove them, class by class:

- ``largest_component``: keep only the largest 3D connected component of every class;
- ``min_island_ml``: drop every component smaller than this volume (mL, from the voxel spacing),
  except the class's largest component, so a small organ is never erased by a threshold meant for
  specks.

Components are 26-connected (voxels touching by a face, an edge or a corner belong together: the
gentler choice, a thin vessel running diagonally stays one piece). Removed voxels become background
(0). Each class is labelled inside its own bounding box, so the cost follows the classes' extent,
not ``number of classes x volume``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CleanupResult", "clean_labels", "describe_cleanup"]

_FULL_3D = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity


@dataclass(frozen=True)
class CleanupResult:
    """A cleaned label map and what was taken out of it.

    Attributes:
        labels: ``(Z, Y, X)`` label map, same dtype and shape as the input; removed voxels are 0.
        removed_voxels: label value -> voxels set to background (classes that lost none are absent).
        removed_components: label value -> components removed.
        voxel_ml: the volume of one voxel in mL.
    """

    labels: np.ndarray
    removed_voxels: dict[int, int] = field(default_factory=dict)
    removed_components: dict[int, int] = field(default_factory=dict)
    voxel_ml: float = 0.0

    @property
    def removed_ml(self) -> dict[int, float]:
        """label value -> removed volume in mL."""
        return {v: n * self.voxel_ml for v, n in self.removed_voxels.items()}


def clean_labels(
    labels: np.ndarray,
    spacing: Sequence[float],
    *,
    largest_component: bool = False,
    min_island_ml: float | None = None,
) -> CleanupResult:
    """Remove small or detached pieces of every class of a label map (a copy; the input is untouched).

    Args:
        labels: ``(Z, Y, X)`` integer label map (0 = background; a 2D map is taken as one slice).
        spacing: voxel size in mm, ``(Z, Y, X)`` (a 2D map: ``(Y, X)``, read as 1 mm thick).
        largest_component: keep only each class's largest 3D connected component.
        min_island_ml: drop components smaller than this many mL (the class's largest always stays);
            None or 0 turns the rule off.

    Returns:
        :class:`CleanupResult`; with both rules off, ``labels`` is an unchanged copy.

    Raises:
        ValueError: a negative ``min_island_ml``, or a spacing that does not match the array.
    """
    from scipy import ndimage

    data = np.array(labels, copy=True)
    sp = [float(s) for s in spacing]
    if len(sp) != data.ndim or any(not np.isfinite(s) or s <= 0 for s in sp):
        raise ValueError(f"the voxel spacing {tuple(spacing)} does not fit a label map of shape {data.shape}")
    if min_island_ml is not None and (not np.isfinite(min_island_ml) or min_island_ml < 0):
        raise ValueError(f"the smallest island to keep must be 0 mL or more, not {min_island_ml}")
    voxel_ml = float(np.prod(sp)) / 1000.0
    min_voxels = float(min_island_ml or 0.0) / voxel_ml
    result = CleanupResult(data, voxel_ml=voxel_ml)
    if (not largest_component and min_voxels <= 0) or not data.any():
        return result
    if data.dtype.kind not in "iu":
        raise ValueError(f"a label map holds integers, not {data.dtype}")
    if data.min() < 0:
        raise ValueError("a label map holds values of 0 or more; this one has negative values")
    structure = _FULL_3D if data.ndim == 3 else np.ones((3,) * data.ndim, dtype=bool)
    boxes = ndimage.find_objects(data)  # boxes[v - 1]: the bounding box of value v, or None
    for value, box in enumerate(boxes, start=1):
        if box is None:
            continue
        view = data[box]
        mask = view == value
        components, count = ndimage.label(mask, structure=structure)
        if count <= 1:  # one piece is the largest, and the largest always stays
            continue
        sizes = np.bincount(components.ravel())[1:]  # voxels of components 1..count
        largest = int(np.argmax(sizes))
        drop = np.zeros(count + 1, dtype=bool)
        if largest_component:
            drop[1:] = True
        else:
            drop[1:] = sizes < min_voxels
        drop[largest + 1] = False
        if not drop.any():
            continue
        gone = drop[components]
        view[gone] = 0
        result.removed_voxels[value] = int(gone.sum())
        result.removed_components[value] = int(drop.sum())
    return result


def describe_cleanup(result: CleanupResult, class_names: dict[int, str] | None = None) -> str:
    """One line for a log or a status bar, e.g. ``clean-up removed 3 pieces (1.25 mL): liver 1.20 mL, ...``."""
    if not result.removed_voxels:
        return "clean-up removed nothing"
    names = class_names or {}
    pieces = sum(result.removed_components.values())
    total = sum(result.removed_ml.values())
    per = ", ".join(f"{names.get(v, f'class {v}')} {ml:.2f} mL" for v, ml in sorted(result.removed_ml.items()))
    return f"clean-up removed {pieces} piece{'s' if pieces != 1 else ''} ({total:.2f} mL): {per}"
