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
        format: ``nifti``, ``nrrd``, ``mha``, ``mhd`` or ``dicom`` (``array`` for a grid made in memory).
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

    @classmethod
    def from_grid(
        cls,
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
        **fields: Any,
    ) -> VolumeMeta:
        """Geometry of an axis-aligned RAS+ grid made in memory (a phantom, a napari layer without a file).

        Args:
            shape: array shape ``(Z, Y, X)``.
            spacing: voxel size in mm, ``(Z, Y, X)``.
            origin: world position of voxel ``(0, 0, 0)`` in array-axis order ``(z, y, x)``, i.e. (S, A, R)
                mm, which is what napari calls ``translate``.
            **fields: other attributes (``path``, ``class_names``, ``extra``...).
        """
        sz, sy, sx = (float(v) for v in spacing)
        oz, oy, ox = (float(v) for v in origin)
        source_affine = np.array([[sx, 0, 0, ox], [0, sy, 0, oy], [0, 0, sz, oz], [0, 0, 0, 1]], dtype=float)
        affine = np.array([[0, 0, sx, ox], [0, sy, 0, oy], [sz, 0, 0, oz], [0, 0, 0, 1]], dtype=float)
        fields.setdefault("format", "array")
        return cls(
            spacing=(sz, sy, sx),
            affine=affine,
            source_affine=source_affine,
            source_shape=(int(shape[2]), int(shape[1]), int(shape[0])),
            **fields,
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape ``(Z, Y, X)`` of the in-memory array this geometry describes."""
        from .geometry import canonical_shape  # geometry needs nibabel; keep importing meta cheap

        return canonical_shape(self.source_shape, self.source_affine)

    @property
    def origin_zyx(self) -> tuple[float, float, float]:
        """World position of voxel ``(0, 0, 0)`` in array-axis order (S, A, R mm): napari's ``translate``."""
        x, y, z = self.origin
        return z, y, x

    @property
    def origin(self) -> tuple[float, float, float]:
        """World position (RAS+ mm) of voxel ``(0, 0, 0)`` of the in-memory array."""
        return tuple(float(v) for v in self.affine[:3, 3])

    def same_grid(self, other: VolumeMeta, atol: float = 1e-3) -> bool:
        """Whether two volumes share one voxel grid (shape is checked by the caller)."""
        return bool(np.allclose(self.affine, other.affine, atol=atol))
