"""Voxel-grid geometry: from a file's own axis order to the canonical ``(Z, Y, X)`` RAS+ array and back.

A file stores its voxels in some axis order ``(i, j, k)`` with a 4x4 affine mapping those indices to
world millimetres. We flip and permute the axes to the closest RAS+ orientation (the same choice as
``nibabel.as_closest_canonical``) and then reverse them, so that array index 0 walks axial slices
from inferior to superior, index 1 from posterior to anterior and index 2 from left to right.
"""

from __future__ import annotations

import numpy as np
from nibabel.affines import obliquity
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

__all__ = [
    "LPS_TO_RAS",
    "OBLIQUE_TOL_RAD",
    "affine_from_itk",
    "itk_from_affine",
    "is_oblique",
    "canonical_ornt",
    "to_canonical",
    "from_canonical",
    "canonical_shape",
    "spacing_of",
]

#: flips x and y: ITK/DICOM world coordinates are LPS+, ours are RAS+ (the matrix is its own inverse)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: axes tilted by less than this (radians, about 0.06 degrees) count as aligned: scanners write such noise
OBLIQUE_TOL_RAD = 1e-3

_RAS = axcodes2ornt(("R", "A", "S"))
# (z, y, x, 1) index -> (x, y, z, 1) index
_ZYX_TO_XYZ = np.array(
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def affine_from_itk(
    origin: tuple[float, ...], spacing: tuple[float, ...], direction: tuple[float, ...]
) -> np.ndarray:
    """RAS+ affine of an ITK image grid.

    Args:
        origin: LPS position of voxel ``(0, 0, 0)``, length 3.
        spacing: voxel size along ``(i, j, k)``, length 3.
        direction: row-major 3x3 direction cosines (ITK's ``GetDirection()``), length 9.

    Returns:
        ``(4, 4)`` affine mapping ``(i, j, k, 1)`` to RAS+ mm.
    """
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(direction, dtype=float).reshape(3, 3) * np.asarray(spacing, dtype=float)
    lps[:3, 3] = np.asarray(origin, dtype=float)
    return LPS_TO_RAS @ lps


def itk_from_affine(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Inverse of :func:`affine_from_itk`: ``(origin, spacing, direction)`` in ITK's LPS convention."""
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    return tuple(lps[:3, 3].tolist()), tuple(spacing.tolist()), tuple(direction.ravel().tolist())


def is_oblique(affine: np.ndarray, tol: float = OBLIQUE_TOL_RAD) -> bool:
    """Whether any voxel axis is tilted against the world axes by more than ``tol`` radians."""
    return bool(np.max(np.abs(obliquity(np.asarray(affine, dtype=float)))) > tol)


def canonical_ornt(source_affine: np.ndarray) -> np.ndarray:
    """nibabel orientation transform, shape ``(3, 2)``, from the source axes to the closest RAS+ axes."""
    ornt = io_orientation(np.asarray(source_affine, dtype=float))
    if np.isnan(ornt).any():
        raise ValueError("the affine has a degenerate (zero-length or repeated) axis")
    return ornt_transform(ornt, _RAS)


def to_canonical(data: np.ndarray, source_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorient a 3D array from its file order to ``(Z, Y, X)`` RAS+.

    Args:
        data: ``(I, J, K)`` array in the file's own axis order.
        source_affine: ``(4, 4)`` map from ``(i, j, k, 1)`` to RAS+ mm.

    Returns:
        The contiguous ``(Z, Y, X)`` array and its ``(4, 4)`` affine from ``(z, y, x, 1)`` to RAS+ mm.
    """
    transform = canonical_ornt(source_affine)
    ras = apply_orientation(data, transform)
    affine_ras = np.asarray(source_affine, dtype=float) @ inv_ornt_aff(transform, data.shape[:3])
    return np.ascontiguousarray(ras.transpose(2, 1, 0)), affine_ras @ _ZYX_TO_XYZ


def from_canonical(data: np.ndarray, source_affine: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_canonical`: a ``(Z, Y, X)`` array back to the file's ``(I, J, K)`` order."""
    back = ornt_transform(_RAS, io_orientation(np.asarray(source_affine, dtype=float)))
    return np.ascontiguousarray(apply_orientation(data.transpose(2, 1, 0), back))


def canonical_shape(source_shape: tuple[int, ...], source_affine: np.ndarray) -> tuple[int, int, int]:
    """``(Z, Y, X)`` shape that :func:`to_canonical` gives for a file of ``source_shape`` (first 3 axes)."""
    transform = canonical_ornt(source_affine)
    ras = [0, 0, 0]
    for src_axis, (ras_axis, _flip) in enumerate(transform):
        ras[int(ras_axis)] = int(source_shape[src_axis])
    return ras[2], ras[1], ras[0]


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along each array axis: the lengths of the affine's first three columns."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0))
