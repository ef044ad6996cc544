"""Geometry that travels with every volume, from the file to the network and back.

In memory a volume is ``(Z, Y, X)``: the file is reoriented to the closest canonical RAS+
orientation and transposed, so index 0 walks axial slices from inferior to superior. ``spacing``
is in that same order, in mm. The source file's own affine and axis order are kept so that a
label map can be written back onto exactly the source grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["VolumeMeta", "META_KEY"]

#: key under which napari layers carry their ``VolumeMeta`` in ``layer.metadata``
META_KEY = "napari_smp_meta"


@dataclass
class VolumeMeta:
    """Geometry of a ``(Z, Y, X)`` array and the way back to its source file.

    Attributes:
        spacing: voxel size in mm, in array order ``(Z, Y, X)``.
        affine: 4x4 map from ``(z, y, x, 1)`` array indices to RAS+ world mm.
        source_affine: 4x4 RAS+ affine of the source file's own voxel grid ``(i, j, k)``.
        source_shape: shape of the source file's array, in its own axis order.
        oblique: True when the source axes are not aligned with the world axes (a warning was given).
        format: ``nifti``, ``nrrd``, ``mha``, ``mhd`` or ``dicom``.
        path: the file or folder the volume came from ("" for generated data).
        class_names: label value -> name, when the file carries names.
        extra: format-specific header fields worth keeping (JSON-friendly values only).
    """

    spacing: tuple[float, float, float]
    affine: np.ndarray
    source_affine: np.ndarray
    source_shape: tuple[int, ...]
    oblique: bool = False
    format: str = "nifti"
    path: str = ""
    class_names: dict[int, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> tuple[float, float, float]:
        """World position (RAS+ mm) of voxel ``(0, 0, 0)`` of the in-memory array."""
        return tuple(float(v) for v in self.affine[:3, 3])

    def same_grid(self, other: VolumeMeta, atol: float = 1e-3) -> bool:
        """Whether two volumes share one voxel grid (shape is checked by the caller)."""
        return bool(np.allclose(self.affine, other.affine, atol=atol))
