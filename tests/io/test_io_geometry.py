"""Reorientation to (Z, Y, X) RAS+ and back, for every axis-aligned orientation a file can have."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_smp.io.geometry import (
    affine_from_itk,
    canonical_shape,
    from_canonical,
    is_oblique,
    itk_from_affine,
    spacing_of,
    to_canonical,
)


def _all_orientations() -> list[np.ndarray]:
    """The 48 signed permutations of the axes as 4x4 affines with distinct spacings and an origin."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((-1.0, 1.0), repeat=3):
            aff = np.eye(4)
            aff[:3, :3] = 0
            for col, (row, sign, size) in enumerate(zip(perm, signs, (0.5, 1.5, 3.0), strict=True)):
                aff[row, col] = sign * size
            aff[:3, 3] = (4.0, -7.0, 11.0)
            out.append(aff)
    return out


@pytest.mark.parametrize("affine", _all_orientations())
def test_canonical_axes_are_ras_and_reversible(affine: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    data = rng.random((4, 5, 6))
    zyx, aff_zyx = to_canonical(data, affine)
    # array axes (z, y, x) now step along +S, +A, +R respectively
    assert np.all(np.diag(aff_zyx[:3, :3][:, ::-1]) > 0)
    assert np.count_nonzero(aff_zyx[:3, :3]) == 3
    assert zyx.shape == canonical_shape(data.shape, affine)
    assert zyx.flags.c_contiguous
    np.testing.assert_array_equal(from_canonical(zyx, affine), data)
    # every voxel keeps its world position: compare the world points of equal values
    idx_src = np.array([1, 3, 2, 1.0])
    world = affine @ idx_src
    idx_zyx = np.linalg.solve(aff_zyx, world)
    z, y, x = np.round(idx_zyx[:3]).astype(int)
    assert zyx[z, y, x] == data[1, 3, 2]
    assert sorted(spacing_of(aff_zyx)) == [0.5, 1.5, 3.0]


def test_itk_geometry_round_trip_and_lps_flip() -> None:
    direction = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    affine = affine_from_itk((1.0, 2.0, 3.0), (0.5, 0.7, 2.0), direction)
    # LPS x, y become RAS -x, -y; z is unchanged
    np.testing.assert_allclose(affine[:3, 3], [-1.0, -2.0, 3.0])
    np.testing.assert_allclose(affine[:3, 0], [0.0, -0.5, 0.0])  # i walks LPS +y (posterior) = RAS -y
    np.testing.assert_allclose(affine[:3, 2], [-2.0, 0.0, 0.0])  # k walks LPS +x (left) = RAS -x
    origin, spacing, back = itk_from_affine(affine)
    np.testing.assert_allclose(origin, (1.0, 2.0, 3.0))
    np.testing.assert_allclose(spacing, (0.5, 0.7, 2.0))
    np.testing.assert_allclose(back, direction, atol=1e-15)


def test_obliquity_threshold() -> None:
    a = np.deg2rad(0.01)
    tiny = np.eye(4)
    tiny[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    assert not is_oblique(np.diag([1.0, 1.0, 1.0, 1.0]))
    assert not is_oblique(tiny)  # float noise from scanners is not obliquity
    big = tiny.copy()
    b = np.deg2rad(5)
    big[:2, :2] = [[np.cos(b), -np.sin(b)], [np.sin(b), np.cos(b)]]
    assert is_oblique(big)
